"""What must hold once a seeded simulation (local/simulation.py) has settled, whatever its schedule was.

Read black-box from what the system keeps (tables, topics, dead letters, buckets, the provider's ledger, the
e-mails handed to the channel), beside what the simulation itself observed of the platform (which records
failed and where they went, which records a handler applied, which events were committed).
"""

from __future__ import annotations

import base64
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from local import naming
from local.bus import InProcessBus
from notification.logic import notification_id_for
from notification.notices import customer_notice
from order import store as order_store
from payment import store as payment_store
from shopstream import aws, catalog
from shopstream.config import override_settings
from shopstream.dynamo import from_attributes
from shopstream.events import model_of

# moto's modules are imported where its backends are read: local.simulation imports this module, and its
# --summarise (`make simulate-summary`) must not load moto (~0.3 s).

KEPT = ("CONFIRMED", "SHIPPED", "DELIVERED")
STREET = "1 Main St"  # every simulated order's street address: sealed, never in clear


class SentMail(Protocol):
    """The e-mail channel as the simulation counts what it was handed (local/simulation.py)."""

    sent: Counter[str]  # by message id
    handed: list[tuple[str, str, int]]  # (message id, customer, clock)


class Settled(Protocol):
    """What the checks read of a settled simulation (local/simulation.py's Simulation), and write (outcome, paths)."""

    bus: InProcessBus
    order_ids: list[str]
    registered: set[str]
    erased: list[str]
    erased_at: dict[str, int]
    command_violations: list[tuple[str, tuple[str, ...]]]
    failed_records: dict[tuple[str, str, int, int], str]
    applied: set[tuple[str, str, int, int]]
    committed: dict[str, tuple[str, str]]
    interrupted_sends: set[str]
    log_lines: list[str]
    outcome: Counter[str]
    paths: Counter[str]

    @property
    def sender(self) -> SentMail: ...

    def held(self) -> tuple[set[tuple[str, str, int, int]], set[str]]: ...

    def personal_values(self) -> list[str]: ...


@dataclass
class Violation:
    """Something that must hold and does not, and the keys (ids) whose steps the seed's trace shows."""

    what: str
    keys: frozenset[str] = frozenset()


def scan_table(service: str) -> list[dict[str, Any]]:
    return scan(naming.table(service))


def scan(table: str) -> list[dict[str, Any]]:
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table)
    return [from_attributes(item) for page in pages for item in page["Items"]]


# --- what moto holds, read directly ----------------------------------------------------------------
# The checks run beside moto, in the simulation's process, and read its backends directly: through the API
# they were a tenth of a seed (a scan, a GetObject, a ReceiveMessage at a time). They see everything the API
# shows and more (messages in flight, every version of every object). While the schedule runs, the
# simulation still reads through the API (scan_table): its calls are part of the seed.

def _backend(service: str) -> Any:
    """moto's backend of a service for the simulation's account and region (that of its clients)."""
    from moto.backends import get_backend
    from moto.core import DEFAULT_ACCOUNT_ID

    region = aws.client("dynamodb").meta.region_name
    return get_backend(service)[DEFAULT_ACCOUNT_ID]["aws" if service == "s3" else region]  # type: ignore[call-overload]


def stored(table: str) -> list[dict[str, Any]]:
    """Every item of a table, as a scan through the API returns it (binary values as bytes)."""
    return [from_attributes({name: _as_parsed(value) for name, value in item.to_json()["Attributes"].items()})
            for item in _backend("dynamodb").get_table(table).all_items()]


def stored_items(service: str) -> list[dict[str, Any]]:
    return stored(naming.table(service))


def _as_parsed(value: dict[str, Any]) -> dict[str, Any]:
    """An attribute value as botocore hands it over: binary values as bytes (moto keeps some as it received
    them, base64-encoded)."""
    def binary(inner: str | bytes) -> bytes:
        return inner if isinstance(inner, bytes) else base64.b64decode(inner)

    kind, inner = next(iter(value.items()))
    if kind == "B":
        return {"B": binary(inner)}
    if kind == "BS":
        return {"BS": [binary(v) for v in inner]}
    if kind == "M":
        return {"M": {k: _as_parsed(v) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_as_parsed(v) for v in inner]}
    return value


def stored_objects() -> list[tuple[str, str, bytes]]:
    """(bucket, key, body) of every version of every object (delete markers have none)."""
    from moto.s3.models import FakeKey

    buckets = _backend("s3").buckets
    if naming.AUDIT_ARCHIVE_BUCKET not in buckets:  # reading the wrong account or region would find nothing
        raise RuntimeError(f"moto holds no bucket {naming.AUDIT_ARCHIVE_BUCKET}: not the simulation's moto")
    return [(name, key, version.value) for name, bucket in sorted(buckets.items())
            for key, versions in bucket.keys.iterlists() for version in versions if isinstance(version, FakeKey)]


def queued() -> dict[str, list[str]]:
    """The body of every message of every queue (visible, in flight or delayed), by queue name."""
    queues = _backend("sqs").queues
    if not queues:
        raise RuntimeError("moto holds no queue: not the simulation's moto")
    return {name: [message.body for message in queue._messages] for name, queue in sorted(queues.items())}


def email_of(user: str, generation: int = 0) -> str:
    return f"{user}.mail{generation or ''}@example.com"


def name_of(user: str, generation: int = 0) -> str:
    return f"Customer {user.upper()}{' the ' + str(generation) if generation else ''}"


def events(simulation: Settled, topic: str | None = None) -> list[dict[str, Any]]:
    """The envelopes published (on one topic, or all): what the simulation put there as poison is not one."""
    topics = [topic] if topic else list(simulation.bus.log)
    return [e for t in topics for e in simulation.bus.events(t)
            if isinstance(e, dict) and "eventType" in e and "eventId" in e and isinstance(e.get("data"), dict)]


def orders() -> dict[str, dict[str, Any]]:
    return {i["order_id"]: i for i in stored_items("order") if i["sk"] == "STATE"}


def check(simulation: Settled) -> list[Violation]:
    """Everything that must hold once the system has settled."""
    out: list[Violation] = []

    def fail(what: str, *keys: str) -> None:
        out.append(Violation(what, frozenset(keys)))

    for what, keys in simulation.command_violations:
        fail(what, *keys)
    placed = orders()
    _check_sagas(simulation, placed, fail)
    _check_money(simulation, placed, fail)
    _check_stock(placed, fail)
    _check_parcels(placed, fail)
    _check_availability(fail)
    _check_notices(simulation, fail)
    _check_trail(simulation, fail)
    _check_recovery(simulation, fail)
    _check_carts(simulation, fail)
    _check_personal_data(simulation, fail)
    _check_projection(simulation, placed, fail)
    simulation.outcome = Counter(o["status"] for o in placed.values())
    return out


Fail = Callable[..., None]


def _check_sagas(simulation: Settled, placed: dict[str, dict[str, Any]], fail: Fail) -> None:
    for order_id in simulation.order_ids:
        if order_id not in placed:
            fail(f"{order_id}: accepted but never stored", order_id)
    for order_id, order in placed.items():
        if order["status"] == "PENDING":
            fail(f"{order_id}: still PENDING after the system settled", order_id)
        if order.get("cancellation_requested"):
            fail(f"{order_id}: a cancellation request was never answered", order_id)
        if order["status"] == "CANCELLED" and not order.get("cancellation_reason"):
            fail(f"{order_id}: cancelled without a reason", order_id)


def _check_money(simulation: Settled, placed: dict[str, dict[str, Any]], fail: Fail) -> None:
    """Order by order, by amount: what the provider captured less what it refunded is the order's total when it
    is kept and nothing when it is cancelled (the provider's ledger records the amounts each call moved). Every
    authorisation the provider granted was captured or voided, not both, and none is left holding the customer's
    money after the drain; nothing was captured, voided or refunded that was not authorised (or captured)."""
    payment_items = stored_items("payment")
    payments = {p["orderId"]: p for p in payment_items if p["sk"] == "PAYMENT"}
    ledger = {p["pk"].removeprefix("PROVIDER#"): p for p in payment_items if p["sk"] == "LEDGER"}
    held_total = owed_total = 0
    for order_id, order in placed.items():
        held, owed = _check_order_money(simulation, order_id, order, payments.get(order_id), ledger, fail)
        held_total += held
        owed_total += owed
    for record in payment_items:  # the provider's own view of each authorisation
        if record["sk"] == "AUTHORISATION" and record["status"] == "AUTHORISED":
            fail(f"provider: authorisation {record['pk'].removeprefix('PROVIDER#')} still holds {record['amount']} "
                 "after the drain")
    if held_total != owed_total:
        fail(f"money: provider holds {held_total}, kept orders are worth {owed_total}")


def _check_order_money(simulation: Settled, order_id: str, order: dict[str, Any], payment: dict[str, Any] | None,
                       ledger: dict[str, dict[str, Any]], fail: Fail) -> tuple[int, int]:
    """One order's money (``_check_money``): what the provider holds of it, and what it is owed."""
    payment_id = payment_store.payment_id_for(order_id)

    def moved(call: str) -> int:
        record = ledger.get(payment_store.provider_key(call, payment_id), {})
        return int(record.get("amount", 0)) if record.get("succeeded") else 0

    authorised, captured, refunded = moved("auth"), moved("capture"), moved("refund")
    voided = bool(ledger.get(payment_store.provider_key("void", payment_id), {}).get("succeeded"))
    kept = order["status"] in KEPT
    owed = order["total"]["amount"] if kept else 0
    if captured - refunded != owed:
        fail(f"{order_id}: order {order['status']} worth {order['total']['amount']}, but the provider captured "
             f"{captured} and refunded {refunded}", order_id)
    if refunded and not captured:
        fail(f"{order_id}: refunded without a capture", order_id)
    if (captured or voided) and not authorised:
        fail(f"{order_id}: {'captured' if captured else 'voided'} without an authorisation", order_id)
    if captured > authorised:
        fail(f"{order_id}: captured {captured} of an authorisation of {authorised}", order_id)
    if captured and voided:
        fail(f"{order_id}: its authorisation was both captured and voided", order_id)
    if authorised and not captured and not voided:
        fail(f"{order_id}: an authorisation of {authorised} left open after the drain (neither captured nor "
             "voided)", order_id)
    _check_payment_status(simulation, order_id, order, payment, kept, refunded, fail)
    return captured - refunded, owed


def _check_payment_status(simulation: Settled, order_id: str, order: dict[str, Any], payment: dict[str, Any] | None,
                          kept: bool, refunded: int, fail: Fail) -> None:
    status = payment["status"] if payment else None
    if kept and status != "CAPTURED":
        fail(f"{order_id}: kept order with payment {status}", order_id)
    if not kept and status not in ("CANCELLED", "FAILED", "REFUNDED", "VOIDED"):
        fail(f"{order_id}: cancelled order with payment {status}", order_id)
    if refunded and not order.get("refunded"):
        fail(f"{order_id}: refunded but the order does not know", order_id)
    if status in ("FAILED", "VOIDED", "REFUNDED"):  # the payment paths the schedule took
        why = "no stock" if payment and payment.get("stockFailed") else order.get("cancellation_reason")
        simulation.paths[f"payment {status.lower()}{f' ({why})' if status == 'VOIDED' else ''}"] += 1


def _check_stock(placed: dict[str, dict[str, Any]], fail: Fail) -> None:
    """Nothing created or lost, nothing left reserved, shipped units stay sold."""
    inventory = stored_items("inventory")
    reservations = {r["orderId"]: r for r in inventory if r["sk"] == "RESERVATION"}
    counters = [s for s in inventory if s["sk"] == "SHARD"]  # a product's stock is split over counters
    stocks: dict[str, Counter[str]] = {}
    for counter in counters:
        stocks.setdefault(counter["productId"], Counter()).update(
            {level: int(counter[level]) for level in ("available", "reserved", "sold", "received")})
    sold_by_kept: Counter[str] = Counter()
    for order_id, order in placed.items():
        reservation = reservations.get(order_id)
        status = reservation["status"] if reservation else None
        if order["status"] in KEPT:
            for item in order["items"]:
                sold_by_kept[item["productId"]] += item["quantity"]
            if status != "COMMITTED":
                fail(f"{order_id}: kept order with reservation {status}", order_id)
        elif status in ("RESERVED", "COMMITTED"):
            fail(f"{order_id}: cancelled order still holds stock ({status})", order_id)
    for counter in counters:  # each on its own: what makes the sum impossible to oversell
        if counter["received"] != counter["available"] + counter["reserved"] + counter["sold"] or min(
                counter["available"], counter["reserved"], counter["sold"]) < 0:
            fail(f"{counter['productId']} counter {counter['shard']}: received {counter['received']}, available "
                 f"{counter['available']}, reserved {counter['reserved']}, sold {counter['sold']}",
                 counter["productId"])
    for product_id, stock in stocks.items():
        if stock["received"] != stock["available"] + stock["reserved"] + stock["sold"]:
            fail(f"{product_id}: received {stock['received']} != available {stock['available']} + reserved "
                 f"{stock['reserved']} + sold {stock['sold']}", product_id)
        if stock["reserved"] != 0 or stock["available"] < 0:
            fail(f"{product_id}: reserved {stock['reserved']}, available {stock['available']} after settling",
                 product_id)
        if stock["sold"] != sold_by_kept[product_id]:
            fail(f"{product_id}: sold {stock['sold']} but kept orders bought {sold_by_kept[product_id]}", product_id)


def _check_parcels(placed: dict[str, dict[str, Any]], fail: Fail) -> None:
    """One parcel per kept order, none dispatched for a cancelled one."""
    shipments = {s["orderId"]: s for s in stored_items("shipping") if s["sk"] == "SHIPMENT"}
    for order_id, order in placed.items():
        shipment = shipments.get(order_id)
        status = shipment["status"] if shipment else None
        if order["status"] in KEPT and status not in ("CREATED", "DISPATCHED", "DELIVERED"):
            fail(f"{order_id}: kept order with shipment {status}", order_id)
        if order["status"] == "CANCELLED" and status not in (None, "CANCELLED"):
            fail(f"{order_id}: cancelled order with a {status} parcel", order_id)
        if order["status"] in ("SHIPPED", "DELIVERED") and status not in ("DISPATCHED", "DELIVERED"):
            fail(f"{order_id}: order {order['status']} but parcel {status}", order_id)


def _check_availability(fail: Fail) -> None:
    """The availability the catalog shows follows inventory."""
    stocks: Counter[str] = Counter()
    for counter in (s for s in stored_items("inventory") if s["sk"] == "SHARD"):
        stocks[counter["productId"]] += int(counter["available"])
    for product in (i for i in stored_items("catalog") if i["sk"] == "PRODUCT"):
        shown = sum(int(units) for units in product.get("shardAvailable", {}).values())
        if product["productId"] in stocks and shown != stocks[product["productId"]]:
            fail(f"{product['productId']}: catalog shows {shown} available, inventory has "
                 f"{stocks[product['productId']]}", product["productId"])


def _check_notices(simulation: Settled, fail: Fail) -> None:
    """Every customer-visible event published gets its notice, handed to the channel exactly once while the
    channel is healthy (it always is here), except: SUPPRESSED for an erased customer (and cart reminders for a
    deactivated one), and UNCONFIRMED where the function died between recording the notice and handing it over
    (the channel has no idempotency key: sending it again could send it twice). Nothing is handed over for a
    customer after their erasure."""
    sender = simulation.sender
    messages = {m["notificationId"]: m for m in stored_items("notification") if m["sk"] == "MESSAGE"}
    for message_id, count in sender.sent.items():
        if count > 1:
            fail(f"notification {message_id} sent {count} times")
    for message in messages.values():
        sent = sender.sent[message["notificationId"]]
        if message["status"] == "FAILED":
            fail(f"notification {message['notificationId']} FAILED ({message.get('error')}) though the channel is "
                 "healthy", message.get("userId", ""))
        if message["status"] == "SENDING":
            fail(f"notification {message['notificationId']} never closed", message.get("userId", ""))
        if message["status"] == "SENT" and sent != 1:
            fail(f"notification {message['notificationId']} recorded SENT but sent {sent} times",
                 message.get("userId", ""))
        if message["status"] == "UNCONFIRMED" and message["notificationId"] not in simulation.interrupted_sends \
                and sent == 0:
            fail(f"notification {message['notificationId']} closed UNCONFIRMED though no attempt was cut off "
                 "and it was never sent", message.get("userId", ""))
    for event in events(simulation):
        template = _customer_template(event)
        if template is None:
            continue
        user = event["data"].get("userId", "")
        if notification_id_for(event["eventId"], template) not in messages:
            fail(f"no {template} notice for {event['eventType']} {event['eventId'][:8]} of {user}", user,
                 event["data"].get("orderId", ""))
    for message_id, user, at in sender.handed:
        erased_at = simulation.erased_at.get(user)
        if erased_at is not None and at > erased_at:
            fail(f"notification {message_id} handed over for {user} after their erasure", user)


def _customer_template(event: dict[str, Any]) -> str | None:
    """The template of the notice the event gives its customer, if it gives one (notification.notices)."""
    if not any(ref.startswith("notification.") and ref != "notification.alert-notices"
               for ref in catalog.consumers_of(event["eventType"])):
        return None
    spec = catalog.event(event["eventType"], event["eventVersion"])
    notice = customer_notice(spec.topic, model_of(spec).model_validate(event["data"]))
    return notice.template if notice else None


def _check_trail(simulation: Settled, fail: Fail) -> None:
    """The audit trail holds every event, and every cause of every event; the archive holds every event the trail
    does, unless a trail handler's dead letter still holds its record (the archive is written after the batch)."""
    trail = {json.loads(i["envelope"])["eventId"] for i in stored_items("audit") if i["pk"].startswith("TRAIL#")}
    archived = {json.loads(line)["eventId"] for bucket, _, body in stored_objects()
                if bucket == naming.AUDIT_ARCHIVE_BUCKET for line in body.decode().splitlines() if line.strip()}
    held = {(topic, partition, offset) for queue, topic, partition, offset in simulation.held()[0]
            if queue.startswith("audit.trail-")}
    published: dict[str, dict[str, Any]] = {}
    unarchived_but_held: set[str] = set()
    for topic_name, topic in simulation.bus.log.items():
        for partition, records in topic.items():
            for offset, record in enumerate(records):
                try:
                    body = json.loads(record.value)
                except ValueError:
                    continue  # poison put on the topic by the simulation
                if isinstance(body, dict) and "eventId" in body:
                    published[body["eventId"]] = body
                    if (topic_name, partition, offset) in held:
                        unarchived_but_held.add(body["eventId"])
    for event_id, body in published.items():
        if event_id not in trail:
            fail(f"audit: {body['eventType']} {event_id} is not in the trail", body["data"].get("orderId", ""))
        elif event_id not in archived and event_id not in unarchived_but_held:
            fail(f"audit: {body['eventType']} {event_id} is in the trail but not in the archive",
                 body["data"].get("orderId", ""))
        cause = body.get("causationId")
        if cause and cause not in published:
            fail(f"audit: {body['eventType']} {event_id} names a cause that was never published",
                 body["data"].get("orderId", ""))


def _check_recovery(simulation: Settled, fail: Fail) -> None:
    """Nothing vanishes from the recovery paths: every record a handler failed on (dead-lettered as poison, or
    in a batch its mapping gave up) was applied later or is still held in a dead letter; every event a service
    committed was published or is still held in its relay's dead letter."""
    held, held_events = simulation.held()
    for key, how in sorted(simulation.failed_records.items()):
        if key not in simulation.applied and key not in held:
            handler, topic, partition, offset = key
            fail(f"{handler}: {topic}[{partition}]@{offset} ({how}) was neither applied nor kept in a dead letter")
    on_topics = {e["eventId"] for e in events(simulation)}
    for event_id, (event_type, service) in sorted(simulation.committed.items()):
        if event_id not in on_topics and event_id not in held_events:
            fail(f"{service}: {event_type} {event_id} was committed but neither published nor kept in a dead letter")


def _check_carts(simulation: Settled, fail: Fail) -> None:
    """A cart an order was placed from is closed (checked out, or closed before; deleted if its owner was
    erased): never left open to be used again or reminded of."""
    carts = {c["cartId"]: c for c in stored_items("cart") if c.get("sk") == "CART"}
    for event in events(simulation, "order-events"):
        cart_id = event["data"].get("cartId") if event["eventType"] == "OrderCreated" else None
        if cart_id and cart_id in carts and carts[cart_id]["status"] == "OPEN":
            fail(f"cart {cart_id}: checked out by {event['data']['orderId']} but still OPEN", cart_id,
                 event["data"]["orderId"])


def _check_personal_data(simulation: Settled, fail: Fail) -> None:
    """Never in clear anywhere: tables (idempotency tables too), topics, archive, dead letters, failed batches,
    the logs of the seed (when captured); nothing kept of an erased customer."""
    clear = sorted({*simulation.personal_values(), STREET})
    for where, text in _everything_kept(simulation):
        for value in clear:
            if value in text:
                fail(f"{where}: {value!r} in clear")
    _check_erased(simulation, fail)


def _everything_kept(simulation: Settled) -> Iterator[tuple[str, str]]:
    """Where each thing the system keeps is, and its text: tables' items, records, objects, letters, log lines."""
    for table in sorted(_backend("dynamodb").tables):
        for item in stored(table):
            yield f"{table} {item.get('pk', item.get('userId', item.get('id')))}", json.dumps(item, default=repr)
    for topic in simulation.bus.log.values():
        for records in topic.values():
            for record in records:
                yield f"{record.topic} {record.key}", record.value.decode("utf-8", "replace")
    for bucket, key, body in stored_objects():
        yield f"s3://{bucket}/{key}", _decoded(body)
    for queue, messages in queued().items():
        for message in messages:
            yield f"queue {queue}", _decoded(message.encode())
    for line in simulation.log_lines:
        yield "log", line


def _check_erased(simulation: Settled, fail: Fail) -> None:
    """Nothing kept of an erased customer: a tombstone profile, no key, tombstone replicas, no carts, one
    UserErased."""
    keys = {i["userId"] for i in stored(naming.CUSTOMER_KEYS_TABLE)}
    tables = {service: stored_items(service) for service in ("user", "order", "notification", "cart")}
    for user in simulation.erased:
        profile = next((i for i in tables["user"] if i["pk"] == f"USER#{user}"), {})
        if profile.get("status") != "ERASED" or {"email", "name"} & set(profile):
            fail(f"{user}: erased, but the profile is {profile.get('status')} with {sorted(profile)}", user)
        if user in keys:
            fail(f"{user}: erased, but their key is still in the key store", user)
        if user in simulation.registered:
            for service, pk in (("order", f"REPLICA#USER#{user}"), ("notification", f"CONTACT#{user}")):
                kept = next((i for i in tables[service] if i["pk"] == pk), None)
                if kept is None or not kept.get("erased") or set(kept) & {"email", "name", "status"}:
                    fail(f"{user}: erased, but {service} keeps {kept}", user)
        carts = [i["cartId"] for i in tables["cart"] if i.get("sk") == "CART" and i.get("userId") == user]
        if carts:
            fail(f"{user}: erased, but their carts {carts} remain", user)
        erasures = [e for e in events(simulation, "user-events")
                    if e["eventType"] == "UserErased" and e["data"]["userId"] == user]
        if len({e["eventId"] for e in erasures}) != 1:
            fail(f"{user}: {len(erasures)} UserErased events", user)


def _decoded(raw: bytes) -> str:
    """Text with every base64 string inside it decoded too (dead letters and failed batches carry records
    base64-encoded, sometimes twice: a payload holding a record's value)."""
    text = raw.decode("utf-8", "replace")
    seen, pending = [text], [text]
    while pending:
        for candidate in re.findall(r"[A-Za-z0-9+/]{16,}={0,2}", pending.pop()):
            try:
                decoded = base64.b64decode(candidate, validate=True).decode("utf-8")
            except ValueError:
                continue
            if decoded not in seen:
                seen.append(decoded)
                pending.append(decoded)
    return "\n".join(seen)


def _check_projection(simulation: Settled, placed: dict[str, dict[str, Any]], fail: Fail) -> None:
    """The event-sourced order state equals its projection."""
    with override_settings(simulation.bus.settings_for("order")):
        for order_id, projection in placed.items():
            rebuilt = order_store.rebuild(order_id)
            if (rebuilt.status, rebuilt.version) != (projection["status"], projection["version"]):
                fail(f"{order_id}: events fold to {rebuilt.status} v{rebuilt.version}, projection says "
                     f"{projection['status']} v{projection['version']}", order_id)
