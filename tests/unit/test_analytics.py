"""Complex event processing in the audit service: windows, the join, and the three patterns.

Events go through the real consumer runtime (idempotency included) with set timestamps, in
shuffled order, duplicated, late, and replayed after the idempotency records are cleared. The
processing clock (``audit.analytics.now``) is set by each test, so nothing here waits.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from local import naming
from local.context import LocalLambdaContext
from local.samples import batch, kafka_record_of
from shopstream.consumer import EventConsumer
from shopstream.envelope import EventEnvelope

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)  # the start of a window
EUR = {"amount": 2500, "currency": "EUR"}
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}


class Clock:
    def __init__(self, monkeypatch):
        from audit import analytics

        self.at = T0
        monkeypatch.setattr(analytics, "now", lambda: self.at)


@pytest.fixture
def audit(service_env, monkeypatch):
    service_env("audit", "analytics-orders")
    from moto.core.botocore_stubber import BotocoreStubber

    from audit import logic
    from local.moto_server import _serialize_in_process_calls

    # The consumers run their batches' keys on threads (catalog concurrency), as on AWS: moto in-process then
    # answers one request at a time, as DynamoDB answers each request atomically.
    _serialize_in_process_calls(BotocoreStubber)
    clock = Clock(monkeypatch)
    consumers = {name: EventConsumer("audit", f"analytics-{name}", handle, after_batch=logic.count_batch)
                 for name, handle in (
        ("orders", logic.on_order_metrics), ("payments", logic.on_payment_metrics),
        ("inventory", logic.on_inventory_metrics))}

    class Audit:
        def __init__(self):
            self.clock = clock
            self.consumers = consumers

        def send(self, name: str, *events: EventEnvelope) -> None:
            response = consumers[name](batch(*(kafka_record_of(e) for e in events)), LocalLambdaContext())
            assert response == {"batchItemFailures": []}

        def live(self, minutes: int = 15) -> dict:
            return logic.live(minutes)

        def window(self, start: datetime) -> dict:
            from audit import analytics

            return next(w for w in logic.live(60)["windows"] if w["start"] == start) \
                if self.clock.at - start < timedelta(minutes=60) else analytics.window_view(start, None, closed=True)

        def close(self) -> int:
            return logic.close_windows()

        def alerts(self, kind: str) -> list[dict]:
            from audit import store

            return [a for a in store.alerts() if a["type"] == kind]

        def emitted(self, kind: str) -> list[dict]:
            """The outbox items of alerts: what the relay will publish."""
            from shopstream import aws, dynamo

            items = aws.client("dynamodb").scan(TableName=naming.table("audit"))["Items"]
            return [json.loads(i["payload"]) for i in map(dynamo.from_attributes, items)
                    if i["pk"].startswith("OUTBOX#") and i["eventType"] == kind]

        def forget_idempotency(self) -> None:
            """A replay in earnest: the idempotency records are gone, only state guards remain."""
            from shopstream import aws

            client = aws.client("dynamodb")
            table = naming.idempotency_table("audit")
            for item in client.scan(TableName=table)["Items"]:
                client.delete_item(TableName=table, Key={"id": item["id"]})
            assert not client.scan(TableName=table)["Items"]

    return Audit()


def event(event_type: str, data: dict, at: datetime, source: str) -> EventEnvelope:
    return EventEnvelope(event_type=event_type, source=f"{source}-service", correlation_id=f"c-{uuid.uuid4().hex[:8]}",
                         data=data, timestamp=at)


def created(order_id: str, at: datetime) -> EventEnvelope:
    return event("OrderCreated", {"orderId": order_id, "userId": "u-1", "total": EUR, "paymentMethod": "pm_card_visa",
                                  "items": [{"productId": "p-1", "quantity": 2,
                                             "unitPrice": {"amount": 1250, "currency": "EUR"}}],
                                  "shippingAddress": ADDRESS}, at, "order")


def confirmed(order_id: str, at: datetime, total: dict | None = None) -> EventEnvelope:
    return event("OrderConfirmed", {"orderId": order_id, "userId": "u-1", "paymentId": f"pay_{order_id}",
                                    "total": total or EUR}, at, "order")


def cancelled(order_id: str, at: datetime, reason: str) -> EventEnvelope:
    return event("OrderCancelled", {"orderId": order_id, "userId": "u-1", "reason": reason,
                                    "previousStatus": "PENDING", "items": [{"productId": "p-1", "quantity": 1}]},
                 at, "order")


def payment(order_id: str, at: datetime, *, failed: bool, user: str = "u-1") -> EventEnvelope:
    data = {"paymentId": f"pay_{order_id}", "orderId": order_id, "userId": user, "amount": EUR}
    if failed:
        return event("PaymentFailed", {**data, "declineCode": "card_declined"}, at, "payment")
    return event("PaymentProcessed", {**data, "providerReference": "ch_1"}, at, "payment")


def level(product_id: str, available: int, version: int) -> dict:
    return {"productId": product_id, "quantity": available, "available": available, "reserved": 0, "version": version}


# --- windows ------------------------------------------------------------------------------------
def test_a_window_counts_each_event_once_whatever_the_order_duplicates_and_replays(audit):
    audit.clock.at = T0 + timedelta(minutes=2)
    a, b = created("o-a", T0 + timedelta(seconds=5)), created("o-b", T0 + timedelta(seconds=50))
    gbp = confirmed("o-c", T0 + timedelta(seconds=30), {"amount": 700, "currency": "GBP"})
    events = [confirmed("o-a", T0 + timedelta(seconds=40)), a, b, gbp,
              cancelled("o-b", T0 + timedelta(seconds=55), "payment_declined"),
              cancelled("o-d", T0 + timedelta(seconds=56), "out_of_stock"),
              cancelled("o-e", T0 + timedelta(seconds=57), "out_of_stock")]
    audit.send("orders", *events)
    audit.send("orders", a, events[0], gbp)  # redelivered: skipped by idempotency
    audit.forget_idempotency()
    audit.send("orders", *reversed(events))  # replayed, in another order: skipped by the windows' facts
    window = audit.window(T0)
    assert (window["ordersPlaced"], window["ordersConfirmed"]) == (2, 2)
    assert window["ordersCancelled"] == {"out_of_stock": 2, "payment_declined": 1}
    assert window["revenue"] == {"EUR": 2500, "GBP": 700}
    assert window["closed"] is False
    assert audit.window(T0 + timedelta(minutes=1))["ordersPlaced"] == 0


def test_a_batch_counts_its_events_in_one_write_per_window_and_partition_and_each_event_once(audit, monkeypatch):
    """The counts are written per batch: one transaction per window and source partition holds the events' facts
    and their summed counters (up to DynamoDB's 100 actions). An event twice in one batch, a batch delivered
    again, and a batch some of whose events were counted before each count every event once."""
    from audit import store
    from shopstream import aws

    writes: list[int] = []
    commit = store._commit_counts
    def commit_counts(minute, shard, chunk):
        writes.append(len(chunk))
        return commit(minute, shard, chunk)

    monkeypatch.setattr(store, "_commit_counts", commit_counts)
    audit.clock.at = T0 + timedelta(minutes=1)
    first = [payment(f"o-{n}", T0 + timedelta(seconds=n % 60), failed=n % 4 == 0) for n in range(30)]
    audit.send("payments", *first)
    assert writes == [30]
    more = [payment(f"o-{n}", T0 + timedelta(seconds=n % 60), failed=n % 4 == 0) for n in range(30, 230)]
    everything = first + more
    records = [kafka_record_of(e, partition=n % 2, offset=1000 + n) for n, e in enumerate(everything)]
    records.append(kafka_record_of(more[0], partition=0, offset=2000))  # the same event again in this batch
    writes.clear()
    response = audit.consumers["payments"](batch(*records), LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    # per partition (115 events): the 99 facts that fit one transaction with the counters item, refused as a whole
    # for the 15 counted before (found by their failed conditions and left out), 99 others, the last one
    assert sorted(writes) == [1, 1, 99, 99, 99, 99]
    window = audit.window(T0)
    assert (window["paymentAttempts"], window["paymentsFailed"]) == (230, 58)
    audit.consumers["payments"](batch(*records), LocalLambdaContext())  # the whole batch once more
    assert (audit.window(T0)["paymentAttempts"], audit.window(T0)["paymentsFailed"]) == (230, 58)
    table = naming.table("audit")
    shards = aws.client("dynamodb").query(
        TableName=table, KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
        ExpressionAttributeValues={":pk": {"S": f"WINDOW#{T0:%Y-%m-%dT%H:%M}"}, ":t": {"S": "TOTALS"}})["Items"]
    assert sorted(i["sk"]["S"] for i in shards) == ["TOTALS#payment-events#0", "TOTALS#payment-events#1"]


def test_live_analytics_reads_the_table_of_the_service_it_runs_as_where_services_share_a_process(
        audit, monkeypatch):
    """The local runtime runs every service in one process, each under its own settings (a context variable):
    the windows, read on several threads, are read from the audit table, not from what the environment names."""
    from shopstream.config import get_settings, override_settings, reset_settings

    audit.clock.at = T0 + timedelta(minutes=1)
    audit.send("orders", created("o-1", T0 + timedelta(seconds=3)))
    audit_settings = get_settings()
    monkeypatch.setenv("SHOPSTREAM_TABLE_NAME", naming.table("order"))  # another service's, as the process says
    reset_settings()
    with override_settings(audit_settings):
        assert audit.window(T0)["ordersPlaced"] == 1


def test_a_window_counted_before_its_partitions_had_items_of_their_own_still_sums_in(audit):
    """Windows written by the release before (one ``TOTALS`` item per window) add to the partitions' items."""
    from shopstream import aws

    aws.client("dynamodb").put_item(TableName=naming.table("audit"), Item={
        "pk": {"S": f"WINDOW#{T0:%Y-%m-%dT%H:%M}"}, "sk": {"S": "TOTALS"}, "payments": {"N": "5"},
        "paymentsFailed": {"N": "1"}, "windowStart": {"S": f"{T0:%Y-%m-%dT%H:%M}"}, "ttl": {"N": "1"}})
    audit.clock.at = T0 + timedelta(minutes=1)
    audit.send("payments", payment("o-1", T0, failed=True))
    assert (audit.window(T0)["paymentAttempts"], audit.window(T0)["paymentsFailed"]) == (6, 2)


def test_events_up_to_five_minutes_late_count_and_later_ones_do_not(audit):
    # Processed at 10:06:00: window 10:00 closed at 10:06:00 (its end 10:01 + 5 min) and still takes
    # events; window 9:59 closed at 10:05 and takes none.
    audit.clock.at = T0 + timedelta(minutes=6)
    audit.send("payments", payment("o-1", T0 + timedelta(seconds=59), failed=True),
               payment("o-2", T0 - timedelta(seconds=1), failed=True))
    assert audit.window(T0)["paymentAttempts"] == 1
    assert audit.window(T0 - timedelta(minutes=1))["paymentAttempts"] == 0
    audit.clock.at = T0 + timedelta(minutes=6, milliseconds=1)
    audit.send("payments", payment("o-3", T0 + timedelta(seconds=10), failed=False))
    assert audit.window(T0)["paymentAttempts"] == 1  # one millisecond too late
    assert audit.window(T0)["closed"] is True


def test_cloudwatch_metrics_are_emitted_once_per_event_however_often_it_arrives(audit, monkeypatch):
    from audit import logic

    emitted: Counter[str] = Counter()

    def add_metric(name: str, unit: object, value: int) -> None:
        emitted[name] += value

    monkeypatch.setattr(logic, "add_metric", add_metric)
    audit.clock.at = T0 + timedelta(minutes=20)
    on_time, late = confirmed("o-a", T0 + timedelta(minutes=19)), created("o-z", T0)
    audit.send("orders", on_time, late)
    audit.send("orders", late, on_time)  # redelivered
    audit.send("orders", on_time, late)  # replayed (the handler keeps no idempotency record)
    assert emitted == {"OrdersConfirmed": 1, "RevenueEUR": EUR["amount"], "AnalyticsLateEvents": 1}
    assert (audit.window(T0)["lateEvents"], audit.window(T0)["ordersPlaced"]) == (1, 0)
    assert audit.window(T0 + timedelta(minutes=19))["ordersConfirmed"] == 1


def test_a_batch_whose_count_fails_part_way_emits_the_committed_ones_metrics_and_its_redelivery_the_rest(
        audit, monkeypatch):
    """Windows are written one after another: should a later one fail, the invocation fails, and the redelivery
    finds the earlier ones' facts counted. Their metrics went out as they committed, so none is lost or doubled."""
    from audit import logic, store

    emitted: Counter[str] = Counter()
    monkeypatch.setattr(logic, "add_metric", lambda name, unit, value: emitted.update({name: value}))
    commit, broken = store._commit_counts, {"once": True}

    def failing_second_window(minute: str, shard: str, chunk: list) -> None:
        if minute.endswith(":01") and broken.pop("once", False):
            raise ConnectionError("DynamoDB unreachable")
        commit(minute, shard, chunk)

    monkeypatch.setattr(store, "_commit_counts", failing_second_window)
    audit.clock.at = T0 + timedelta(minutes=2)
    events = [created("o-a", T0 + timedelta(seconds=10)), created("o-b", T0 + timedelta(seconds=20)),
              created("o-c", T0 + timedelta(minutes=1, seconds=5))]
    records = [kafka_record_of(e, partition=0, offset=500 + n) for n, e in enumerate(events)]
    with pytest.raises(ConnectionError):
        audit.consumers["orders"](batch(*records), LocalLambdaContext())
    assert emitted["OrdersPlaced"] == 2  # the first window's, committed before the failure
    assert audit.consumers["orders"](batch(*records), LocalLambdaContext()) == {"batchItemFailures": []}
    assert emitted["OrdersPlaced"] == 3
    assert (audit.window(T0)["ordersPlaced"], audit.window(T0 + timedelta(minutes=1))["ordersPlaced"]) == (2, 1)


def test_payment_failure_rate_per_window(audit):
    audit.clock.at = T0 + timedelta(minutes=1)
    audit.send("payments", *(payment(f"o-{i}", T0 + timedelta(seconds=i), failed=i % 4 == 0) for i in range(8)))
    window = audit.window(T0)
    assert (window["paymentAttempts"], window["paymentsFailed"], window["paymentFailureRate"]) == (8, 2, 0.25)


def test_time_to_confirm_joins_created_and_confirmed_in_either_order(audit):
    audit.clock.at = T0 + timedelta(minutes=3)
    events = []
    for n in range(20):  # 1 s, 2 s, ... 20 s from creation to confirmation
        start = T0 + timedelta(seconds=n)
        events += [created(f"o-{n}", start), confirmed(f"o-{n}", start + timedelta(seconds=n + 1))]
    audit.send("orders", *events[1::2])  # every confirmation first
    audit.send("orders", *events[::2])
    audit.forget_idempotency()
    audit.send("orders", *events)  # a replay joins nothing twice
    latency = [w for w in audit.live(5)["windows"] if w["confirmLatencyMs"]["count"]]
    counts = sum(w["confirmLatencyMs"]["count"] for w in latency)
    assert counts == 20
    window = audit.window(T0)  # confirmations at 1..39 s: all in the first window
    assert window["confirmLatencyMs"]["count"] == 20
    assert 10_000 <= window["confirmLatencyMs"]["p50"] <= 10_000 * 1.05
    assert 19_000 <= window["confirmLatencyMs"]["p95"] <= 19_000 * 1.05


# --- FraudSuspected -----------------------------------------------------------------------------
def test_three_declines_within_ten_minutes_raise_one_fraud_alert_whatever_the_order(audit):
    audit.clock.at = T0 + timedelta(minutes=5)  # every window still open
    declines = [payment(f"o-{m}", T0 + timedelta(minutes=m), failed=True, user="mallory") for m in (0, 4, 8)]
    audit.send("payments", declines[2], payment("o-ok", T0 + timedelta(minutes=5), failed=False, user="mallory"))
    audit.send("payments", declines[0])
    assert audit.alerts("FraudSuspected") == []  # two declines so far
    audit.send("payments", declines[1], declines[1])  # the third, duplicated within the batch
    [alert] = audit.alerts("FraudSuspected")
    [published] = audit.emitted("FraudSuspected")
    assert published["data"]["userId"] == "mallory" and published["data"]["declines"] == 3
    assert sorted(published["data"]["paymentIds"]) == ["pay_o-0", "pay_o-4", "pay_o-8"]
    assert published["causationId"] in {d.event_id for d in declines}
    assert alert["alertId"] == published["data"]["alertId"] and alert["about"] == "mallory"
    # a fourth decline in the same ten minutes, and a replay of everything: nothing new
    audit.send("payments", payment("o-9", T0 + timedelta(minutes=8, seconds=30), failed=True, user="mallory"))
    audit.forget_idempotency()
    audit.send("payments", *reversed(declines))
    assert len(audit.alerts("FraudSuspected")) == 1 and len(audit.emitted("FraudSuspected")) == 1


def test_declines_ten_minutes_apart_other_customers_and_late_declines_raise_nothing(audit):
    audit.clock.at = T0 + timedelta(minutes=5)
    # exactly 10 minutes from the first to the third: not *within* 10 minutes
    audit.send("payments", *(payment(f"o-{m}", T0 + timedelta(minutes=m), failed=True, user="eve") for m in (0, 5, 10)))
    # three declines within a minute, but of three customers
    audit.send("payments", *(payment(f"o-x{n}", T0 + timedelta(minutes=9, seconds=n), failed=True, user=f"u-{n}")
                             for n in range(3)))
    # two on time and one whose window closed before it arrived (more than 5 minutes late)
    audit.clock.at = T0 + timedelta(minutes=9, seconds=31)
    audit.send("payments", payment("o-l1", T0 + timedelta(minutes=9), failed=True, user="late"),
               payment("o-l2", T0 + timedelta(minutes=9, seconds=30), failed=True, user="late"),
               payment("o-l3", T0 + timedelta(minutes=3), failed=True, user="late"))
    assert audit.alerts("FraudSuspected") == [] and audit.emitted("FraudSuspected") == []


# --- PaymentFailureSpike ------------------------------------------------------------------------
def _payments_in(audit, minute: int, failed: int, ok: int, tag: str = "") -> None:
    start = T0 + timedelta(minutes=minute)
    audit.send("payments", *(payment(f"o-{tag}{minute}-{n}", start + timedelta(seconds=n), failed=n < failed,
                                     user=f"u-{tag}{minute}-{n}") for n in range(failed + ok)))


def test_a_failure_rate_over_the_threshold_for_three_closed_windows_is_one_spike(audit):
    audit.close()  # the first run starts the cursor
    for minute, (failed, ok) in enumerate([(1, 3), (3, 1), (4, 0), (2, 1), (3, 0), (0, 4)]):
        audit.clock.at = T0 + timedelta(minutes=minute, seconds=59)
        _payments_in(audit, minute, failed, ok)
    audit.clock.at = T0 + timedelta(minutes=8)  # windows up to 10:01 closed: no run of three yet
    audit.close()
    assert audit.alerts("PaymentFailureSpike") == []
    audit.clock.at = T0 + timedelta(minutes=12)  # windows up to 10:06 closed
    audit.close()
    [published] = audit.emitted("PaymentFailureSpike")
    # 10:01 (75%), 10:02 (100%), 10:03 (67%) begin the spike; 10:04 (100%) continues it: one alert
    assert published["data"]["windowStarts"] == [(T0 + timedelta(minutes=m)).isoformat().replace("+00:00", "Z")
                                                  for m in (1, 2, 3)]
    assert published["data"]["failureRates"] == [0.75, 1.0, 0.6667]
    # Running again, and again after a replay of every payment, changes nothing.
    audit.close()
    from audit import store

    store.close_up_to("2026-11-29T09:00", store.closed_up_to()[1])  # as if the cursor were lost
    audit.forget_idempotency()
    for minute, (failed, ok) in enumerate([(1, 3), (3, 1), (4, 0), (2, 1), (3, 0), (0, 4)]):
        _payments_in(audit, minute, failed, ok)  # all late now: none counted again
    audit.close()
    assert len(audit.emitted("PaymentFailureSpike")) == 1
    assert audit.window(T0 + timedelta(minutes=1))["paymentAttempts"] == 4


def test_windows_closed_during_a_long_outage_of_the_schedule_are_matched_as_it_catches_up(audit):
    """The schedule did not run for three hours: each run matches an hour of windows from where the last one
    stopped, so a spike early in the outage is raised, once, and no window is left out."""
    audit.close()  # the first run starts the cursor
    for minute, (failed, ok) in enumerate([(3, 1), (4, 0), (3, 0), (0, 4)]):
        audit.clock.at = T0 + timedelta(minutes=minute, seconds=59)
        _payments_in(audit, minute, failed, ok)
    audit.clock.at = T0 + timedelta(hours=3)
    runs = [audit.close() for _ in range(5)]
    assert runs[0] == 60 and runs[-1] == 0
    from audit import analytics, logic, store

    final_after = analytics.last_closed_window(T0 + timedelta(hours=3), logic._final_after())
    assert store.closed_up_to()[0] == analytics.minute_key(final_after)
    [published] = audit.emitted("PaymentFailureSpike")
    assert published["data"]["windowStarts"][0] == T0.isoformat().replace("+00:00", "Z")


def test_two_windows_over_or_too_few_attempts_are_no_spike(audit):
    # over, over, under, over, over (3 of 4 failed, then 1 of 4), then three windows with 2 of 2 failed
    # (under the minimum of 3 attempts)
    audit.close()  # the first run starts the cursor at the newest closed windows
    for minute, (failed, ok) in enumerate([(3, 1), (3, 1), (1, 3), (3, 1), (3, 1), (2, 0), (2, 0), (2, 0)]):
        audit.clock.at = T0 + timedelta(minutes=minute, seconds=59)
        _payments_in(audit, minute, failed, ok)
    audit.clock.at = T0 + timedelta(minutes=20)
    assert audit.close() == 20  # 9:52 to 10:11 (final 7 minutes after their end: lateness and the consumers' timeout)
    assert audit.alerts("PaymentFailureSpike") == []


def test_a_spike_needs_its_first_window_closed_in_time(audit):
    """A failure arriving after its window closed does not complete a run."""
    audit.close()
    for minute in (0, 1):
        audit.clock.at = T0 + timedelta(minutes=minute, seconds=59)
        _payments_in(audit, minute, 3, 1)
    audit.clock.at = T0 + timedelta(minutes=2, seconds=59)
    _payments_in(audit, 2, 1, 3)  # under the threshold...
    audit.clock.at = T0 + timedelta(minutes=9)
    _payments_in(audit, 2, 3, 0, tag="late")  # ...and these would have tipped it, too late
    audit.clock.at = T0 + timedelta(minutes=10)
    audit.close()
    assert audit.alerts("PaymentFailureSpike") == []


def test_a_window_is_matched_only_once_a_batch_that_took_its_events_in_time_can_no_longer_be_counting(
        audit, monkeypatch):
    """A batch takes the failures that tip the third window while it is open, but counts them at its end, after
    the window stopped taking events; the schedule runs in between. It must not match that window yet: the
    spike is raised once the count is in (the window is final only after the analytics consumers' timeout)."""
    from audit import logic, store

    audit.close()
    for minute in (0, 1):
        audit.clock.at = T0 + timedelta(minutes=minute, seconds=59)
        _payments_in(audit, minute, 3, 1)
    audit.clock.at = T0 + timedelta(minutes=2, seconds=59)
    _payments_in(audit, 2, 1, 3)  # under the threshold so far
    count_each_once = store.count_each_once

    def counted_after_the_schedule_ran(tallies, counted_now=None):
        audit.clock.at = T0 + timedelta(minutes=8, seconds=30)  # 10:02 stopped taking events at 10:08
        audit.close()
        return count_each_once(tallies, counted_now)

    audit.clock.at = T0 + timedelta(minutes=7, seconds=59)  # the batch takes them while 10:02 is open
    monkeypatch.setattr(store, "count_each_once", counted_after_the_schedule_ran)
    _payments_in(audit, 2, 3, 0, tag="in-time")
    monkeypatch.setattr(store, "count_each_once", count_each_once)
    assert audit.window(T0 + timedelta(minutes=2))["paymentAttempts"] == 7
    assert audit.alerts("PaymentFailureSpike") == []  # 10:02 not matched before the count was in
    audit.clock.at = T0 + timedelta(minutes=8) + logic._final_after()
    audit.close()
    [spike] = audit.alerts("PaymentFailureSpike")
    assert audit.emitted("PaymentFailureSpike")[0]["data"]["failureRates"] == [0.75, 0.75, 0.5714]


# --- StockOutPredicted --------------------------------------------------------------------------
def _reserve(order_id: str, product_id: str, units: int, available: int, version: int, at: datetime) -> EventEnvelope:
    return event("InventoryReserved", {"orderId": order_id, "lines": [{"productId": product_id, "quantity": units}],
                                       "levels": [level(product_id, available, version)]}, at, "inventory")


def test_a_sell_through_rate_that_empties_the_shelf_within_the_hour_is_predicted_once(audit):
    audit.clock.at = T0 + timedelta(minutes=1)
    adjusted = event("InventoryAdjusted", {"productId": "mug", "delta": 100, "reason": "restock",
                                           "level": level("mug", 100, 1)}, T0, "inventory")
    # 10 reservations of 2 units in the window: 20 units / 15 minutes = 1.33 per minute; 80 left = 60 min:
    # not within the hour. The same for a second product with stock to spare.
    reservations = [_reserve(f"o-{n}", "mug", 2, 100 - 2 * (n + 1), n + 2, T0 + timedelta(seconds=n))
                    for n in range(10)]
    plenty = [_reserve(f"o-p{n}", "plate", 1, 1000 - n, n + 1, T0 + timedelta(seconds=n)) for n in range(10)]
    audit.send("inventory", *reversed(reservations), adjusted, *plenty, reservations[3])
    audit.clock.at = T0 + timedelta(minutes=8, seconds=1)  # 10:00 final (7 minutes after its end)
    audit.close()
    assert audit.alerts("StockOutPredicted") == []
    # one more reservation of 2 a few windows later: 22 units / 15 min, 78 left: 53 minutes
    audit.clock.at = T0 + timedelta(minutes=8, seconds=30)
    audit.send("inventory", _reserve("o-10", "mug", 2, 78, 12, T0 + timedelta(minutes=3, seconds=5)))
    audit.clock.at = T0 + timedelta(minutes=11, seconds=1)
    audit.close()
    [published] = audit.emitted("StockOutPredicted")
    assert published["data"]["productId"] == "mug" and published["data"]["minutesToStockOut"] == 53
    assert published["data"]["available"] == 78
    # an older stock level arriving late never replaces the newer one; nothing is predicted again
    audit.forget_idempotency()
    audit.send("inventory", *reservations, adjusted)
    from audit import store

    store.close_up_to("2026-11-29T09:00", store.closed_up_to()[1])
    audit.close()
    assert len(audit.emitted("StockOutPredicted")) == 1
    assert store.available_stock("mug") == 78


def test_live_analytics_lists_open_alerts_and_the_route_is_admin_only(audit):
    from shopstream.config import override_settings

    audit.clock.at = T0 + timedelta(minutes=5)
    audit.send("payments", *(payment(f"o-{m}", T0 + timedelta(minutes=m), failed=True, user="mallory")
                             for m in (0, 4, 8)))
    audit.clock.at = T0 + timedelta(minutes=9)
    from audit import api
    from local.http_events import claims_for, http_event

    settings = naming.function_settings("audit")
    with override_settings(settings):
        denied = api.handler(http_event("GET", "/analytics/live", claims=claims_for("u-1")), LocalLambdaContext())
        bad = api.handler(http_event("GET", "/analytics/live", claims=claims_for("ops", admin=True),
                                      query={"minutes": "0"}), LocalLambdaContext())
        answer = api.handler(http_event("GET", "/analytics/live", claims=claims_for("ops", admin=True),
                                         query={"minutes": "10"}), LocalLambdaContext())
    assert denied["statusCode"] == 403 and bad["statusCode"] == 422
    body = json.loads(answer["body"])
    assert len(body["windows"]) == 10 and body["windows"][-1]["start"] == "2026-11-29T10:09:00Z"
    assert sum(w["paymentsFailed"] for w in body["windows"]) == 3
    [alert] = body["alerts"]
    assert alert["type"] == "FraudSuspected" and alert["about"] == "mallory"
    audit.clock.at = T0 + timedelta(minutes=8 + 61)  # an alert is open for an hour after its detection
    assert audit.live(5)["alerts"] == []


def test_an_alerts_message_is_recorded_by_one_conditional_put_and_its_outcome_with_its_event(service_env):
    """Nothing else changes with the admins' message record: one PutItem (1 WRU), not a one-item transaction;
    its outcome emits NotificationSent, so it stays a transaction. Again: the record's condition stops it."""
    from local.samples import sample_event
    from notification import logic, senders
    from shopstream import aws
    from tests.unit.test_interleavings import inbound

    service_env("notification", "alert-notices")
    operations: list[str] = []
    client = aws.client("dynamodb")
    client.meta.events.register("before-call.dynamodb", lambda model, **_: operations.append(model.name),
                                unique_id="count-operations")

    class Counting:
        sent = 0

        def send(self, **_message: str) -> None:
            Counting.sent += 1

    senders.install(Counting())
    try:
        alert = inbound(sample_event("FraudSuspected"))
        logic.notify_admins(alert)
        logic.notify_admins(alert)  # a redelivery
    finally:
        senders.install(None)
        client.meta.events.unregister("before-call.dynamodb", unique_id="count-operations")
    assert Counting.sent == 1
    assert operations == ["PutItem", "TransactWriteItems", "PutItem", "GetItem"]  # record, SENT; refused, resumed


def test_notification_tells_the_admins_of_an_alert_once(service_env):
    from local.samples import sample_event
    from notification import logic, senders
    from shopstream import aws, dynamo

    service_env("notification", "alert-notices")
    sent: list[tuple[str, str]] = []

    class Counting:
        def send(self, *, message_id: str, to: str, subject: str, body: str) -> None:
            sent.append((to, subject))

    senders.install(Counting())
    try:
        consumer = EventConsumer("notification", "alert-notices", logic.notify_admins)
        alert = sample_event("FraudSuspected")
        for _ in range(2):
            assert consumer(batch(kafka_record_of(alert)), LocalLambdaContext()) == {"batchItemFailures": []}
    finally:
        senders.install(None)
    assert sent == [("admins@shopstream.example", "Fraud suspected")]
    items = [dynamo.from_attributes(i) for i in
             aws.client("dynamodb").scan(TableName=naming.table("notification"))["Items"]]
    [message] = [i for i in items if i["sk"] == "MESSAGE"]
    assert (message["userId"], message["status"], message["template"]) == ("admins", "SENT", "alert-fraud-suspected")
    assert [i["eventType"] for i in items if i["pk"].startswith("OUTBOX#")] == ["NotificationSent"]


def test_metrics_from_16_threads_enter_powertools_one_at_a_time_and_count_every_event(service_env, monkeypatch):
    """A batch's keys run on 16 threads (catalog concurrency), and Powertools' Metrics is not thread-safe: its
    add_metric creates a metric's entry and flushes at exactly 100 values without a lock. Every event still
    counts once, and no two threads are ever inside it together (each call here holds the door for 2 ms)."""
    import threading
    import time

    from audit import analytics, logic, store
    from shopstream import observability

    service_env("audit", "analytics-orders")
    monkeypatch.setattr(analytics, "now", lambda: T0 + timedelta(minutes=1))
    facts: set[str] = set()
    facts_lock = threading.Lock()

    def count_each_once(tallies: list, counted_now=None) -> list:  # the windows' facts, in memory
        with facts_lock:
            new = [t for t in tallies if t.fact not in facts]
            facts.update(t.fact for t in tallies)
        if counted_now is not None:
            counted_now(new)
        return new

    monkeypatch.setattr(store, "count_each_once", count_each_once)
    monkeypatch.setattr(store, "record_join_side", lambda *args: {})
    added: defaultdict[str, float] = defaultdict(float)  # a metric's sum (Counter counts in int)
    inside, overlaps = [0], [0]
    door = threading.Lock()

    def add_metric(*, name: str, unit: object, value: float, **_: object) -> None:
        with door:
            inside[0] += 1
            overlaps[0] += inside[0] > 1
        time.sleep(0.002)
        with door:
            inside[0] -= 1
            added[name] += value

    monkeypatch.setattr(observability.metrics(), "add_metric", add_metric)
    run = EventConsumer("audit", "analytics-orders", logic.on_order_metrics, concurrency=16,
                        after_batch=logic.count_batch)
    events = [created(f"o-{n}", T0 + timedelta(seconds=n % 60)) for n in range(100)]
    response = run(batch(*(kafka_record_of(e, partition=0, offset=n) for n, e in enumerate(events))),
                   LocalLambdaContext())
    assert response == {"batchItemFailures": []}
    assert overlaps[0] == 0
    assert added["OrdersPlaced"] == 100 and added["EventsProcessed"] == 100
