"""The local runtime serves one API request at a time, as a Lambda execution environment does."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from local.runtime import LocalRuntime


def test_api_requests_are_served_one_at_a_time_even_for_different_services():
    # Powertools keeps the request being served on the resolver and on a class all resolvers share:
    # two requests at once lost their route (a 500 under load, seen in bench.local_runtime).
    runtime = LocalRuntime(SimpleNamespace(bootstrap_servers="127.0.0.1:1", queue_urls={}))
    inside, most, served = [0], [0], []
    lock = threading.Lock()

    def api(service):
        def serve(event, context):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.02)
            with lock:
                inside[0] -= 1
                served.append(service)
            return {"statusCode": 200}
        return serve

    runtime.apis = {"order": api("order"), "user": api("user")}
    calls = [threading.Thread(target=runtime.invoke_api, args=(service, {})) for service in ["order", "user"] * 6]
    for call in calls:
        call.start()
    for call in calls:
        call.join()
    assert most == [1]
    assert sorted(served) == ["order"] * 6 + ["user"] * 6
