"""The request an API function serves, as service logic sees it: who calls (``Caller``), the refusals
logic may answer with (``NotFound``, ``Conflict``, ``Unprocessable``) and ``commit``, which commits a
route's changes together with the audit record of the call (and the binding of its Idempotency-Key).

Service logic imports this module, never shopstream.api: the logic is shared with the service's
consumers, and the HTTP layer (Powertools' resolver, its OpenAPI and validation machinery) belongs
to the API function alone (docs/decisions.md, 2026-11-29).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from shopstream import key_binding
from shopstream.envelope import EventEnvelope, event_from_command
from shopstream.events import AuditRecorded
from shopstream.transaction import ConditionFailed, UnitOfWork

ADMIN_GROUP = "admin"


class RequestError(Exception):
    """A refusal with its HTTP status; the API answers it as ``{"statusCode", "message"}``."""

    def __init__(self, status_code: int, msg: str):
        super().__init__(msg)
        self.status_code = status_code
        self.msg = msg


class NotFound(RequestError):
    def __init__(self, what: str = "not found"):
        super().__init__(404, what)


class Conflict(RequestError):
    def __init__(self, what: str):
        super().__init__(409, what)


class Unprocessable(RequestError):
    """Well-formed but refused by business rules (unknown product, inactive user...)."""

    def __init__(self, what: str):
        super().__init__(422, what)


class KeyBoundToAnotherRequest(RequestError):
    """The request's Idempotency-Key was bound to another request meanwhile (shopstream.key_binding)."""

    def __init__(self, route: str):
        super().__init__(422, key_binding.refusal(route))


@dataclass
class Caller:
    user_id: str
    groups: frozenset[str]
    correlation_id: str
    session_id: str | None = None
    idempotency_key: str | None = None
    # The Idempotency-Key is bound to this very request (route and body): it committed before, so what it
    # created exists, and the route answers with that (its first 2xx status) instead of refusing a duplicate.
    repeat_of_bound_request: bool = False

    def derived_id(self, prefix: str, length: int = 20) -> str:
        """A new resource's id: from the Idempotency-Key when there is one, so that a retried request
        that already created it finds it (even after a crash between the write and the response)."""
        if self.idempotency_key is None:
            return f"{prefix}{uuid.uuid4().hex[:length]}"
        return f"{prefix}{key_binding.key_digest(self.user_id, self.idempotency_key)[:length]}"

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def require_owner(self, owner_id: str | None, what: str = "not found") -> None:
        """Someone else's resource is reported as missing, so ids cannot be probed."""
        if owner_id is None or (owner_id != self.user_id and not self.is_admin):
            raise NotFound(what)

    def command(self, event_type: str, data: Any, service: str) -> EventEnvelope:
        return event_from_command(event_type=event_type, data=data, service=service,
                                  correlation_id=self.correlation_id, user_id=self.user_id,
                                  session_id=self.session_id)


@dataclass
class Request:
    service: str
    method: str
    path: str  # as sent: the API refuses what is off its bounds, but the audit record of the refusal names it
    caller: Caller
    route: str | None = None  # the catalog route it matched (``/orders/{orderId}``), None for no route
    audited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # What the Idempotency-Key gets bound to by the route's commit (set by the API when the key is not bound
    # yet), and whether a commit wrote that binding.
    binding: key_binding.Binding | None = None
    bound_key: bool = False
    response_headers: dict[str, str] = field(default_factory=dict)  # set by a route (respond_with_header)

    @property
    def action(self) -> str:
        """What was asked, bounded whatever the path: the method and the route's template."""
        return f"{self.method} {self.route or _bounded(self.path, ACTION_MAX - len(self.method) - 1)}"[:ACTION_MAX]

    @property
    def resource(self) -> str:
        return _bounded(self.path, RESOURCE_MAX)


# AuditRecorded's bounds (shopstream.events.audit).
ACTION_MAX, RESOURCE_MAX = 100, 300


def _bounded(text: str, limit: int) -> str:
    """``text`` if it fits, else its start and a digest of the whole: still tells requests apart, and an
    audit record of a request refused for its length can always be written."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[:limit - 19]}...{digest}"


_request: ContextVar[Request | None] = ContextVar("shopstream_request", default=None)


@contextmanager
def serving(request: Request) -> Iterator[Request]:
    """The request being served while the route runs (``caller()``, ``commit``, error responses)."""
    token = _request.set(request)
    try:
        yield request
    finally:
        _request.reset(token)


def current_request() -> Request | None:
    return _request.get()


def respond_with_header(name: str, value: str | None) -> None:
    """A header for the response to the request being served (none outside a request, or without a value)."""
    request = _request.get()
    if request is not None and value:
        request.response_headers[name] = value


def caller() -> Caller:
    request = _request.get()
    if request is None:
        raise RuntimeError("caller() outside a request")
    return request.caller


def commit(uow: UnitOfWork, *, status: int, conflict: str | None = None) -> None:
    """Commit a route's changes together with the audit record of the call (one transaction), and with the
    binding of the request's Idempotency-Key when it is not bound yet: what the key created and what it
    was used for are written at once (shopstream.key_binding).

    ``conflict``: the 409 message when a condition does not hold (someone changed the resource since
    the route read it, or it exists already); without it, ConditionFailed reaches the caller. A key bound
    meanwhile to another request is KeyBoundToAnotherRequest (422) instead; bound to this same request,
    the caller is marked ``repeat_of_bound_request`` before the failure reaches the route.
    """
    request = _request.get()
    assert request is not None
    caller, binding = request.caller, request.binding
    binds = (binding is not None and caller.idempotency_key is not None and not request.bound_key
             and not caller.repeat_of_bound_request)
    if binds:
        assert binding is not None and caller.idempotency_key is not None
        key_binding.bind(uow, caller.user_id, caller.idempotency_key, binding)
    uow.emit(audit_event(request, "success", status))
    try:
        uow.commit()
    except ConditionFailed:
        if binds:
            _bound_meanwhile(request)
        if conflict is None:
            raise
        raise Conflict(conflict) from None
    request.bound_key = request.bound_key or binds
    request.audited = True


def _bound_meanwhile(request: Request) -> None:
    """After a failed commit that was to bind the key: was it bound meanwhile (a request under the same key,
    whose pre-check found no binding either, committed first)?"""
    caller = request.caller
    assert caller.idempotency_key is not None
    found = key_binding.read(caller.user_id, caller.idempotency_key)
    if found is None:
        return  # another condition failed
    if found != request.binding:
        raise KeyBoundToAnotherRequest(found.route)
    caller.repeat_of_bound_request = True


def audit_event(request: Request, outcome: Literal["success", "rejected", "failed"], status: int) -> EventEnvelope:
    return request.caller.command(
        "AuditRecorded",
        AuditRecorded(actor=request.caller.user_id, action=request.action, resource=request.resource,
                      outcome=outcome, status_code=status),
        request.service,
    )
