"""An Idempotency-Key is bound to the first request that succeeded under it, for as long as what it created
(shopstream.key_binding): the same request again finds that resource, marked as a replay, at any age; another
request under the key is a 422 naming the header, at any age, and changes nothing. Neither the bindings nor
Powertools' records keep a hash of a body or of a personal value."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from local.shop import ADDRESS, ADMIN, scan
from tests.integration.test_services import ORDER, _invoke

KEY = "key-1"


@pytest.fixture
def ready(shop):
    shop.register("u-1")
    mug = shop.product("MUG", 1250, stock=10)
    shop.bus.pump()
    return shop, mug


def _forget_responses(service: str) -> int:
    """Delete the API's Powertools records, as if their 24-hour window had passed (the bindings stay)."""
    import boto3

    from local import naming

    dynamodb, table = boto3.client("dynamodb"), naming.idempotency_table(service)
    records = [i["id"]["S"] for i in dynamodb.scan(TableName=table)["Items"] if i["id"]["S"].startswith(
        f"{service}.api#")]
    for record in records:
        dynamodb.delete_item(TableName=table, Key={"id": {"S": record}})
    return len(records)


def _state(service: str) -> list[dict]:
    """Everything the service keeps but its outbox (where a refusal's audit record goes)."""
    return sorted((i for i in scan(service) if not i["pk"].startswith("OUTBOX#")), key=lambda i: (i["pk"], i["sk"]))


def _refused_for_the_key(response: dict, bound_route: str) -> None:
    assert response["statusCode"] == 422, response
    answer = json.loads(response["body"])
    assert [e["field"] for e in answer["errors"]] == ["header.Idempotency-Key"], answer
    assert answer["message"] == f"this Idempotency-Key was used for another request ({bound_route})", answer
    assert "Idempotent-Replayed" not in response["headers"]


@dataclass(frozen=True)
class Create:
    service: str
    path: Callable[[str], str]
    body: Callable[[str], dict]
    other_body: Callable[[str], dict]
    status: int
    user: str = "u-1"
    admin: bool = False


PRODUCT = {"sku": "CUP", "name": "Cup", "price": {"amount": 500, "currency": "EUR"}}
CREATES = {
    "users": Create("user", lambda _: "/users", lambda _: {"email": "nine@x.ie", "name": "Nine"},
                    lambda _: {"email": "nine@x.ie", "name": "Other"}, 201, user="u-9"),
    "products": Create("catalog", lambda _: "/products", lambda _: PRODUCT, lambda _: {**PRODUCT, "sku": "CUP2"}, 201,
                       user=ADMIN, admin=True),
    "adjustments": Create("inventory", lambda mug: f"/inventory/{mug}/adjustments",
                          lambda _: {"delta": 3, "reason": "delivery"}, lambda _: {"delta": 4, "reason": "delivery"},
                          200, user=ADMIN, admin=True),
    "carts": Create("cart", lambda _: "/carts", lambda mug: {"items": [{"productId": mug, "quantity": 1}]},
                    lambda mug: {"items": [{"productId": mug, "quantity": 2}]}, 201),
    "orders": Create("order", lambda _: "/orders", lambda mug: {**ORDER, "items": [{"productId": mug, "quantity": 1}]},
                     lambda mug: {**ORDER, "items": [{"productId": mug, "quantity": 2}]}, 202),
}


@pytest.mark.parametrize("create", CREATES.values(), ids=CREATES.keys())
def test_a_key_stays_bound_to_its_first_request_after_its_response_is_forgotten(ready, create):
    shop, mug = ready
    path = create.path(mug)

    def send(body: dict) -> dict:
        return _invoke(shop.bus, create.service, "POST", path, headers={"idempotency-key": KEY}, body=body,
                       user=create.user, admin=create.admin)

    first = send(create.body(mug))
    assert first["statusCode"] == create.status, first
    made = _state(create.service)
    _refused_for_the_key(send(create.other_body(mug)), f"POST {path}")  # within the 24 hours
    assert _forget_responses(create.service) == 1
    _refused_for_the_key(send(create.other_body(mug)), f"POST {path}")  # after them: still bound
    again = send(create.body(mug))  # the same request after them: what it created, as first answered
    assert again["statusCode"] == create.status, again
    assert again["headers"].get("Idempotent-Replayed") == "true"
    assert json.loads(again["body"]) == json.loads(first["body"])
    assert _state(create.service) == made  # nothing created or changed by any of them


def test_a_stock_adjustment_key_reused_on_another_product_is_refused_and_changes_no_stock(ready):
    shop, mug = ready
    cup = shop.product("CUP", 500, stock=5)

    def adjust(product: str, delta: int = 3) -> dict:
        return _invoke(shop.bus, "inventory", "POST", f"/inventory/{product}/adjustments", user=ADMIN, admin=True,
                       headers={"idempotency-key": KEY}, body={"delta": delta, "reason": "delivery"})

    first = adjust(mug)
    assert first["statusCode"] == 200 and json.loads(first["body"])["available"] == 13, first
    made = _state("inventory")
    _refused_for_the_key(adjust(cup), f"POST /inventory/{mug}/adjustments")
    _forget_responses("inventory")
    _refused_for_the_key(adjust(cup), f"POST /inventory/{mug}/adjustments")
    assert _state("inventory") == made
    again = adjust(mug)
    assert again["statusCode"] == 200 and again["headers"].get("Idempotent-Replayed") == "true", again
    assert json.loads(again["body"]) == {"productId": mug, "available": 13, "reserved": 0}
    assert _state("inventory") == made  # applied once; the cup's stock untouched


# --- two requests under one key at once, each finding the key unbound -------------------------------------
def _stock(product: str) -> int:
    return sum(int(i["available"]) for i in scan("inventory") if i["sk"] == "SHARD" and i["productId"] == product)


def test_of_two_requests_under_one_key_the_one_that_commits_first_wins_the_other_is_refused(ready):
    """The cup's adjustment runs inside the mug's commit: both found the key unbound; the cup's commits first."""
    from shopstream import transaction

    shop, mug = ready
    cup = shop.product("CUP", 500, stock=5)
    answers: dict[str, dict] = {}

    def adjust(product: str) -> dict:
        return _invoke(shop.bus, "inventory", "POST", f"/inventory/{product}/adjustments", user=ADMIN, admin=True,
                       headers={"idempotency-key": KEY}, body={"delta": 3, "reason": "delivery"})

    def the_cup_meanwhile(uow):
        if uow is not None and any(e.event_type == "InventoryAdjusted" and e.data["productId"] == mug
                                   for e in uow.events):
            transaction.set_commit_hooks()
            answers["cup"] = adjust(cup)

    transaction.set_commit_hooks(before=the_cup_meanwhile)
    try:
        answers["mug"] = adjust(mug)
    finally:
        transaction.set_commit_hooks()
    assert answers["cup"]["statusCode"] == 200, answers
    _refused_for_the_key(answers["mug"], f"POST /inventory/{cup}/adjustments")
    assert (_stock(mug), _stock(cup)) == (10, 8)


def test_a_request_that_finds_what_another_request_under_its_key_created_is_refused(ready, monkeypatch):
    """The cup's adjustment runs to its end between the mug's look at the key and the mug's route, which then
    finds the adjustment made under the key (its id derives from the key alone): not the mug's to answer 200."""
    from shopstream import key_binding

    shop, mug = ready
    cup = shop.product("CUP", 500, stock=5)
    answers: dict[str, dict] = {}
    read = key_binding.read

    def adjust(product: str) -> dict:
        return _invoke(shop.bus, "inventory", "POST", f"/inventory/{product}/adjustments", user=ADMIN, admin=True,
                       headers={"idempotency-key": KEY}, body={"delta": 3, "reason": "delivery"})

    def the_cup_right_after(caller_id: str, key: str):
        found = read(caller_id, key)
        if not answers:  # the mug's look at the key (the cup's own looks come after this)
            answers["cup"] = {}
            answers["cup"] = adjust(cup)
        return found

    monkeypatch.setattr(key_binding, "read", the_cup_right_after)
    answers["mug"] = adjust(mug)
    assert answers["cup"]["statusCode"] == 200, answers
    _refused_for_the_key(answers["mug"], f"POST /inventory/{cup}/adjustments")
    assert (_stock(mug), _stock(cup)) == (10, 8)


# --- no hash of a body or of a personal value is kept -----------------------------------------------------
def _digests(value: str) -> set[str]:
    """What anyone could compute from a guessed value to recognise it: plain digests of it and of its JSON."""
    found = set()
    for text in (value, json.dumps(value)):
        for algorithm in ("md5", "sha1", "sha256"):
            digest = hashlib.new(algorithm, text.encode())
            found |= {digest.hexdigest(), base64.b64encode(digest.digest()).decode()}
    return found


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_neither_the_bindings_nor_the_kept_responses_hold_a_hash_of_a_body_or_of_a_personal_value(ready):
    import boto3

    from local import naming
    from shopstream import catalog
    from shopstream.dynamo import from_attributes

    shop, mug = ready
    registration = {"email": "ada.lovelace@example.com", "name": "Ada Lovelace"}
    order = {**ORDER, "items": [{"productId": mug, "quantity": 1}]}
    for service, path, body in (("user", "/users", registration), ("order", "/orders", order)):
        response = _invoke(shop.bus, service, "POST", path, headers={"idempotency-key": KEY}, body=body, user="u-7"
                           if service == "user" else "u-1")
        assert 200 <= response["statusCode"] < 300, response
    personal = [json.dumps(registration), json.dumps(order), registration["email"], registration["name"],
                json.dumps(ADDRESS), *ADDRESS.values()]
    digests = {d for value in personal for d in _digests(value)}
    dynamodb = boto3.client("dynamodb")
    kept = {(naming.idempotency_table(s.name), n): from_attributes(i) for s in catalog.SERVICES
            for n, i in enumerate(dynamodb.scan(TableName=naming.idempotency_table(s.name))["Items"])}
    bindings = {(naming.table(s), i["pk"]): i for s in ("user", "order") for i in scan(s)
                if i["pk"].startswith("IDEMPOTENCY_KEY#")}
    assert {table for table, _ in kept} >= {naming.idempotency_table("user"), naming.idempotency_table("order")}
    for where, item in {**kept, **bindings}.items():
        for text in _strings(item):
            assert not any(d in text for d in digests), (where, text)
            assert not any(value in text for value in personal[2:] if len(value) > 4), (where, text)  # in clear
    assert {b["route"] for b in bindings.values()} == {"POST /users", "POST /orders"}
    assert all(set(b) == {"pk", "sk", "route", "fingerprint", "createdAt"} for b in bindings.values()), bindings
