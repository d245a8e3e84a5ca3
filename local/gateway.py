"""The local API gateway: HTTP on 127.0.0.1, routes from the catalog, JWT checked, v2 proxy events."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from local.http_events import http_event
from shopstream import catalog

Route = tuple[str, re.Pattern[str], str]  # method, path pattern, service
MAX_BODY_BYTES = 1024 * 1024  # bodies are small JSON documents; API Gateway's own cap is 10 MB


class ConsoleApp(Protocol):
    """local/console.py's Console: it checks its own token, Host and Origin (``port`` is the gateway's)."""

    def __call__(self, method: str, path: str, query: dict[str, str], body: bytes | None, *,
                 headers: Mapping[str, str], port: int) -> tuple[int, Any, dict[str, str]]: ...


def compile_routes() -> list[Route]:
    routes = []
    for spec in catalog.SERVICES:
        for route in spec.routes:
            pattern = re.sub(r"\{[^/]+\}", r"[^/]+", route.path)
            routes.append((route.method, re.compile(f"^{pattern}$"), spec.name))
    return routes


class Gateway:
    def __init__(self, *, host: str, port: int, invoke: Callable[[str, dict[str, Any]], dict[str, Any]],
                 verify: Callable[[str], dict[str, Any]], health: Callable[[], tuple[int, dict[str, Any]]],
                 console: ConsoleApp | None = None):
        self.routes = compile_routes()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                gateway.serve(self)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches the router (which answers 404 where no route has it, as API
                # Gateway does), not BaseHTTPRequestHandler's 501.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, *_args: Any) -> None:  # quiet; access lines are not needed locally
                return

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 256  # bursts of new connections queue instead of being refused

        self.invoke, self.verify, self.health, self.console = invoke, verify, health, console
        self.server = Server((host, port), Handler)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def _reply(self, request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None):
        payload = body if isinstance(body, bytes) else (body if isinstance(body, str) else json.dumps(body)).encode()
        request.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for name, value in headers.items():
            if name.lower() != "content-length":
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(payload)

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        method = request.command
        # The body first: whatever the answer, the connection stays in step for the next request.
        try:
            length = int(request.headers.get("Content-Length") or 0)
            if length < 0:
                raise ValueError(length)
        except ValueError:
            request.close_connection = True
            return self._reply(request, 400, {"message": "Bad Request: invalid Content-Length"})
        if request.headers.get("Transfer-Encoding", "").lower() == "chunked":
            request.close_connection = True
            return self._reply(request, 411, {"message": "Length Required"})
        if length > MAX_BODY_BYTES:
            request.close_connection = True
            return self._reply(request, 413, {"message": "Request Entity Too Large"})
        raw = request.rfile.read(length) if length else None
        if (method, url.path) == (catalog.HEALTH_ROUTE.method, catalog.HEALTH_ROUTE.path):
            status, body = self.health()
            return self._reply(request, status, body)
        if self.console is not None and (url.path == "/console" or url.path.startswith("/console/")):
            # The local console (local/console.py), before the JWT check: it has a token of its own.
            status, body, headers = self.console(method, url.path, dict(parse_qsl(url.query)), raw,
                                                 headers=dict(request.headers.items()), port=self.port)
            return self._reply(request, status, body, headers)
        match = next(((s, p) for m, p, s in self.routes if m == method and p.match(url.path)), None)
        if match is None:
            return self._reply(request, 404, {"message": "Not Found"})
        # As the JWT authorizer's identity source: the token, with or without "Bearer ".
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return self._reply(request, 401, {"message": "Unauthorized"})
        try:
            claims = self.verify(token)
        except Exception:
            return self._reply(request, 401, {"message": "Unauthorized"})
        event = http_event(method, url.path, claims=claims, raw_bytes=raw,
                           headers=dict(request.headers.items()),
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
