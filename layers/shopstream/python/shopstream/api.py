"""What every service's HTTP API shares: identity, correlation ids, errors, audit, OpenAPI.

Built on Powertools' APIGatewayHttpResolver with validation on, so a bad request is a 422
naming the field at fault and never reaches service logic.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from shopstream.envelope import EventEnvelope, event_from_command
from shopstream.events import AuditRecorded
from shopstream.observability import logger
from shopstream.transaction import UnitOfWork

ADMIN_GROUP = "admin"
CORRELATION_HEADER = "X-Correlation-Id"
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class NotFound(ServiceError):
    def __init__(self, what: str = "not found"):
        super().__init__(404, what)


class Forbidden(ServiceError):
    def __init__(self, what: str = "forbidden"):
        super().__init__(403, what)


class Conflict(ServiceError):
    def __init__(self, what: str):
        super().__init__(409, what)


class Unprocessable(ServiceError):
    """Well-formed but refused by business rules (unknown product, inactive user...)."""

    def __init__(self, what: str):
        super().__init__(422, what)


@dataclass
class Caller:
    user_id: str
    groups: frozenset[str]
    correlation_id: str
    session_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("admin only")

    def require_owner(self, owner_id: str | None, what: str = "not found") -> None:
        """Someone else's resource is reported as missing, so ids cannot be probed."""
        if owner_id is None or (owner_id != self.user_id and not self.is_admin):
            raise NotFound(what)

    def command(self, event_type: str, data: Any, service: str) -> EventEnvelope:
        return event_from_command(event_type=event_type, data=data, service=service,
                                  correlation_id=self.correlation_id, user_id=self.user_id,
                                  session_id=self.session_id)


@dataclass
class _Request:
    service: str
    method: str
    path: str
    caller: Caller
    audited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


_request: ContextVar[_Request | None] = ContextVar("shopstream_request", default=None)


def _groups(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("cognito:groups") or ""
    if isinstance(raw, list):
        return frozenset(raw)
    # The HTTP API JWT authorizer flattens arrays into "[a b]".
    return frozenset(g for g in str(raw).strip("[]").replace(",", " ").split() if g)


def caller() -> Caller:
    request = _request.get()
    if request is None:
        raise RuntimeError("caller() outside a request")
    return request.caller


def commit(uow: UnitOfWork, *, status: int) -> None:
    """Commit a route's changes together with the audit record of the call (one transaction)."""
    request = _request.get()
    assert request is not None
    uow.emit(_audit_event(request, "success", status))
    uow.commit()
    request.audited = True


def _audit_event(request: _Request, outcome: str, status: int) -> EventEnvelope:
    return request.caller.command(
        "AuditRecorded",
        AuditRecorded(actor=request.caller.user_id, action=f"{request.method} {request.path}",
                      resource=request.path, outcome=outcome, status_code=status),
        request.service,
    )


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if errors:
        body["errors"] = errors
    request = _request.get()
    headers = {CORRELATION_HEADER: request.caller.correlation_id} if request else {}
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


class ServiceApi:
    """A service's HTTP API: routes on ``app``; ``handler`` is the Lambda entry point.

    The entry point (not a middleware, because Powertools validates requests before any
    middleware runs) resolves the caller from the JWT claims, carries the correlation id into
    every event and the response, and records an AuditRecorded for every mutating call that
    the route did not already commit with its own changes (rejected and failed ones too).
    """

    def __init__(self, service: str, *, title: str):
        self.service = service
        self.title = title
        self.app = APIGatewayHttpResolver(enable_validation=True)
        self.app.exception_handler(RequestValidationError)(_validation_error)
        self.app.exception_handler(ServiceError)(lambda error: _error(error.status_code, error.msg))

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        claims = (authorizer.get("jwt") or {}).get("claims") or {}
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        correlation_id = headers.get(CORRELATION_HEADER.lower()) or str(uuid.uuid4())
        if not claims.get("sub"):
            return {"statusCode": 401, "headers": {"Content-Type": "application/json",
                                                   CORRELATION_HEADER: correlation_id},
                    "body": '{"statusCode":401,"message":"missing or invalid token"}'}
        http = (event.get("requestContext") or {}).get("http") or {}
        request = _Request(service=self.service, method=str(http.get("method", "GET")).upper(),
                           path=event.get("rawPath", "/"),
                           caller=Caller(user_id=str(claims["sub"]), groups=_groups(claims),
                                         correlation_id=correlation_id, session_id=headers.get("x-session-id")))
        token = _request.set(request)
        logger().append_keys(correlation_id=correlation_id)
        try:
            try:
                result = self.app.resolve(event, context)
            except Exception:
                self._audit_unless_done(request, 500)
                raise
            self._audit_unless_done(request, int(result["statusCode"]))
            result.setdefault("headers", {})[CORRELATION_HEADER] = correlation_id
            return result
        finally:
            logger().remove_keys(["correlation_id"])
            _request.reset(token)

    @staticmethod
    def _audit_unless_done(request: _Request, status: int) -> None:
        if request.method not in MUTATING or request.audited:
            return
        outcome = "success" if 200 <= status < 300 else "rejected" if status < 500 else "failed"
        audit = UnitOfWork()
        audit.emit(_audit_event(request, outcome, status))
        audit.commit()
        request.audited = True

    def openapi(self) -> dict[str, Any]:
        import json

        return json.loads(self.app.get_openapi_json_schema(title=self.title, version="1.0.0"))


def _validation_error(error: RequestValidationError) -> Response:
    """422 naming each field at fault, e.g. ``body.items.0.quantity``."""
    errors = [{"field": "body" if e.get("type") == "json_invalid" else ".".join(str(p) for p in e["loc"]),
               "message": e.get("msg", e.get("type", ""))} for e in error.errors()]
    return _error(422, "invalid request: " + ", ".join(e["field"] for e in errors), errors)


def created(body: Any, status: int = 201) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=_jsonable(body))


def _jsonable(body: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body
