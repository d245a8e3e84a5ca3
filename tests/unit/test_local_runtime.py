"""The local runtime serves each API function one request at a time, as Lambda does."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from local.runtime import LocalRuntime


def test_an_api_function_serves_one_request_at_a_time_while_others_run_beside_it():
    # Powertools' resolver keeps the request being served on its instance: two requests in one
    # instance at once lost their route (a 500 under load, seen in bench.local_runtime).
    runtime = LocalRuntime(SimpleNamespace(bootstrap_servers="127.0.0.1:1", queue_urls={}))
    inside: dict[str, int] = {"order": 0, "user": 0}
    most: dict[str, int] = {"order": 0, "user": 0}
    both = threading.Event()
    lock = threading.Lock()

    def api(service):
        def serve(event, context):
            with lock:
                inside[service] += 1
                most[service] = max(most[service], inside[service])
                if inside["order"] and inside["user"]:
                    both.set()
            time.sleep(0.02)
            with lock:
                inside[service] -= 1
            return {"statusCode": 200}
        return serve

    runtime.apis = {"order": api("order"), "user": api("user")}
    calls = [threading.Thread(target=runtime.invoke_api, args=(service, {})) for service in ["order", "user"] * 6]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert most == {"order": 1, "user": 1}
    assert both.is_set()  # different functions are not serialised with each other
