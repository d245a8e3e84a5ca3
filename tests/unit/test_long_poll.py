"""Long-polls (shopstream.long_poll): the waiting loop with a fake clock and sleep, the function's budget, the
order's wait on a fake store, and the local gateway waiting in place of the function, outside the API lock."""

from __future__ import annotations

import copy
import threading
from types import SimpleNamespace

import pytest

from local.gateway import LONG_POLL_RECHECK_SECONDS
from shopstream import long_poll
from tests.support import FakeTime


class _Reads:
    """A read that answers each value in turn, then the last one for good; ``calls`` counts the reads."""

    def __init__(self, values: tuple[str, ...]):
        self.answers, self.calls = list(values), 0

    def __call__(self) -> str:
        self.calls += 1
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def reads(*values: str) -> _Reads:
    return _Reads(values)


# --- the loop ---------------------------------------------------------------------------------------------------
def test_the_wait_answers_at_the_first_read_that_settles_it():
    time, read = FakeTime(), reads("PENDING", "PENDING", "PENDING", "CONFIRMED", "SHIPPED")
    got = long_poll.wait(read, lambda s: s == "CONFIRMED", seconds=20, clock=time.clock, sleep=time.sleep)
    assert got == "CONFIRMED" and read.calls == 4
    assert time.slept == pytest.approx([0.1, 0.15, 0.225])


def test_a_settled_first_read_answers_without_waiting():
    time, read = FakeTime(), reads("CANCELLED")
    assert long_poll.wait(read, lambda s: s != "PENDING", seconds=20, clock=time.clock, sleep=time.sleep) == "CANCELLED"
    assert time.slept == [] and read.calls == 1


def test_the_given_first_read_is_not_read_again():
    time, read = FakeTime(), reads("CONFIRMED")
    assert long_poll.wait(read, lambda s: s == "CONFIRMED", seconds=5, clock=time.clock, sleep=time.sleep,
                          first="PENDING") == "CONFIRMED"
    assert read.calls == 1 and len(time.slept) == 1


def test_a_timeout_answers_the_state_read_at_the_deadline():
    time, read = FakeTime(), reads("PENDING")
    started = time.now
    assert long_poll.wait(read, lambda s: False, seconds=3, clock=time.clock, sleep=time.sleep) == "PENDING"
    assert time.now - started == pytest.approx(3)  # not a moment less, not a wait more
    assert max(time.slept) == long_poll.MAX_INTERVAL_SECONDS and read.calls == 1 + len(time.slept)
    assert time.slept[:4] == pytest.approx([0.1, 0.15, 0.225, 0.3375])


def test_zero_seconds_is_one_read():
    time, read = FakeTime(), reads("PENDING")
    long_poll.wait(read, lambda s: False, seconds=0, clock=time.clock, sleep=time.sleep)
    assert read.calls == 1 and time.slept == []


def test_a_full_wait_reads_about_two_and_a_half_times_a_second():
    time, read = FakeTime(), reads("PENDING")
    long_poll.wait(read, lambda s: False, seconds=long_poll.MAX_TIMEOUT_SECONDS, clock=time.clock, sleep=time.sleep)
    assert 50 <= read.calls <= 55  # the figure docs/decisions.md prices (reads per wait)


# --- the budget ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timeout, remaining_ms, waits", [
    (20, 28_000, 20.0),  # the client's timeout
    (25, 10_000, 10 - long_poll.ANSWER_MARGIN_SECONDS),  # the function's remaining time less the margin
    (25, 1_500, 0.0),  # no time to wait: one read, the outcome now
    (0, 28_000, 0.0),
])
def test_the_wait_is_bounded_by_the_functions_remaining_time(timeout, remaining_ms, waits):
    assert long_poll.budget(timeout, remaining_ms) == pytest.approx(waits)


def test_the_longest_wait_fits_the_function_and_the_function_fits_the_integration():
    assert (long_poll.budget(long_poll.MAX_TIMEOUT_SECONDS, long_poll.LONG_POLL_FUNCTION_TIMEOUT_SECONDS * 1000)
            == long_poll.MAX_TIMEOUT_SECONDS)
    assert long_poll.LONG_POLL_FUNCTION_TIMEOUT_SECONDS < long_poll.INTEGRATION_TIMEOUT_SECONDS <= 30


@pytest.mark.parametrize("raw, seconds", [(None, long_poll.DEFAULT_TIMEOUT_SECONDS), ("0", 0), ("25", 25),
                                          ("26", None), ("-1", None), ("soon", None), ("", None)])
def test_the_requested_seconds_are_read_as_the_api_validates_them(raw, seconds):
    assert long_poll.requested_seconds(raw) == seconds


# --- the order's wait (order.logic.await_status) on a fake store -------------------------------------------------
@pytest.fixture
def order_store(monkeypatch):
    from order import logic, store
    from order.aggregate import Order

    statuses: list[str] = []
    loads: list[str] = []
    time = FakeTime()

    def load(order_id: str) -> Order:
        loads.append(order_id)
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        return Order(order_id=order_id, version=1, status=status, user_id="u-1", total={"amount": 1, "currency": "EUR"},
                     payment_method="pm_card_visa", created_at="t", updated_at="t")

    monkeypatch.setattr(store, "load", load)
    monkeypatch.setattr(logic, "clock", time.clock)
    monkeypatch.setattr(logic, "sleep", time.sleep)
    return SimpleNamespace(statuses=statuses, loads=loads, time=time)


def _caller(user: str = "u-1", admin: bool = False):
    from shopstream.request import Caller

    return Caller(user_id=user, groups=frozenset({"admin"} if admin else ()), correlation_id="c-1")


@pytest.mark.parametrize("statuses, awaited, status, outcome, reads", [
    (["PENDING", "PENDING", "CONFIRMED"], {"CONFIRMED", "CANCELLED"}, "CONFIRMED", "reached", 3),
    (["PENDING", "CANCELLED"], {"CONFIRMED"}, "CANCELLED", "unreachable", 2),
    (["SHIPPED"], {"CONFIRMED"}, "SHIPPED", "unreachable", 1),
    (["CONFIRMED"], {"DELIVERED"}, "CONFIRMED", "timeout", None),
])
def test_the_order_wait_answers_on_its_status(order_store, statuses, awaited, status, outcome, reads):
    from order import logic

    order_store.statuses[:] = statuses
    view, got = logic.await_status(_caller(), "o-1", frozenset(awaited), 4)
    assert (view.status, got) == (status, outcome)
    if reads is not None:
        assert len(order_store.loads) == reads
    else:
        assert sum(order_store.time.slept) == pytest.approx(4)


def test_someone_elses_order_is_not_found_and_not_waited_on(order_store):
    from order import logic
    from shopstream.request import NotFound

    order_store.statuses[:] = ["PENDING"]
    with pytest.raises(NotFound):
        logic.await_status(_caller("u-2"), "o-1", frozenset({"CONFIRMED"}), 20)
    assert order_store.time.slept == [] and len(order_store.loads) == 1
    order_store.statuses[:] = ["PENDING", "CONFIRMED"]
    assert logic.await_status(_caller("ops", admin=True), "o-1", frozenset({"CONFIRMED"}), 20)[1] == "reached"


# --- locally: the gateway waits, the function answers at once ----------------------------------------------------
def _gateway(invoke):
    from local.gateway import Gateway

    gateway = Gateway(host="127.0.0.1", port=0, invoke=invoke, verify=lambda token: {"sub": token},
                      health=lambda: (200, {}))
    return gateway


def _event(query: dict[str, str], headers: dict[str, str] | None = None):
    from local.http_events import claims_for, http_event

    return http_event("GET", "/orders/o-1", claims=claims_for("u-1"), query=query, headers=headers)


def _answer(outcome: str | None, status: int = 200, correlation: str = "corr-first"):
    headers = {"X-Correlation-Id": correlation, **({long_poll.OUTCOME_HEADER: outcome} if outcome else {})}
    return {"statusCode": status, "headers": headers, "body": "{}"}


def test_the_local_gateway_asks_for_the_outcome_now_until_it_is_not_a_timeout():
    asked: list[dict] = []
    outcomes = ["timeout", "timeout", "reached"]

    def invoke(service, event):
        asked.append(copy.deepcopy(event))
        return _answer(outcomes.pop(0), correlation=f"corr-{len(asked)}")

    gateway = _gateway(invoke)
    time = FakeTime()
    gateway.clock, gateway.pause = time.clock, lambda changed, seconds: time.sleep(seconds)
    try:
        response = gateway.long_poll("order", _event({"waitFor": "CONFIRMED"}), {"waitFor": "CONFIRMED"})
    finally:
        gateway.server.server_close()
    assert response["headers"][long_poll.OUTCOME_HEADER] == "reached" and len(asked) == 3
    assert all(e["queryStringParameters"] == {"waitFor": "CONFIRMED", "timeoutSeconds": "0"} for e in asked)
    assert "timeoutSeconds=0" in asked[0]["rawQueryString"]
    # the asks after the first continue its correlation id
    assert [e["headers"].get("x-correlation-id") for e in asked] == [None, "corr-1", "corr-1"]
    assert time.slept == [LONG_POLL_RECHECK_SECONDS] * 2  # no commit named the order: it asked at the recheck


def test_the_local_gateway_answers_a_timeout_at_the_clients_deadline():
    calls = []

    def invoke(service, event):
        calls.append(event)
        return _answer("timeout")

    gateway = _gateway(invoke)
    time = FakeTime()
    gateway.clock, gateway.pause = time.clock, lambda changed, seconds: time.sleep(seconds)
    try:
        response = gateway.long_poll("order", _event({"waitFor": "CONFIRMED", "timeoutSeconds": "2"}),
                                     {"waitFor": "CONFIRMED", "timeoutSeconds": "2"})
    finally:
        gateway.server.server_close()
    assert response["headers"][long_poll.OUTCOME_HEADER] == "timeout"
    assert sum(time.slept) == pytest.approx(2) and len(calls) == 1 + len(time.slept)


@pytest.mark.parametrize("query", [{"waitFor": "CONFIRMED", "timeoutSeconds": "99"},
                                   {"waitFor": "CONFIRMED", "timeoutSeconds": "x"}])
def test_a_wait_the_function_refuses_reaches_it_as_sent(query):
    sent = []

    def invoke(service, event):
        sent.append(event)
        return _answer(None, status=422)

    gateway = _gateway(invoke)
    try:
        assert gateway.long_poll("order", _event(query), query)["statusCode"] == 422
    finally:
        gateway.server.server_close()
    assert [e["queryStringParameters"] for e in sent] == [query]


def test_the_local_gateway_waits_outside_the_api_lock_and_ahead_of_no_consumer():
    """While a long-poll waits, another API request is served and the consumers' AWS calls are not held back."""
    from local.moto_server import LOCK
    from local.runtime import LocalRuntime
    from local.stack import LocalStack

    runtime = LocalRuntime(LocalStack(external_bootstrap="127.0.0.1:1"))  # never started: no broker, no queue
    runtime.apis = {"order": lambda event, context: _answer("timeout"),
                    "user": lambda event, context: {"statusCode": 200, "headers": {}}}
    served_meanwhile, consumers_free = [], []

    def meanwhile(_sleeps: int) -> None:  # during each of the long-poll's pauses
        other = threading.Thread(target=runtime.invoke_api, args=("user", {}))
        other.start()
        other.join(2)
        served_meanwhile.append(not other.is_alive())
        consumers_free.append(LOCK._no_foreground.is_set())

    gateway, time = _gateway(runtime.invoke_api), FakeTime(on_sleep=meanwhile)
    gateway.clock, gateway.pause = time.clock, lambda changed, seconds: time.sleep(seconds)
    query = {"waitFor": "CONFIRMED", "timeoutSeconds": "5"}
    try:
        assert gateway.long_poll("order", _event(query), query)["headers"][long_poll.OUTCOME_HEADER] == "timeout"
    finally:
        gateway.server.server_close()
    assert len(served_meanwhile) == len(time.slept) > 1
    assert all(served_meanwhile) and all(consumers_free)


def _commit(table: str, order_id: str):
    from local import naming

    return SimpleNamespace(table_name=naming.table(table), actions=[
        {"Put": {"TableName": naming.table(table), "Item": {"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "STATE"}}}}])


@pytest.mark.parametrize("commit, wakes", [
    (_commit("order", "o-1"), True),
    (_commit("order", "o-2"), False),  # another order
    (_commit("inventory", "o-1"), False),  # another service's table
])
def test_a_local_long_poll_asks_again_when_a_commit_names_its_order(commit, wakes):
    outcomes = ["timeout", "reached"]

    def invoke(service, event):
        answer = _answer(outcomes.pop(0) if len(outcomes) > 1 else outcomes[0])
        if len(outcomes) == 1 and not woke:
            gateway.commits.committed(commit)  # a commit while the function reads: it must not be missed
        return answer

    gateway = _gateway(invoke)
    time, woke = FakeTime(), []
    gateway.clock = time.clock

    def pause(changed, seconds):
        woke.append(changed.is_set())
        time.sleep(seconds)

    gateway.pause = pause
    query = {"waitFor": "CONFIRMED"}
    try:
        response = gateway.long_poll("order", _event(query), query, ("o-1",))
    finally:
        gateway.server.server_close()
    assert response["headers"][long_poll.OUTCOME_HEADER] == "reached"
    assert woke == [wakes]


def test_the_local_gateway_joins_a_repeated_query_parameter_as_api_gateway_does():
    from local.gateway import query_parameters

    assert query_parameters("waitFor=SHIPPED&waitFor=DELIVERED&timeoutSeconds=5") == {
        "waitFor": "SHIPPED,DELIVERED", "timeoutSeconds": "5"}
