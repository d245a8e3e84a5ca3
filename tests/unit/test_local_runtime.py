"""How the local runtime shares one interpreter: one API request at a time (as a Lambda execution
environment serves them), one consumer function at a time, the API's AWS calls first."""

from __future__ import annotations

import threading
import time

from local.runtime import LocalRuntime
from local.stack import LocalStack


class Overlap:
    """How many calls were ever inside ``during()`` at the same time."""

    def __init__(self):
        self.inside = self.most = 0
        self._lock = threading.Lock()

    def during(self, seconds: float = 0.02) -> None:
        with self._lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(seconds)
        with self._lock:
            self.inside -= 1


def run_together(calls: list[threading.Thread]) -> None:
    for call in calls:
        call.start()
    for call in calls:
        call.join()


def test_api_requests_are_served_one_at_a_time_even_for_different_services():
    # Powertools keeps the request being served on the resolver and on a class all resolvers share:
    # two requests at once lost their route (a 500 under load, seen in bench.local_runtime).
    runtime = LocalRuntime(LocalStack(external_bootstrap="127.0.0.1:1"))  # never started: no broker, no queue
    overlap, served = Overlap(), []

    def api(service):
        def serve(event, context):
            overlap.during()
            served.append(service)
            return {"statusCode": 200}
        return serve

    runtime.apis = {"order": api("order"), "user": api("user")}
    run_together([threading.Thread(target=runtime.invoke_api, args=(service, {}))
                  for service in ["order", "user"] * 6])
    assert overlap.most == 1
    assert sorted(served) == ["order"] * 6 + ["user"] * 6


def test_consumer_functions_run_one_at_a_time_across_mappings():
    # Threads running Python at once only take turns at the GIL (bench/local_runtime: settle p95
    # 35 s unbounded, 3.7 s one at a time); two mappings' batches must not overlap.
    from local import naming
    from local.mapping import KafkaMapping
    from shopstream import catalog

    overlap = Overlap()

    def function(event, context):
        assert event["eventSource"] == "aws:kafka"
        overlap.during()
        return {"batchItemFailures": []}

    mappings = [KafkaMapping(spec.name, handler, function, naming.function_settings(spec.name, handler.name),
                             "127.0.0.1:1", send_on_failure=lambda record, where: None)
                for spec in catalog.SERVICES[:3] for handler in spec.handlers[:1]]
    record = {"topic": "t", "partition": 0, "offset": 0, "key": None, "value": "e30=", "headers": []}
    run_together([threading.Thread(target=m.invoke, args=([record],)) for m in mappings * 4])
    assert len(mappings) >= 2
    assert overlap.most == 1


def test_api_requests_go_before_background_aws_calls_but_never_starve_them():
    from local.moto_server import ForegroundFirstLock

    lock = ForegroundFirstLock(patience=30)
    serving, release = threading.Event(), threading.Event()
    entered: list[float] = []

    def api_request():
        with lock.foreground():
            with lock:  # the request's own AWS calls are not held back
                serving.set()
            release.wait(10)

    def background_call():
        with lock:
            entered.append(time.monotonic())

    api = threading.Thread(target=api_request)
    api.start()
    assert serving.wait(5)
    consumer = threading.Thread(target=background_call)
    consumer.start()
    consumer.join(0.3)
    assert entered == []  # held back while the request is in flight
    released = time.monotonic()
    release.set()
    consumer.join(5)
    api.join(5)
    assert len(entered) == 1 and entered[0] - released < 1

    impatient = ForegroundFirstLock(patience=0.1)
    with impatient.foreground():
        waiting = threading.Thread(target=background_call)
        started = time.monotonic()
        waiting.start()
        waiting.join(5)  # a request that never ends holds others back by the patience only
        assert len(entered) == 2 and entered[1] - started < 2


def test_critical_path_consumers_fetch_often_and_the_others_seldom():
    """Tansu answers a fetch when its wait is over: the critical path's handlers (window 0) ask every 25 ms, so a
    record waits ~12 ms for them; the others no longer than their local batching window, at a tenth of the broker's
    CPU per idle consumer."""
    from local import mapping
    from shopstream import catalog

    waits = {handler.critical_path: mapping.consumer_config("b:1", "g", critical_path=handler.critical_path)[
        "fetch.wait.max.ms"] for spec in catalog.SERVICES for handler in spec.handlers}
    assert waits == {True: mapping.CRITICAL_FETCH_WAIT_MS, False: mapping.FETCH_WAIT_MS}
    assert mapping.CRITICAL_FETCH_WAIT_MS < mapping.FETCH_WAIT_MS <= mapping.LOCAL_BATCHING_WINDOW_SECONDS * 1000
