"""``python -m local`` (``make local``): run the local stack until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys

from local import console, naming
from local.runtime import LocalRuntime
from local.stack import from_environment, wait_forever


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    # From the first signal on, another Ctrl-C or SIGTERM must not interrupt the cleanup.
    signal.signal(signal.SIGTERM, _still_stopping)
    signal.signal(signal.SIGINT, _still_stopping)
    raise _Stop(signum)


def _still_stopping(_signum: int, _frame: object) -> None:
    print("still stopping (the broker and moto are shut down cleanly; this takes a few seconds)", flush=True)


def main() -> int:
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    naming.use_dev_service_settings()  # e.g. one stock counter: functions run one at a time here
    stack = from_environment()
    runtime = None
    api_port = int(os.environ.get("SHOPSTREAM_LOCAL_API_PORT", "8000"))

    try:
        stack.start()
        # Functions in this process reach moto in process (boto3 clients without an endpoint) and the
        # broker through the Kafka bootstrap setting; other processes use the banner's AWS_ENDPOINT_URL.
        os.environ.update(stack.process_environment())
        os.environ.pop("AWS_ENDPOINT_URL", None)

        runtime = LocalRuntime(stack, api_port=api_port).start()
        # Before /health says ready: whoever waits for it (tests, scripts) finds this run's token.
        console.save_token(runtime.console.token)
        runtime.wait_ready()
        print(stack.banner(), flush=True)
        token_file = naming.CONSOLE_TOKEN_FILE
        print(f"  API   : http://127.0.0.1:{api_port}  (GET /health; OpenAPI: docs/openapi.json)\n"
              f"  console: {console.login_url(api_port, runtime.console.token)}\n"
              f"           (map, dead letters, order stories, analytics; this run's token, also in "
              f"{token_file}, for curl: -H \"Authorization: Bearer $(cat {token_file})\")\n"
              f"  token : make token USER=u1 [ADMIN=1]  ->  curl -H \"Authorization: Bearer $TOKEN\" ...\n"
              "Ctrl-C stops everything.", flush=True)
        wait_forever()
    except _Stop:
        print("\nstopping...", flush=True)
    finally:
        signal.signal(signal.SIGTERM, _still_stopping)  # also when stopping for another reason
        signal.signal(signal.SIGINT, _still_stopping)
        if runtime is not None:
            runtime.stop()
            console.forget_token(runtime.console.token)
        stack.stop()
        print("stopped; no process left behind", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
