"""moto's server, with each request handled atomically.

DynamoDB applies every request atomically; moto's backends are not thread-safe (a
TransactWriteItems deep-copies tables while another thread writes). Serialising request
handling restores that one property; connections are still accepted concurrently.
"""

from __future__ import annotations

import argparse
import os
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


def serialized(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
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
