"""moto, with each request handled atomically: in this process for the local runtime's own calls,
and over HTTP for other processes (make ops, the demo, tests, any AWS tool).

DynamoDB applies every request atomically; moto's backends are not thread-safe. One lock
serialises every request, whichever way it comes in; connections are still accepted concurrently.

``python -m local.moto_server`` serves moto alone (over HTTP only).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from botocore import UNSIGNED
from botocore.config import Config
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from waitress import create_server, serve

from local import moto_patches
from shopstream import aws

COUNTS_PATH = "/_shopstream/requests"  # GET: requests served so far, by action (benchmarks read it)


def _action(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return f"{environ.get('REQUEST_METHOD', '?')} {str(environ.get('PATH_INFO', '/')).split('/')[1][:40]}"


class ForegroundFirstLock:
    """The lock every moto request is served under, with the API's requests that change something served
    first (local/runtime.py: its reads compete with the consumers as equals).

    On AWS an API function has an execution environment to itself. Locally every function shares
    one interpreter: a POST competes for the GIL with dozens of busy consumer threads and waits its
    turn behind each of them, so its latency grows with the load behind it. While a request of a
    ``foreground()`` thread is in flight, the others wait before their next AWS call (blocked,
    so they do not contend for the GIL either), but never longer than ``patience``: a stream of API
    calls slows the consumers down without starving them. This changes only who goes first."""

    def __init__(self, patience: float = 0.05):
        self.patience = patience
        self._lock = threading.Lock()
        self._no_foreground = threading.Event()
        self._no_foreground.set()
        self._foreground = 0
        self._count_lock = threading.Lock()
        self._local = threading.local()

    @contextmanager
    def foreground(self) -> Iterator[None]:
        with self._count_lock:
            self._foreground += 1
            self._no_foreground.clear()
        self._local.foreground = True
        try:
            yield
        finally:
            self._local.foreground = False
            with self._count_lock:
                self._foreground -= 1
                if not self._foreground:
                    self._no_foreground.set()

    def __enter__(self) -> ForegroundFirstLock:
        if not getattr(self._local, "foreground", False):
            self._no_foreground.wait(self.patience)
        self._lock.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._lock.release()


LOCK = ForegroundFirstLock()  # one request at a time, in-process calls and HTTP requests alike
counts: Counter[str] = Counter()  # requests served, by action (both ways)

# Told of requests under LOCK, once applied: (X-Amz-Target or "<METHOD> <url>", body, answered here). In process:
# every request, in the thread that made it (answered False: moto did not serve it, it went elsewhere); over HTTP:
# DynamoDB's only (other processes' writes). The local gateway's read cache is one (local/read_cache.py).
Observer = Callable[[str, bytes, bool], None]
_observers: list[Observer] = []


def add_observer(observer: Observer) -> None:
    _observers.append(observer)


def remove_observer(observer: Observer) -> None:
    if observer in _observers:
        _observers.remove(observer)


def serialized(app: Any) -> Any:
    lock = LOCK

    def handle(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            body = json.dumps({"requests": sum(counts.values()), "byAction": counts}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        observed = b"" if _observers and target.startswith("DynamoDB_") else None
        if observed is not None:  # read here, and handed on to moto as it came
            observed = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(observed)
        with lock:
            counts[_action(environ)] += 1
            response = list(app(environ, start_response))  # the whole response is produced under the lock
            if observed is not None:
                for observer in list(_observers):
                    observer(target, observed, True)
            return response

    return handle


class InProcessMoto:
    """moto's backends in this process: boto3 clients made here without an endpoint are served in
    process (no HTTP, no second interpreter), and an HTTP endpoint on ``port`` serves the same state
    to other processes."""

    def __init__(self, host: str, port: int):
        moto_patches.apply()
        _serialize_in_process_calls(BotocoreStubber)
        self.mock = mock_aws()
        self.mock.start()
        try:
            app = DomainDispatcherApplication(create_backend_app)
            self.server = create_server(serialized(app), host=host, port=port, threads=8, connection_limit=1000,
                                        channel_timeout=300, ident="moto")
        except BaseException:  # e.g. the port taken: nothing of this one stays installed
            self.mock.stop()
            raise
        install_unsigned_clients()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="moto-http", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            # close() pulls the listening socket from under the loop's select(): the end of the loop, on stop
            if not self.stopping.is_set():
                raise

    def stop(self) -> None:
        self.stopping.set()
        self.server.close()
        self.thread.join(timeout=5)
        self.mock.stop()
        remove_unsigned_clients()


_installed = threading.Lock()
_signing_factory: list[Any] = []  # shopstream.aws's factory before the first install, while any is installed


def install_unsigned_clients() -> None:
    """shopstream.aws makes unsigned clients (unsigned_clients) until as many remove_unsigned_clients() as installs:
    in-process mocks may overlap and stop in any order."""
    with _installed:
        if not _signing_factory:
            _signing_factory.append(aws._client)
            aws._client = unsigned_clients()
        _signing_factory.append(None)  # one mark per install


def remove_unsigned_clients() -> None:
    """Undo one install_unsigned_clients(); the last one puts the signing factory back, with fresh clients (a reset
    made meanwhile cleared the unsigned ones: the signing ones it did not see are not kept either)."""
    with _installed:
        if len(_signing_factory) < 2:
            return
        _signing_factory.pop()
        if len(_signing_factory) == 1:
            aws._client = _signing_factory.pop()
            aws.reset_clients()


def unsigned_clients() -> Any:
    """shopstream.aws's client factory for moto in this process: requests carry an Authorization header naming
    the access key, region and service, as a SigV4 signature does (moto takes the account and, for some
    services, the region from it), but no signature is computed; moto checks none. Computing one was a sixth
    of a simple call's time. S3's clients sign as before (botocore's S3 signing also sets the payload headers;
    S3 calls are few)."""

    @cache
    def client(service_name: str) -> Any:
        if service_name == "s3":
            return aws._session().client(service_name)
        made = aws._session().client(service_name, config=Config(signature_version=UNSIGNED))
        scope = (f"AWS4-HMAC-SHA256 Credential={aws.credentials().access_key}/20260101/{made.meta.region_name}/"
                 f"{made.meta.service_model.signing_name}/aws4_request, SignedHeaders=host, Signature=none")

        def authorization(request: Any, **kwargs: Any) -> None:
            request.headers["Authorization"] = scope

        made.meta.events.register("request-created", authorization)
        return made

    return client


def _serialize_in_process_calls(stubber: Any) -> None:
    """The in-process mock answers under the same lock as the HTTP endpoint (once per process)."""
    if getattr(stubber.__call__, "serialized", False):
        return
    original = stubber.__call__

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with LOCK:
            response = original(self, event_name, request, **kwargs)
            if response is None and not _observers:
                return response
            raw = request.headers.get("X-Amz-Target")
            target = raw.decode() if isinstance(raw, bytes) else str(raw) if raw else ""
            if response is not None:
                counts[target.rsplit(".", 1)[-1] if target else f"{request.method} in-process"] += 1
            if _observers:
                body = request.body
                body = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else b""
                for observer in list(_observers):
                    observer(target or f"{request.method} {request.url}", body, response is not None)
            return response

    call.serialized = True  # type: ignore[attr-defined]
    stubber.__call__ = call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    moto_patches.apply()
    app = DomainDispatcherApplication(create_backend_app)
    # waitress keeps connections alive (werkzeug's development server closes each one after a single
    # response, so every AWS call paid a new TCP connection and a new server thread).
    serve(serialized(app), host=args.host, port=args.port, threads=16, connection_limit=1000,
          channel_timeout=300, ident="moto", _quiet=True)


if __name__ == "__main__":
    main()
