"""Erasure (issue 15): once a customer is erased, no readable trace of their e-mail address, name or postal
address is left in any table, topic, archive object, dead-letter message or log line, while the audit trail
of their orders is still complete and verifiable.

"Readable" is judged by the strongest reader: everything is decoded (JSON, base64) and every sealed value
found is opened with the library, with full access to the KMS key. Before the erasure that reader finds the
customer everywhere (so the search works); after it, nowhere.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from local import naming
from local.context import LocalLambdaContext
from local.http_events import claims_for, http_event
from local.shop import ADMIN
from local.simulation_checks import scan
from shopstream import catalog, personal
from shopstream.config import override_settings, reset_settings
from shopstream.envelope import event_from_command
from shopstream.wire import msk_event, msk_record, to_record
from tests.support import readable_traces

ADA, GRACE = "cust-ada", "cust-grace"
EMAIL, NAME, NEW_NAME = "ada.lovelace@analytical.example", "Ada Lovelace", "Augusta Ada King"
ADDRESS = {"line1": "12 Analytical Engine Row", "line2": "Flat 3", "city": "Marylebone", "postalCode": "NW1 5LS",
           "country": "GB"}
# Every piece of Ada's personal data, as it could appear anywhere (compared case-insensitively).
NEEDLES = (EMAIL, "ada.lovelace", NAME, "Lovelace", NEW_NAME, "Augusta", "Analytical Engine Row", "Marylebone",
           "NW1 5LS")
GRACE_EMAIL = "grace.hopper@cobol.example"
GRACE_ADDRESS = {"line1": "1 Harvard Yard", "city": "Cambridge", "postalCode": "02138", "country": "US"}


# --- the strongest reader ----------------------------------------------------------------------------
def traces(sources: dict[str, Any], needles: tuple[str, ...] = NEEDLES, *, open_sealed: bool = True) -> list[str]:
    """``where: needle`` for every needle readable in each source."""
    with override_settings(naming.function_settings("user")):  # a reader allowed to open any customer's data
        return readable_traces(sources, needles, open_sealed=open_sealed)


# --- where the system keeps things --------------------------------------------------------------------
def every_table_item() -> dict[str, Any]:
    from shopstream import aws

    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert naming.CUSTOMER_KEYS_TABLE in tables and len(tables) >= 19
    return {f"table {table} #{n}": item for table in tables for n, item in enumerate(scan(table))}


def sealed_for(value: Any, kid: str) -> bool:
    """Whether ``value`` holds something sealed for ``kid`` (readable or not), at any depth."""
    if personal.is_sealed(value):
        return value.get("kid") == kid
    if isinstance(value, dict):
        return any(sealed_for(v, kid) for v in value.values())
    if isinstance(value, list):
        return any(sealed_for(v, kid) for v in value)
    if isinstance(value, str) and value[:1] == "{":
        try:
            return sealed_for(json.loads(value), kid)
        except ValueError:
            return False
    return False


# Where a sealed copy of an erased customer's data may stay (unreadable): immutable records of what happened
# (the audit trail, events waiting in an outbox) and the records of their orders and parcels. Every other copy
# (profile, replicas, contacts, carts, the key) is deleted or turned into a tombstone.
KEPT_SEALED = {("audit", "TRAIL"), ("order", "ORDER"), ("order", "OUTBOX"), ("shipping", "FULFILMENT"),
               ("shipping", "SHIPMENT"), ("user", "OUTBOX")}


def places_holding(kid: str) -> set[tuple[str, str]]:
    """(service, kind of item) of every table item holding a value sealed for ``kid``."""
    found = set()
    for where, item in every_table_item().items():
        table = where.split()[1]
        if sealed_for(item, kid) or (table == naming.CUSTOMER_KEYS_TABLE and item.get("userId") == kid):
            service = table.removeprefix(f"{naming.PREFIX}-")
            found.add((service, str(item.get("pk", item.get("userId", ""))).split("#")[0]))
    return found


def every_topic_record(bus) -> dict[str, Any]:
    return {f"topic {topic}/{partition}@{offset}": {"key": r.key, "value": r.value, "headers": list(r.headers)}
            for topic, partitions in bus.log.items() for partition, records in partitions.items()
            for offset, r in enumerate(records)}


def every_archive_object() -> dict[str, Any]:
    """Every version of every object (the bucket is versioned, and locked on AWS)."""
    from shopstream import aws

    s3, found = aws.client("s3"), {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=naming.AUDIT_ARCHIVE_BUCKET):
        for version in page.get("Versions", []):
            body = s3.get_object(Bucket=naming.AUDIT_ARCHIVE_BUCKET, Key=version["Key"],
                                 VersionId=version["VersionId"])["Body"].read()
            found[f"archive {version['Key']}@{version['VersionId']}"] = body
    return found


def every_dead_letter(bus) -> dict[str, Any]:
    """Every message of every queue, read and made visible again (the queues are left as they were)."""
    from shopstream import aws

    sqs, found = aws.client("sqs"), {}
    for name, url in bus.queue_urls.items():
        handles = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                                              MessageAttributeNames=["All"]).get("Messages"):
            for message in messages:
                found[f"dlq {name} {message['MessageId']}"] = {"body": message["Body"],
                                                               "attributes": message.get("MessageAttributes")}
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    return found


class Recorder:
    """The e-mail channel: who was sent what."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (to, template subject)

    def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
        self.sent.append((to, subject))


class Lines(logging.Handler):
    """Every log record of the services (the shopstream logger at DEBUG) and of libraries (warnings up)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.dumps({**record.__dict__, "message": record.getMessage()}, default=str))


@pytest.fixture
def recorder():
    from notification import senders

    sender = Recorder()
    senders.install(sender)
    yield sender
    senders.install(None)


@pytest.fixture
def log_lines():
    from shopstream.observability import logger

    service_logger = logger()
    handler, previous = Lines(), service_logger.log_level
    logging.getLogger().addHandler(handler)
    service_logger.setLevel("DEBUG")
    yield handler
    service_logger.setLevel(previous)
    logging.getLogger().removeHandler(handler)


# --- driving the shop -----------------------------------------------------------------------------------
def call(bus, service: str, method: str, path: str, *, user: str, admin: bool = False, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    event = http_event(method, path, body=body, claims=claims_for(user, admin=admin), headers=headers)
    with override_settings(bus.settings_for(service)):
        response = bus.apis[service](event, LocalLambdaContext(function_name=f"{service}-api"))
    return response["statusCode"], json.loads(response["body"]) if response.get("body") else None


def place(bus, user: str, product: str, address: dict, method: str = "pm_card_visa", **extra) -> dict:
    status, body = call(bus, "order", "POST", "/orders", user=user, body={
        "items": [{"productId": product, "quantity": 1}], "paymentMethod": method, "shippingAddress": address,
        **extra})
    assert status == 202, body
    return body


def poison_with_personal_data(bus) -> None:
    """A record that carries Ada's (sealed) e-mail address and can never be applied: no ``version``."""
    with override_settings(bus.settings_for("user")):
        email = personal.seal(ADA, "email", EMAIL)
    envelope = event_from_command(event_type="UserUpdated", event_version="v2", service="user",
                                  correlation_id="corr-poison", user_id=ADA,
                                  data={"userId": ADA, "email": email.to_wire()})
    record = to_record(envelope)
    bus.inject("user-events", record.key, record.value, record.headers)


def trail_of(bus, correlation_id: str) -> list[dict]:
    status, body = call(bus, "audit", "GET", f"/audit/{correlation_id}", user=ADMIN, admin=True)
    assert status == 200, body
    return body["events"]


def published_with(bus, correlation_id: str) -> dict[str, dict]:
    return {e["eventId"]: e for topic in bus.log for e in bus.events(topic) if e["correlationId"] == correlation_id}


def archived_envelopes(archive: dict[str, Any]) -> list[dict[str, Any]]:
    """Every envelope of every archive object (JSON Lines: one envelope a line)."""
    return [json.loads(line) for body in archive.values() for line in body.decode().splitlines() if line]


def assert_complete_and_verifiable(bus, correlation_id: str, archive: dict[str, Any],
                                   root: str = "OrderCreated") -> list[str]:
    """Every event of a trail is in the audit trail and the archive, unchanged, each naming a cause that is in
    the trail; one root (besides the audit records of API calls). Returns the event types, causes first."""
    published = published_with(bus, correlation_id)
    trail = trail_of(bus, correlation_id)
    assert {e["eventId"] for e in trail} == set(published)
    by_id = {e["eventId"]: e for e in trail}
    roots = [e for e in trail if e["causationId"] is None]
    assert [r["eventType"] for r in roots if r["eventType"] != "AuditRecorded"] == [root]
    for event in trail:
        assert event == published[event["eventId"]]  # the trail holds the events as they were published
        if event["causationId"] is not None:
            assert event["causationId"] in by_id, event
        # archived at least once (one JSON Lines object per batch, partition and day), every copy unchanged
        stored = [e for e in archived_envelopes(archive) if e["eventId"] == event["eventId"]]
        assert stored and all(copy == event for copy in stored), (event, stored)
    return [e["eventType"] for e in trail]


# --- the proof ------------------------------------------------------------------------------------------
def test_an_erased_customer_leaves_no_readable_trace_and_their_orders_trail_stays_complete(
        bus, recorder, log_lines, capfd):
    status, mug = call(bus, "catalog", "POST", "/products", user=ADMIN, admin=True,
                       body={"sku": "MUG", "name": "Mug", "price": {"amount": 1250, "currency": "EUR"}})
    assert status == 201, mug
    bus.pump()
    assert call(bus, "inventory", "POST", f"/inventory/{mug['productId']}/adjustments", user=ADMIN, admin=True,
                body={"delta": 10, "reason": "initial"})[0] == 200
    mug_id = mug["productId"]

    # Ada registers (with an Idempotency-Key: the kept first answer must hold nothing of her), Grace too.
    for user, email, name in ((ADA, EMAIL, NAME), (GRACE, GRACE_EMAIL, "Grace Hopper")):
        status, body = call(bus, "user", "POST", "/users", user=user, body={"email": email, "name": name},
                            headers={"Idempotency-Key": f"register-{user}"})
        assert status == 201 and set(body) == {"userId", "status", "version", "createdAt"}, body
    bus.pump()
    # A cart she checks out, one she leaves open; an order that is confirmed, one that is declined.
    _, used_cart = call(bus, "cart", "POST", "/carts", user=ADA, body={"items": [{"productId": mug_id, "quantity": 1}]})
    _, open_cart = call(bus, "cart", "POST", "/carts", user=ADA, body={"items": [{"productId": mug_id, "quantity": 2}]})
    confirmed = place(bus, ADA, mug_id, ADDRESS, cartId=used_cart["cartId"])
    declined = place(bus, ADA, mug_id, ADDRESS, method="pm_card_chargeDeclined")
    place(bus, GRACE, mug_id, GRACE_ADDRESS)
    assert call(bus, "user", "PATCH", f"/users/{ADA}", user=ADA, body={"name": NEW_NAME})[0] == 200
    bus.pump()
    poison_with_personal_data(bus)
    bus.pump()

    # Before: the services read what they need of her...
    assert call(bus, "order", "GET", f"/orders/{confirmed['orderId']}", user=ADA)[1]["status"] == "CONFIRMED"
    assert call(bus, "order", "GET", f"/orders/{declined['orderId']}", user=ADA)[1]["status"] == "CANCELLED"
    assert call(bus, "order", "GET", f"/orders/{confirmed['orderId']}", user=ADA)[1]["shippingAddress"] == ADDRESS
    assert call(bus, "shipping", "GET", f"/orders/{confirmed['orderId']}/shipment", user=ADA)[1]["address"] == ADDRESS
    assert call(bus, "user", "GET", f"/users/{ADA}", user=ADA)[1]["email"] == EMAIL
    assert call(bus, "order", "GET", f"/users/{ADA}/orders", user=ADA)[1]["customerName"] == NEW_NAME
    to_ada = [subject for to, subject in recorder.sent if to == EMAIL]
    assert {"Welcome to shopstream", "Your order is confirmed", "Your payment did not go through",
            "Your order was cancelled", "Your profile was updated"} <= set(to_ada)
    dead = every_dead_letter(bus)
    assert {where.split()[1] for where in dead} == {naming.dlq("order", "user-replica"),
                                                    naming.dlq("notification", "user-notices"),
                                                    naming.dlq("audit", "trail-user")}
    # ...and nothing of her is kept or sent anywhere in clear: only sealed, which the strongest reader opens.
    archive = every_archive_object()
    everything = {**every_table_item(), **every_topic_record(bus), **archive, **dead}
    assert traces(everything, open_sealed=False) == []
    assert places_holding(ADA) == KEPT_SEALED | {("user", "USER"), ("order", "REPLICA"), ("notification", "CONTACT"),
                                                ("customer-keys", "cust-ada")}
    readable = traces(everything)
    for where in ("table shopstream-local-user ", "table shopstream-local-order ", "table shopstream-local-shipping ",
                  "table shopstream-local-notification ", "topic user-events", "topic order-events", "archive ",
                  "dlq "):
        assert any(line.startswith(where) for line in readable), where

    # The erasure: by Ada, again (nothing new), by someone else (not theirs to ask), by an admin (nothing new).
    status, erased = call(bus, "user", "POST", f"/users/{ADA}/erasure", user=ADA)
    assert status == 202 and erased["status"] == "ERASED", erased
    assert call(bus, "user", "POST", f"/users/{ADA}/erasure", user=ADA) == (202, erased)
    assert call(bus, "user", "POST", f"/users/{ADA}/erasure", user=GRACE)[0] == 404
    assert call(bus, "user", "POST", f"/users/{ADA}/erasure", user=ADMIN, admin=True) == (202, erased)
    bus.pump()
    assert [e["data"] for e in bus.events("user-events") if e["eventType"] == "UserErased"] == [
        {"userId": ADA, "version": 3}]
    erasure_audits = [e["data"] for e in bus.events("audit-events") if e["data"]["action"].endswith("/erasure")]
    assert sorted((a["actor"], a["statusCode"]) for a in erasure_audits) == sorted([
        (ADA, 202), (ADA, 202), (GRACE, 404), (ADMIN, 202)])  # keyed by actor: not in one partition

    # What follows an erasure: the parcel still ships (without a readable address), nothing is sent to her.
    sent_before = len(recorder.sent)
    shipment = f"shp_{confirmed['orderId']}"
    for action in ("dispatch", "deliver"):
        assert call(bus, "shipping", "POST", f"/shipments/{shipment}/{action}", user=ADMIN, admin=True)[0] == 200
        bus.pump()
    assert recorder.sent[sent_before:] == []
    assert call(bus, "order", "GET", f"/orders/{confirmed['orderId']}", user=ADA)[1]["status"] == "DELIVERED"
    assert call(bus, "order", "GET", f"/orders/{confirmed['orderId']}", user=ADA)[1]["shippingAddress"] is None
    assert call(bus, "shipping", "GET", f"/shipments/{shipment}", user=ADMIN, admin=True)[1]["address"] is None
    assert call(bus, "order", "GET", f"/users/{ADA}/orders", user=ADA)[1]["customerName"] is None
    profile = call(bus, "user", "GET", f"/users/{ADA}", user=ADMIN, admin=True)[1]
    assert (profile["status"], profile.get("email"), profile.get("name")) == ("ERASED", None, None)
    assert call(bus, "cart", "GET", f"/carts/{open_cart['cartId']}", user=ADA)[0] == 404
    assert call(bus, "cart", "POST", "/carts", user=ADA, body={"items": []})[0] == 422
    assert call(bus, "user", "POST", "/users", user=ADA, body={"email": EMAIL, "name": NAME})[0] == 409
    assert call(bus, "order", "POST", "/orders", user=ADA, body={
        "items": [{"productId": mug_id, "quantity": 1}], "paymentMethod": "pm_card_visa",
        "shippingAddress": ADDRESS})[0] == 422
    bus.pump()

    # After: no readable trace of her anywhere: tables, topics, every archive version, dead letters, log lines.
    archive = every_archive_object()
    dead = every_dead_letter(bus)
    assert len(dead) == 3  # the poison record is still there, unreadable
    captured = capfd.readouterr()
    assert any("customer erased" in line for line in log_lines.lines)  # the capture sees the services' logs
    everything = {**every_table_item(), **every_topic_record(bus), **archive, **dead,
                  **{f"log {n}": line for n, line in enumerate(log_lines.lines)},
                  "stdout": captured.out, "stderr": captured.err}
    assert traces(everything) == []
    # Each service dropped its copies (profile, replica, contact, the key); sealed ones stay only where the
    # record of what happened keeps them, unreadable.
    assert places_holding(ADA) <= KEPT_SEALED
    # Grace's data is untouched and readable by the services that need it.
    assert call(bus, "user", "GET", f"/users/{GRACE}", user=GRACE)[1]["email"] == GRACE_EMAIL
    assert traces(everything, (GRACE_EMAIL, "Harvard Yard"))

    # The audit chain of each of her orders is complete: every event present, unchanged, each cause in it.
    confirmed_chain = assert_complete_and_verifiable(bus, confirmed["correlationId"], archive)
    assert {"OrderCreated", "InventoryReserved", "PaymentInitiated", "PaymentProcessed", "OrderConfirmed",
            "CartUpdated", "ShippingCreated", "NotificationSent"} <= set(confirmed_chain)
    declined_chain = assert_complete_and_verifiable(bus, declined["correlationId"], archive)
    assert {"OrderCreated", "PaymentFailed", "OrderCancelled", "InventoryReleased"} <= set(declined_chain)
    # the admin's dispatch and delivery after the erasure start trails of their own (API commands)
    for command in ("ShippingDispatched", "ShippingDelivered"):
        [started] = [e for e in bus.events("shipping-events") if e["eventType"] == command
                     and e["data"]["orderId"] == confirmed["orderId"]]
        chain = assert_complete_and_verifiable(bus, started["correlationId"], archive, root=command)
        assert "NotificationSent" not in chain  # suppressed: she was erased
    created = next(e for e in trail_of(bus, confirmed["correlationId"]) if e["eventType"] == "OrderCreated")
    assert created["eventVersion"] == "v2" and created["data"]["shippingAddress"]["kid"] == ADA
    with pytest.raises(personal.Unreadable), override_settings(bus.settings_for("order")):
        personal.unseal(created["data"]["shippingAddress"], "address")


# --- a customer who signed up but never made a profile (issue 21) ------------------------------------------
class SignIns:
    """The identity provider: moto's Cognito, made as stacks/platform.py makes it (people sign in with their
    e-mail address), and the user service told its pool as on AWS."""

    def __init__(self, monkeypatch) -> None:
        import boto3

        self.cognito = boto3.client("cognito-idp")
        self.pool_id = self.cognito.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
        monkeypatch.setenv("SHOPSTREAM_USER_POOL_ID", self.pool_id)
        reset_settings()
        self.deletions_to_fail = 0

    def sign_up(self, email: str) -> str:
        """A sign-up (and nothing more): returns the subject, the id of the customer in the shop."""
        created = self.cognito.admin_create_user(UserPoolId=self.pool_id, Username=email,
                                                 UserAttributes=[{"Name": "email", "Value": email}])["User"]
        return next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")

    def emails(self) -> set[str]:
        return {a["Value"] for u in self.cognito.list_users(UserPoolId=self.pool_id)["Users"]
                for a in u["Attributes"] if a["Name"] == "email"}

    def fail_deletions(self, times: int) -> None:
        """The next ``times`` AdminDeleteUser calls of the user service fail as an outage would (an internal
        error after botocore's own retries)."""
        from botocore.exceptions import ClientError

        from shopstream import aws

        def outage(**_: Any) -> None:
            if self.deletions_to_fail:
                self.deletions_to_fail -= 1
                raise ClientError({"Error": {"Code": "InternalErrorException", "Message": "try again"}},
                                  "AdminDeleteUser")

        self.deletions_to_fail = times
        aws.client("cognito-idp").meta.events.register(  # once: unique_id
            "before-call.cognito-identity-provider.AdminDeleteUser", outage, unique_id="identity-outage")


@pytest.fixture
def sign_ins(bus, monkeypatch):
    return SignIns(monkeypatch)


def test_a_customer_without_a_profile_is_erased_by_themself_or_an_admin_and_by_no_one_else(bus):
    """Signed up (a token) but never registered a profile: the erasure still answers 202, leaves a tombstone
    that refuses a later registration and emits UserErased (version 1), which the other services apply."""
    newcomer, other = "cust-newcomer", "cust-other"
    assert call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=GRACE)[0] == 404  # not theirs to ask
    status, erased = call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=newcomer)
    assert status == 202 and (erased["userId"], erased["status"]) == (newcomer, "ERASED") and erased["erasedAt"]
    assert call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=newcomer) == (202, erased)
    assert call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=ADMIN, admin=True) == (202, erased)
    assert call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=GRACE)[0] == 404
    status, by_admin = call(bus, "user", "POST", f"/users/{other}/erasure", user=ADMIN, admin=True)
    assert status == 202 and by_admin["status"] == "ERASED", by_admin
    assert call(bus, "user", "POST", f"/users/{other}/erasure", user=other) == (202, by_admin)
    bus.pump()

    assert sorted(e["data"]["userId"] for e in bus.events("user-events") if e["eventType"] == "UserErased"
                  and e["data"]["version"] == 1) == [newcomer, other]
    assert len([e for e in bus.events("user-events") if e["eventType"] == "UserErased"]) == 2  # once each
    for user, accepted in ((newcomer, erased), (other, by_admin)):
        profile = call(bus, "user", "GET", f"/users/{user}", user=ADMIN, admin=True)[1]
        assert (profile["status"], profile["version"], profile["erasedAt"]) == ("ERASED", 1, accepted["erasedAt"])
        assert profile.get("email") is None and profile.get("name") is None
        assert call(bus, "user", "POST", "/users", user=user, body={"email": EMAIL, "name": NAME})[0] == 409
        assert call(bus, "cart", "POST", "/carts", user=user, body={"items": []})[0] == 422  # the cart service knows
    assert places_holding(newcomer) == places_holding(other) == set()  # no key was ever made, none is made
    # Someone else's 404 changed nothing: Grace can still register.
    assert call(bus, "user", "POST", "/users", user=GRACE, body={"email": GRACE_EMAIL, "name": "Grace Hopper"})[0] \
        == 201



def test_a_registration_that_commits_between_the_erasures_read_and_its_commit_is_erased(bus, monkeypatch):
    """The erasure read no profile; the customer registers before the erasure commits. The tombstone's condition
    (no profile) fails, the erasure reads again and erases the new profile: not both win, none is lost."""
    from shopstream.request import Caller, Request, serving
    from user import logic, store
    from user.models import RegisterUser

    newcomer, read = "cust-newcomer", store.get

    def registered_meanwhile(user_id: str):
        found = read(user_id)
        if found is None and user_id == newcomer:
            monkeypatch.setattr(store, "get", read)  # once
            caller = Caller(user_id=newcomer, groups=frozenset(), correlation_id="corr-register")
            with serving(Request(service="user", method="POST", path="/users", caller=caller)):
                logic.register(caller, RegisterUser(email=EMAIL, name=NAME))
        return found

    monkeypatch.setattr(store, "get", registered_meanwhile)
    status, erased = call(bus, "user", "POST", f"/users/{newcomer}/erasure", user=newcomer)
    assert status == 202 and erased["status"] == "ERASED", erased
    bus.pump()
    assert [(e["eventType"], e["data"]["version"]) for e in bus.events("user-events")
            if e["data"]["userId"] == newcomer] == [("UserRegistered", 1), ("UserErased", 2)]
    profile = call(bus, "user", "GET", f"/users/{newcomer}", user=newcomer)[1]
    assert (profile["status"], profile["version"], profile.get("email")) == ("ERASED", 2, None)
    assert places_holding(newcomer) <= KEPT_SEALED  # the key made at registration went with the erasure

def test_the_sign_in_identity_goes_with_the_erasure_even_when_the_request_could_not_delete_it(bus, sign_ins):
    """The request deletes the identity if it can; UserErased's handler (user.identity-erasure) deletes it
    whatever happened to the request, and a redelivery of the event changes nothing."""
    ada = sign_ins.sign_up(EMAIL)  # signed up, never made a profile
    grace = sign_ins.sign_up(GRACE_EMAIL)
    sign_ins.fail_deletions(1)
    status, erased = call(bus, "user", "POST", f"/users/{ada}/erasure", user=ada)
    assert status == 202 and erased["status"] == "ERASED", erased  # the identity provider's failure is not hers
    assert sign_ins.emails() == {EMAIL, GRACE_EMAIL}  # the request could not delete it...
    bus.pump()
    assert sign_ins.emails() == {GRACE_EMAIL}  # ...the erasure's event did
    assert every_dead_letter(bus) == {}

    # A redelivery of UserErased (after a lost response, a replay) finds nothing to delete and fails nothing.
    spec, handler = catalog.service("user"), catalog.service("user").handler("identity-erasure")
    [(partition, offset)] = [(p, o) for p, records in bus.log["user-events"].items() for o, r in enumerate(records)
                             if json.loads(r.value)["eventType"] == "UserErased"]
    cursor = bus.cursors[("user", "identity-erasure", partition)]
    cursor.next_offset = offset
    assert bus.deliver_step(spec, handler, partition, times=2) >= 1
    assert (cursor.next_offset, cursor.failures) == (len(bus.log["user-events"][partition]), 0)
    assert sign_ins.emails() == {GRACE_EMAIL} and every_dead_letter(bus) == {}
    # An erased customer with a profile loses their identity the same way.
    call(bus, "user", "POST", "/users", user=grace, body={"email": GRACE_EMAIL, "name": "Grace Hopper"})
    bus.pump()
    sign_ins.fail_deletions(1)
    assert call(bus, "user", "POST", f"/users/{grace}/erasure", user=ADMIN, admin=True)[0] == 202
    bus.pump()
    assert sign_ins.emails() == set()


def test_while_the_identity_provider_fails_the_erasures_event_is_reported_failed_and_retried(bus, sign_ins):
    """Cognito down: the request answers 202 all the same, and the handler reports the UserErased record failed
    (batchItemFailures: its mapping retries from it; after its retries the on-failure destination keeps it for a
    redrive) instead of taking it as done or as poison. Once Cognito is back, the retry deletes the identity."""
    ada, grace = sign_ins.sign_up(EMAIL), sign_ins.sign_up(GRACE_EMAIL)
    assert call(bus, "user", "POST", "/users", user=grace, body={"email": GRACE_EMAIL, "name": "Grace Hopper"})[0] \
        == 201
    sign_ins.fail_deletions(10)
    assert call(bus, "user", "POST", f"/users/{ada}/erasure", user=ada)[0] == 202
    bus.relay_step("user")
    records = {json.loads(r.value)["eventType"]: msk_record(topic="user-events", partition=p, offset=o,
                                                            key=r.key.encode(), value=r.value, headers=list(r.headers))
               for p, partition in bus.log["user-events"].items() for o, r in enumerate(partition)}
    batch = msk_event([records["UserRegistered"], records["UserErased"]])  # Grace's registration: not taken
    consumer = bus.consumer_modules["user"].identity_erasure
    for _ in range(2):  # the mapping's retries
        with override_settings(bus.settings_for("user", "identity-erasure")):
            response = consumer(batch, LocalLambdaContext(function_name="user-identity-erasure"))
        assert [f["itemIdentifier"]["offset"] for f in response["batchItemFailures"]] == [
            records["UserErased"]["offset"]]
        assert sign_ins.emails() == {EMAIL, GRACE_EMAIL}
    assert every_dead_letter(bus) == {}  # transient: not dead-lettered as poison

    sign_ins.fail_deletions(0)  # Cognito is back
    bus.pump()
    assert sign_ins.emails() == {GRACE_EMAIL}
