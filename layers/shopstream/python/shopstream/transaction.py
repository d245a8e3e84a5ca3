"""One DynamoDB transaction per decision: the state change and the events it causes commit together.

Store modules add their conditional operations to a ``UnitOfWork``; ``emit`` adds an event as an
outbox item (see outbox.py) in the same ``TransactWriteItems`` call. A lost race surfaces as
``ConditionFailed``; a value DynamoDB can never store as ``Unstorable``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from shopstream import aws, tracing
from shopstream.config import get_settings
from shopstream.dynamo import from_attributes, to_attributes
from shopstream.envelope import EventEnvelope

if TYPE_CHECKING:
    from types_boto3_dynamodb.type_defs import TransactWriteItemTypeDef

# Imported where used, none of them by any function's init: shopstream.outbox (with .publisher and .wire: 3 ms on an
# API's init, 7 ms compiled from source as on Lambda) by the first emit; shopstream.direct only where direct publish
# is on (tests/infra/code_calls.py counts what it reaches for that setting only); botocore.exceptions (~2.5 ms) by
# the first commit, whose DynamoDB client loads it anyway.

MAX_TRANSACTION_ITEMS = 100
# A commit whose answer was lost (the connection dropped or timed out after botocore's own retries) is sent again
# this many times with the same ClientRequestToken: DynamoDB answers a repeat within 10 minutes with success and
# no second write, so the function learns its commit happened, and can publish its events (shopstream.direct).
ACKNOWLEDGEMENT_RETRIES = 2
T = TypeVar("T")
# Transactions committed per table by this process: the in-process bus polls a table's stream
# only when this moved (local/bus.py). Costs a dict update per commit.
commits: Counter[str] = Counter()


class ConditionFailed(Exception):
    """A condition in the transaction did not hold. ``reasons[i]`` is the code for action i."""

    def __init__(self, reasons: list[str | None]):
        super().__init__(f"transaction cancelled: {reasons}")
        self.reasons = reasons

    def failed_indexes(self) -> list[int]:
        return [i for i, code in enumerate(self.reasons) if code == "ConditionalCheckFailed"]


class Unstorable(Exception):
    """DynamoDB refuses the values themselves (key or item too large, number out of range, too many
    actions): every retry gets the same answer, so the input is rejected instead of retried."""


class Contention(RuntimeError):
    """Optimistic retries ran out under concurrent changes; transient (the caller retries later)."""


def _to_attributes(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return to_attributes(values) if values else None


class UnitOfWork:
    """One TransactWriteItems call. Store modules add their operations; ``emit`` adds events."""

    def __init__(self, table_name: str | None = None):
        self.table_name = table_name or get_settings().table_name
        self.actions: list[dict[str, Any]] = []
        self.events: list[EventEnvelope] = []

    def _action(self, kind: str, body: dict[str, Any], condition: str | None,
                names: dict[str, str] | None, values: dict[str, Any] | None, table: str | None = None) -> None:
        body = {"TableName": table or self.table_name, **body}
        if condition:
            body["ConditionExpression"] = condition
        if names:
            body["ExpressionAttributeNames"] = names
        attribute_values = _to_attributes(values)
        if attribute_values:
            body["ExpressionAttributeValues"] = attribute_values
        self.actions.append({kind: body})

    def put(self, item: dict[str, Any], *, condition: str | None = None,
            names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
            table: str | None = None) -> None:
        """``table``: another table than the service's own, in the same transaction (the key store)."""
        self._action("Put", {"Item": _to_attributes(item)}, condition, names, values, table)

    def put_versioned(self, item: dict[str, Any], read_version: int, *, field: str = "version") -> None:
        """Write ``item`` as version ``read_version + 1``, if nobody changed it since it was read at
        ``read_version`` (0: it did not exist). Optimistic concurrency for read-decide-write."""
        if read_version == 0:
            self.put({**item, field: 1}, condition="attribute_not_exists(pk)")
        else:
            self.put({**item, field: read_version + 1}, condition="#version = :read", names={"#version": field},
                     values={":read": read_version})

    def update(self, key: Mapping[str, Any], *, update: str, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> None:
        self._action("Update", {"Key": _to_attributes(key), "UpdateExpression": update}, condition, names, values)

    def delete(self, key: Mapping[str, Any], *, condition: str | None = None,
               names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
               table: str | None = None) -> None:
        self._action("Delete", {"Key": _to_attributes(key)}, condition, names, values, table)

    def check(self, key: Mapping[str, Any], *, condition: str,
              names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
              table: str | None = None) -> None:
        self._action("ConditionCheck", {"Key": _to_attributes(key)}, condition, names, values, table)

    def emit(self, envelope: EventEnvelope) -> None:
        """Queue an event; it is written as an outbox item in the same transaction."""
        from shopstream.outbox import outbox_item

        self.put(outbox_item(envelope), condition="attribute_not_exists(pk)")
        self.events.append(envelope)

    def commit(self) -> None:
        if not self.actions:
            return
        if len(self.actions) > MAX_TRANSACTION_ITEMS:
            raise Unstorable(f"{len(self.actions)} actions exceed DynamoDB's {MAX_TRANSACTION_ITEMS} per transaction")
        _before_commit(self)
        direct_items = None
        if self.events and get_settings().direct_publish:
            from shopstream import direct

            direct_items = direct.mark(self.actions)  # before the write: the items carry their grace
        from botocore.exceptions import HTTPClientError  # the client made next loads it anyway (see the top)

        try:
            if tracing.enabled():
                with tracing.span("commit", attributes={
                        "db.system.name": "aws.dynamodb", "db.operation.name": "TransactWriteItems",
                        "aws.dynamodb.table_names": [self.table_name], "shopstream.outbox.events": len(self.events)}):
                    self._write()
            else:
                self._write()
        except HTTPClientError:
            # No answer, even with the token: the write may have been applied. Count it, so that whoever waits on
            # the commit count (the local bus's relays) reads the table's stream: it holds the events if it was.
            commits[self.table_name] += 1
            raise
        commits[self.table_name] += 1
        for listener in _listeners:
            listener(self)
        _after_commit(self)
        if direct_items:  # committed and acknowledged: only now may the events leave
            direct.publish_committed(self.table_name, direct_items)

    def _write(self) -> None:
        from botocore.exceptions import HTTPClientError  # the client made next loads it anyway (see the top)

        dynamodb = aws.client("dynamodb")
        token = str(uuid.uuid4())
        for attempt in range(ACKNOWLEDGEMENT_RETRIES + 1):
            try:
                # _action builds each in the shape TransactWriteItems takes (a dict per kind: not a TypedDict)
                actions = cast("list[TransactWriteItemTypeDef]", self.actions)
                dynamodb.transact_write_items(TransactItems=actions, ClientRequestToken=token)
                _acknowledged(self)
                return
            except HTTPClientError:  # no answer (ReadTimeoutError, ConnectionClosedError...): ask again, same token
                if attempt == ACKNOWLEDGEMENT_RETRIES:
                    raise
            except dynamodb.exceptions.TransactionCanceledException as exc:
                reasons = [r.get("Code") if r.get("Code") != "None" else None
                           for r in exc.response.get("CancellationReasons", [])]
                if any(code == "ConditionalCheckFailed" for code in reasons):
                    raise ConditionFailed(reasons) from exc
                if any(code == "ValidationError" for code in reasons):
                    raise Unstorable(str(exc)[:500]) from exc
                raise
            except dynamodb.exceptions.ClientError as exc:
                _raise_unstorable_if_invalid(exc)
                raise


def _raise_unstorable_if_invalid(exc: Exception) -> None:
    """DynamoDB refused the request itself (an item too large, a malformed expression): Unstorable, which no retry
    mends. Any other error is left to the caller to raise."""
    if getattr(exc, "response", {}).get("Error", {}).get("Code") == "ValidationException":
        raise Unstorable(str(exc)[:500]) from exc


def try_commit(uow: UnitOfWork) -> bool:
    """Commit; False if a condition did not hold (the decision was already taken, or is moot)."""
    try:
        uow.commit()
        return True
    except ConditionFailed:
        return False


def commit_in_batches(parts: list[UnitOfWork]) -> list[int]:
    """Commit independent decisions (a ``UnitOfWork`` each, e.g. one per cart) in as few
    transactions as hold them whole, in order. The indexes of the parts that were not committed (a
    condition of their transaction failed: something one of them read changed) are returned, for the
    caller to decide again one at a time."""
    batches: list[list[int]] = []
    size = 0
    for index, part in enumerate(parts):
        if not batches or size + len(part.actions) > MAX_TRANSACTION_ITEMS:
            batches.append([])
            size = 0
        batches[-1].append(index)
        size += len(part.actions)
    not_committed: list[int] = []
    for members in batches:
        uow = UnitOfWork(parts[members[0]].table_name)
        for index in members:
            uow.actions += parts[index].actions
            uow.events += parts[index].events
        if not try_commit(uow):
            not_committed += members
    return not_committed


def update_item(key: Mapping[str, Any], *, update: str, condition: str | None = None,
                names: dict[str, str] | None = None, values: dict[str, Any] | None = None,
                table_name: str | None = None) -> tuple[bool, dict[str, Any] | None]:
    """One conditional UpdateItem, for a write that causes no event (a replica, a counter): no
    transaction, and the write itself answers what a read would have. ``(True, the item after)``,
    or ``(False, the item as stored)`` when ``condition`` failed (None if there is none): the caller
    decides from that instead of reading first. Same fault hooks and error mapping as a commit."""
    request: dict[str, Any] = {
        "TableName": table_name or get_settings().table_name, "Key": to_attributes(key), "UpdateExpression": update,
        "ReturnValues": "ALL_NEW"}
    if condition:
        request |= {"ConditionExpression": condition, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = to_attributes(values)
    _before_commit(None)
    dynamodb = aws.client("dynamodb")
    try:
        response = dynamodb.update_item(**request)
    except dynamodb.exceptions.ConditionalCheckFailedException as exc:
        stored = exc.response.get("Item")
        return False, from_attributes(stored) if isinstance(stored, dict) and stored else None
    except dynamodb.exceptions.ClientError as exc:
        _raise_unstorable_if_invalid(exc)
        raise
    _after_commit(None)
    return True, from_attributes(response["Attributes"])


def put_once(item: Mapping[str, Any], *, table_name: str | None = None) -> bool:
    """Write ``item`` unless its key holds one already: one conditional PutItem, for a write-once record that
    causes no event (a trail entry, a message record alone). It costs 1 write unit per KB where a one-item
    transaction costs 2 (docs/decisions.md, 2026-12-05). True if this call wrote it; False if it was there before.

    The commit hooks see it as a unit of work holding its one Put, as they saw the transaction it replaces,
    so the simulation's faults and races reach it; no commit listener runs (no outbox item, nothing to relay).
    Same error mapping as a commit."""
    uow = UnitOfWork(table_name)
    uow.put(dict(item), condition="attribute_not_exists(pk)")
    _before_commit(uow)
    dynamodb = aws.client("dynamodb")
    try:
        dynamodb.put_item(**uow.actions[0]["Put"])
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False
    except dynamodb.exceptions.ClientError as exc:
        _raise_unstorable_if_invalid(exc)
        raise
    _after_commit(uow)
    return True


def retry_on_conflict(attempt: Callable[[], T | None], *, what: str, attempts: int = 25) -> T | None:
    """Run ``attempt`` (read, decide, commit) until it commits without losing a race.

    ``attempt`` returns normally when done (committed, or nothing to do) and raises
    ConditionFailed when someone changed what it read; after ``attempts`` such losses the
    caller gets Contention, which the consumer runtime treats as transient.
    """
    for _ in range(attempts):
        try:
            return attempt()
        except ConditionFailed:
            continue
    raise Contention(f"{what}: still conflicting after {attempts} attempts")


# --- observers ----------------------------------------------------------------------------
_listeners: list[Callable[[UnitOfWork], None]] = []


def add_commit_listener(listener: Callable[[UnitOfWork], None]) -> None:
    """Call ``listener`` after every successful commit in this process (the local runtime wakes its
    outbox relays with it instead of polling every table's stream)."""
    _listeners.append(listener)


def remove_commit_listener(listener: Callable[[UnitOfWork], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


# --- fault injection (the seeded simulation; never set in production) ---------------------
# None: a single-item update (update_item); put_once passes a unit of work holding its one Put.
CommitHook = Callable[[UnitOfWork | None], None]
_hooks: dict[str, CommitHook | None] = {"before": None, "after": None, "acknowledged": None}


def set_commit_hooks(*, before: CommitHook | None = None, after: CommitHook | None = None,
                     acknowledged: CommitHook | None = None) -> None:
    """Install callables run just before / just after every commit (they may raise to inject a fault), and as a
    transaction's answer arrives (``acknowledged``: raising botocore's ReadTimeoutError there loses the answer of
    a transaction that was written)."""
    _hooks["before"], _hooks["after"], _hooks["acknowledged"] = before, after, acknowledged


def _before_commit(uow: UnitOfWork | None) -> None:
    hook = _hooks["before"]
    if hook is not None:
        hook(uow)


def _after_commit(uow: UnitOfWork | None) -> None:
    hook = _hooks["after"]
    if hook is not None:
        hook(uow)


def _acknowledged(uow: UnitOfWork) -> None:
    hook = _hooks["acknowledged"]
    if hook is not None:
        hook(uow)
