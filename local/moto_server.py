"""moto's server, with each request handled atomically.

DynamoDB applies every request atomically; moto's backends are not thread-safe (a
TransactWriteItems deep-copies tables while another thread writes). Serialising request
handling restores that one property; connections are still accepted concurrently.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from collections import Counter
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

COUNTS_PATH = "/_shopstream/requests"  # GET: requests served so far, by action (benchmarks read it)


def _action(environ: dict[str, Any]) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return str(target).rsplit(".", 1)[-1]
    return f"{environ.get('REQUEST_METHOD', '?')} {str(environ.get('PATH_INFO', '/')).split('/')[1][:40]}"


def serialized(app: Any) -> Any:
    lock = threading.Lock()
    counts: Counter[str] = Counter()

    def handle(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") == COUNTS_PATH:
            body = json.dumps({"requests": sum(counts.values()), "byAction": counts}).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        with lock:
            counts[_action(environ)] += 1
            return list(app(environ, start_response))  # the whole response is produced under the lock

    return handle


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    from local import moto_patches

    moto_patches.apply()
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialized(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
