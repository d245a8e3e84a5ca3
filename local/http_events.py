"""API Gateway HTTP API (payload v2) proxy events, as the JWT authorizer passes them to Lambda."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any


def http_event(method: str, path: str, *, body: Any = None, claims: dict[str, Any] | None = None,
               headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
               raw_body: str | None = None, raw_bytes: bytes | None = None) -> dict[str, Any]:
    """``raw_bytes``: the body as sent; API Gateway passes it base64-encoded unless it is UTF-8 text."""
    given = {k.lower(): v for k, v in (headers or {}).items()}
    all_headers = given if raw_bytes is not None else {"content-type": "application/json", **given}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": all_headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                     "userAgent": all_headers.get("user-agent", "shopstream")},
            "requestId": str(uuid.uuid4()),
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "timeEpoch": int(time.time() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    if raw_bytes is not None:
        try:
            event["body"] = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw_bytes).decode(), True
    elif raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    return event


def claims_for(user_id: str, *, admin: bool = False) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": user_id, "token_use": "access"}
    if admin:
        claims["cognito:groups"] = "[admin]"
    return claims
