"""The local API gateway: HTTP on 127.0.0.1, routes from the catalog, JWT checked, v2 proxy events."""

from __future__ import annotations

import json
import re
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from shopstream import catalog

from local.http_events import http_event

Route = tuple[str, re.Pattern[str], str]  # method, path pattern, service


def compile_routes() -> list[Route]:
    routes = []
    for spec in catalog.SERVICES:
        for route in spec.routes:
            pattern = re.sub(r"\{[^/]+\}", r"[^/]+", route.path)
            routes.append((route.method, re.compile(f"^{pattern}$"), spec.name))
    return routes


class Gateway:
    def __init__(self, *, host: str, port: int, invoke: Callable[[str, dict[str, Any]], dict[str, Any]],
                 verify: Callable[[str], dict[str, Any]], health: Callable[[], tuple[int, dict[str, Any]]]):
        self.routes = compile_routes()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                gateway.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, *_args: Any) -> None:  # quiet; access lines are not needed locally
                return

        self.invoke, self.verify, self.health = invoke, verify, health
        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None):
        payload = body if isinstance(body, str) else json.dumps(body)
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload.encode())))
        request.end_headers()
        request.wfile.write(payload.encode())

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        method = request.command
        if method == "GET" and url.path == "/health":
            status, body = self.health()
            return self._reply(request, status, body)
        match = next(((s, p) for m, p, s in self.routes if m == method and p.match(url.path)), None)
        if match is None:
            return self._reply(request, 404, {"message": "Not Found"})
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer "):
            return self._reply(request, 401, {"message": "Unauthorized"})
        try:
            claims = self.verify(authorization.removeprefix("Bearer ").strip())
        except Exception:
            return self._reply(request, 401, {"message": "Unauthorized"})
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode() if length else None
        event = http_event(method, url.path, claims=claims, raw_body=raw,
                           headers={k: v for k, v in request.headers.items()},
                           query=dict(parse_qsl(url.query)) or None)
        try:
            response = self.invoke(match[0], event)
        except Exception:  # a function error: API Gateway answers 500 and the function logs it
            import traceback

            traceback.print_exc()
            return self._reply(request, 500, {"message": "Internal Server Error"})
        self._reply(request, response["statusCode"], response.get("body") or "", response.get("headers"))

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
