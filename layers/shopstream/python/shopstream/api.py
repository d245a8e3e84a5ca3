"""What every service's HTTP API shares: identity, correlation ids, errors, audit, OpenAPI.

Built on Powertools' APIGatewayHttpResolver with validation on, so a bad request is a 422
naming the field at fault and never reaches service logic. Before it: a body that is not
UTF-8 JSON is a 400 or 415, a correlation id that does not match the documented pattern is
replaced (and the response says so), and a creating POST with an ``Idempotency-Key`` answers
a repeat with the first response (and refuses another request under the key, at any age).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import ServiceError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ValidationError

from shopstream import aws, catalog, coldstart, key_binding, tracing
from shopstream.config import get_settings
from shopstream.envelope import CORRELATION_ID_PATTERN
from shopstream.observability import logger
from shopstream.request import (
    Caller,
    KeyBoundToAnotherRequest,
    Request,
    RequestError,
    audit_event,
    current_request,
    serving,
)
from shopstream.transaction import Contention, UnitOfWork, Unstorable

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Powertools' idempotency utility (~130 ms on an API's init, boto3 with it) is imported by the first request
# that carries an Idempotency-Key, not with the API: reads and keyless requests never load it.

CORRELATION_HEADER = "X-Correlation-Id"
CORRELATION_REPLACED_HEADER = "X-Correlation-Id-Replaced"
IDEMPOTENCY_HEADER = key_binding.HEADER
IDEMPOTENCY_REPLAYED_HEADER = "Idempotent-Replayed"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{1,255}$"
SESSION_HEADER = "X-Session-Id"
SESSION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"  # carried in every event's metadata (at most 128 there)
IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,128}$"
# A path parameter: bounded, so an id that could never exist is refused before any look-up.
PathId = Annotated[str, Path(min_length=1, max_length=128, pattern=ID_PATTERN)]
_correlation_id = re.compile(CORRELATION_ID_PATTERN)
_id = re.compile(ID_PATTERN)


def _groups(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("cognito:groups") or ""
    if isinstance(raw, list):
        return frozenset(raw)
    # The HTTP API JWT authorizer flattens arrays into "[a b]".
    return frozenset(g for g in str(raw).strip("[]").replace(",", " ").split() if g)


def _error(status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if errors:
        body["errors"] = errors
    served = current_request()
    headers = {CORRELATION_HEADER: served.caller.correlation_id} if served else {}
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
        self.app.exception_handler(RequestError)(lambda error: _error(error.status_code, error.msg))
        self.app.exception_handler(KeyBoundToAnotherRequest)(lambda error: _error(
            422, error.msg, [{"field": f"header.{IDEMPOTENCY_HEADER}", "message": error.msg}]))
        # Input that passed validation but cannot be stored or built into an event: the client's to fix.
        self.app.exception_handler(Unstorable)(lambda error: _error(422, "the request holds values that "
                                                                    "cannot be stored"))
        self.app.exception_handler(ValidationError)(_model_error)
        self.app.exception_handler(Contention)(lambda error: _error(409, "too many concurrent changes; retry"))
        self.routes = [(r, _route_pattern(r.path)) for r in catalog.service(service).routes]
        self._idempotency_store: Any = None

    def handler(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        try:
            if tracing.enabled():
                return self._traced(event, context)
            return self._handle(event, context)
        finally:
            coldstart.resume()

    def _traced(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """The request under a SERVER span ``<METHOD> <route>``, the first of a new trace: a client's own
        ``traceparent`` is linked to, not continued (an outside caller neither joins our traces nor decides
        what we sample). The response names the span in ``traceresponse``."""
        http = (event.get("requestContext") or {}).get("http") or {}
        method, path = str(http.get("method", "GET")).upper(), str(event.get("rawPath") or "/")
        route = self._route(method, path)
        sent = {k.lower(): v for k, v in (event.get("headers") or {}).items()}.get(tracing.TRACEPARENT)
        span = tracing.start(f"{method} {route.path if route else path}", kind="server", parent=None, links=(sent,),
                             attributes={"http.request.method": method, "url.path": path[:300],
                                         "http.route": route.path if route else None,
                                         "shopstream.service": self.service})
        try:
            with tracing.activate(span):
                result = self._handle(event, context)
                if span is not None:
                    status = int(result["statusCode"])
                    span.set_attribute("http.response.status_code", status)
                    correlation = (result.get("headers") or {}).get(CORRELATION_HEADER)
                    if correlation:
                        span.set_attribute("shopstream.correlation_id", correlation)
                    if status >= 500:
                        tracing.fail(span, f"HTTP {status}")
            answered = tracing.traceparent(span)
            if answered:
                result.setdefault("headers", {})[tracing.TRACE_RESPONSE_HEADER] = answered
            return result
        finally:
            tracing.flush()

    def _handle(self, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
        claims = (authorizer.get("jwt") or {}).get("claims") or {}
        headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
        sent = headers.get(CORRELATION_HEADER.lower())
        correlation_id = sent if sent and _correlation_id.match(sent) else str(uuid.uuid4())
        extra_headers = {CORRELATION_HEADER: correlation_id}
        if sent and sent != correlation_id:
            extra_headers[CORRELATION_REPLACED_HEADER] = f"the header did not match {CORRELATION_ID_PATTERN}"
        subject = str(claims.get("sub") or "")
        if not _id.match(subject):  # no caller to act for (or to name in the audit record)
            return _plain(401, "missing or invalid token", extra_headers)
        http = (event.get("requestContext") or {}).get("http") or {}
        method = str(http.get("method", "GET")).upper()
        path = str(event.get("rawPath") or "/")
        route = self._route(method, path)
        # Every header the API reads is checked here, before anything uses it; the request is built only
        # from values that passed, so that its audit record cannot fail on what it is refused for.
        session_id, key = headers.get(SESSION_HEADER.lower()), headers.get(IDEMPOTENCY_HEADER.lower())
        refusals = [(name, f"{name} must match {pattern}") for name, value, pattern in (
            (SESSION_HEADER, session_id, SESSION_ID_PATTERN), (IDEMPOTENCY_HEADER, key, IDEMPOTENCY_KEY_PATTERN))
            if value is not None and not re.match(pattern, value)]
        request = Request(service=self.service, method=method, path=path, route=route.path if route else None,
                          caller=Caller(user_id=subject, groups=_groups(claims), correlation_id=correlation_id,
                                        session_id=session_id if not refusals else None,
                                        idempotency_key=key if route is not None and route.idempotent
                                        and not refusals else None))
        logger().append_keys(correlation_id=correlation_id)
        try:
            with serving(request):
                try:
                    event, body_refusal = _readable_body(event, method, headers)
                    if refusals:
                        result = _plain(422, "invalid request: " + ", ".join(f"header.{name}" for name, _ in refusals),
                                        {}, errors=[{"field": f"header.{name}", "message": message}
                                                    for name, message in refusals])
                    elif body_refusal is not None:
                        result = _plain(*body_refusal, {})
                    elif route is not None and route.admin_only and not request.caller.is_admin:
                        result = _plain(403, "admin only", {})  # the catalog's rule, for every admin route
                    elif request.caller.idempotency_key is not None:
                        result = self._resolve_once(request, event, context)
                    else:
                        result = self.app.resolve(event, context)
                except Exception:
                    self._audit_unless_done(request, 500)
                    raise
                self._audit_unless_done(request, int(result["statusCode"]))
                result.setdefault("headers", {}).update({**request.response_headers, **extra_headers})
                return result
        finally:
            logger().remove_keys(["correlation_id"])

    def _route(self, method: str, path: str) -> catalog.RouteSpec | None:
        return next((route for route, pattern in self.routes if route.method == method and pattern.match(path)), None)

    # --- Idempotency-Key ------------------------------------------------------------------------
    def _resolve_once(self, request: Request, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        """A key is bound to the first request that created something under it (route and body fingerprint,
        shopstream.key_binding), for as long as what it created: another request under it is a 422 at any
        age, and nothing runs. The same request again is a repeat: within 24 h Powertools answers with the
        stored response (idempotency table, keyed by caller, key and route); after that the route runs again,
        finds what the key created (its id derives from the key) and answers with it. Either is marked
        replayed. Only 2xx answers are kept (a refused request may be corrected and sent again with the key).
        Powertools validates the body's keyed fingerprint, never the body: its table keeps no hash of one."""
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyValidationError,
        )

        if self._idempotency_store is None:
            self._idempotency_store = DynamoDBPersistenceLayer(
                table_name=get_settings().idempotency_table_name, boto3_client=aws.client("dynamodb"))
        caller, key = request.caller, request.caller.idempotency_key
        assert key is not None
        wanted = key_binding.Binding(route=f"{request.method} {request.path}",
                                     fingerprint=key_binding.fingerprint(event.get("body") or ""))
        bound = key_binding.read(caller.user_id, key)
        if bound is not None and bound != wanted:
            return _key_refusal(bound.route)
        request.binding, caller.repeat_of_bound_request = wanted, bound is not None
        config = IdempotencyConfig(event_key_jmespath="[caller, key, route]",
                                   payload_validation_jmespath="fingerprint", raise_on_no_idempotency_key=True,
                                   expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS)
        config.register_lambda_context(context)
        replayed = True

        def first_time(*, call: dict[str, Any]) -> dict[str, Any]:
            nonlocal replayed
            replayed = False
            result = self.app.resolve(event, context)
            if not 200 <= int(result["statusCode"]) < 300:
                raise _NotKept(result)
            if not request.bound_key and not caller.repeat_of_bound_request:
                # Answered without binding the key: it found something made under the key by a request whose
                # commit came first (both found the key unbound). Not kept if that one was another request.
                now = key_binding.read(caller.user_id, key)
                if now is not None and now != wanted:
                    raise _NotKept(_key_refusal(now.route))
                caller.repeat_of_bound_request = now is not None
            return result

        once = idempotent_function(data_keyword_argument="call", persistence_store=self._idempotency_store,
                                   config=config, key_prefix=f"{self.service}.api")(first_time)
        call = {"caller": caller.user_id, "key": key, "route": wanted.route, "fingerprint": wanted.fingerprint}
        try:
            result: dict[str, Any] = once(call=call)
        except _NotKept as refused:
            return refused.result
        except IdempotencyValidationError:  # another body on this route got there first (in progress or bound)
            return _key_refusal((key_binding.read(caller.user_id, key) or wanted).route)
        except IdempotencyAlreadyInProgressError:
            return _plain(409, f"a request with this {IDEMPOTENCY_HEADER} is still in progress; retry", {})
        if replayed or caller.repeat_of_bound_request:
            request.audited = True  # nothing was done again
            result = {**result, "headers": {**(result.get("headers") or {}), IDEMPOTENCY_REPLAYED_HEADER: "true"}}
        return result

    @staticmethod
    def _audit_unless_done(request: Request, status: int) -> None:
        if request.method not in MUTATING or request.audited:
            return
        outcome: Literal["success", "rejected", "failed"] = (
            "success" if 200 <= status < 300 else "rejected" if status < 500 else "failed")
        audit = UnitOfWork()
        audit.emit(audit_event(request, outcome, status))
        audit.commit()
        request.audited = True

    def openapi(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.app.get_openapi_json_schema(title=self.title, version="1.0.0"))
        routes = {(r.method, r.path): r for r in catalog.service(self.service).routes}
        for path, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                route = routes[(method.upper(), path)]
                responses = operation.setdefault("responses", {})
                if route.status != 200 and "200" in responses:
                    responses[str(route.status)] = responses.pop("200")
                _document_operation(operation, method.upper(), route)
        document.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = ERROR_SCHEMA
        return document


class _NotKept(Exception):
    def __init__(self, result: dict[str, Any]):
        super().__init__(result.get("statusCode"))
        self.result = result


def _key_refusal(route: str) -> dict[str, Any]:
    """The 422 for a request under a key bound to another request (on ``route``)."""
    message = key_binding.refusal(route)
    return _plain(422, message, {}, errors=[{"field": f"header.{IDEMPOTENCY_HEADER}", "message": message}])


def _route_pattern(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$")


def _plain(status: int, message: str, headers: dict[str, str],
           errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A response built before Powertools sees the request (no route involved yet)."""
    body: dict[str, Any] = {"statusCode": status, "message": message}
    if errors:
        body["errors"] = errors
    return {"statusCode": status, "headers": {"Content-Type": "application/json", **headers}, "body": json.dumps(body)}


def _readable_body(event: dict[str, Any], method: str,
                   headers: dict[str, str]) -> tuple[dict[str, Any], tuple[int, str] | None]:
    """The event with its body as UTF-8 text, or the 400/415 that refuses it."""
    body = event.get("body")
    if method not in MUTATING or body in (None, ""):
        return event, None
    media, _, parameters = (headers.get("content-type") or "").partition(";")
    media = media.strip().lower()
    if not media:
        return event, (415, "a request body needs Content-Type: application/json")
    if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", media):
        return event, (400, f"malformed Content-Type {media[:100]!r}")
    if media != "application/json" and not media.endswith("+json"):
        return event, (415, f"unsupported Content-Type {media[:100]}; send application/json")
    for parameter in filter(None, (p.strip() for p in parameters.split(";"))):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return event, (415, "the body must be UTF-8")
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return event, (400, "the body is not valid base64")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return event, (400, "the body is not UTF-8")
    return {**event, "body": text, "isBase64Encoded": False}, None


ERROR_SCHEMA = {"type": "object", "required": ["statusCode", "message"], "properties": {
    "statusCode": {"type": "integer"}, "message": {"type": "string"},
    "errors": {"type": "array", "items": {"type": "object", "properties": {
        "field": {"type": "string"}, "message": {"type": "string"}}}}}}
_ERRORS = {
    "400": "The body is not valid base64/UTF-8, or its Content-Type is malformed",
    "401": "No valid token (checked by the API's JWT authorizer)",
    "403": "An admin-only operation, and the caller is not in the admin group",
    "404": "No such resource, or it belongs to someone else",
    "409": "The resource's state does not allow this now (e.g. an order that has shipped), or a "
           "request with the same Idempotency-Key is still in progress",
    "413": "The body is larger than the API accepts",
    "415": "The body is not application/json in UTF-8",
    "422": "A field or header is invalid (each one named in errors[]), a business rule refuses the request, "
           "or the Idempotency-Key is bound to another request (another path or body), at any age",
    "429": "Throttled (API Gateway's rate or burst limit)",
}


TRACE_RESPONSE_DOCUMENTED = {
    "description": "W3C Trace Context level 2: version-traceid-spanid-flags of the span that served the request, "
                   "the first of a new trace (flags 01: sampled, its spans are in X-Ray; locally in the console). "
                   "On every answer the function gives; not on a 401 API Gateway's JWT authorizer gives itself",
    "schema": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"}}


def _document_operation(operation: dict[str, Any], method: str, route: catalog.RouteSpec) -> None:
    """Every status the API can answer, the correlation header, and Idempotency-Key where it applies."""
    responses = operation.setdefault("responses", {})
    wanted = ["401", "404", "422", "429", *(["403"] if route.admin_only else [])]
    if method in MUTATING:
        wanted += ["400", "409", "413", "415"]
    for status in sorted(wanted):
        responses.setdefault(status, {"description": _ERRORS[status], "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/ErrorResponse"}}}})
    if route.idempotent:  # Powertools documents its 422 as "Validation Error": here a bound key is one more cause
        responses["422"]["description"] = _ERRORS["422"]
    for status, response in responses.items():
        response.setdefault("headers", {})[CORRELATION_HEADER] = {
            "description": "The request's correlation id (every event it causes carries it)",
            "schema": {"type": "string", "pattern": CORRELATION_ID_PATTERN}}
        if status != "429":  # API Gateway's own answer: the function never saw the request
            response["headers"][tracing.TRACE_RESPONSE_HEADER] = TRACE_RESPONSE_DOCUMENTED
    parameters = operation.setdefault("parameters", [])
    parameters.append({"name": CORRELATION_HEADER, "in": "header", "required": False, "schema": {
        "type": "string", "pattern": CORRELATION_ID_PATTERN},
        "description": "Continue a trail: used when it matches the pattern (at most 128 characters); "
                       f"otherwise a new id is used and the response carries {CORRELATION_REPLACED_HEADER}"})
    parameters.append({"name": SESSION_HEADER, "in": "header", "required": False, "schema": {
        "type": "string", "pattern": SESSION_ID_PATTERN},
        "description": "The client's session, carried in the metadata of every event the request causes; a "
                       "value off the pattern is a 422 naming the header"})
    if route.idempotent:
        parameters.append({"name": IDEMPOTENCY_HEADER, "in": "header", "required": False, "schema": {
            "type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
            "description": "The first request that succeeds under a key binds the key to it (this path and "
                           "body) for good. That request sent again, at any age, answers with the first (2xx) "
                           "status and resource (within 24 hours the first response itself), marked "
                           f"{IDEMPOTENCY_REPLAYED_HEADER}: true, and changes nothing; another path or body under "
                           "the key is a 422 naming the header. A key is the caller's, for one kind of resource "
                           "(users, products, stock adjustments, carts, orders)"})


def _model_error(error: ValidationError) -> Response:
    """A value valid on its own that breaks a bound once combined (e.g. merged duplicate lines)."""
    errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e.get("msg", "")}
              for e in error.errors(include_url=False)]
    return _error(422, "invalid request: " + ", ".join(e["field"] for e in errors), errors)


def _validation_error(error: RequestValidationError) -> Response:
    """422 naming each field at fault, e.g. ``body.items.0.quantity``."""
    errors = [{"field": "body" if e.get("type") == "json_invalid" else ".".join(str(p) for p in e["loc"]),
               "message": e.get("msg", e.get("type", ""))} for e in error.errors()]
    return _error(422, "invalid request: " + ", ".join(e["field"] for e in errors), errors)


def created(body: Any, status: int = 201) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=_jsonable(body))


def _jsonable(body: Any) -> Any:
    if isinstance(body, BaseModel):
        return body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return body
