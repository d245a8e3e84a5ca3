"""The capacity and cost model (tools/capacity.py, docs/capacity.md): the arithmetic each figure rests on."""

from __future__ import annotations

import pytest

from shopstream import catalog
from stacks.config import load
from tools import capacity

RATE = 2000.0


def _prod(**partitions: int):
    environments = capacity._environments()
    prod = environments["prod"]
    return load({**environments, "prod": {**prod, "partitions": {**prod["partitions"], **partitions}}}, "prod")


def _only(monkeypatch, **records_per_order: float) -> None:
    """The model's order with only these records on the topics."""
    monkeypatch.setattr(capacity, "RECORDS_PER_ORDER", records_per_order)


def _load(**fields) -> capacity.HandlerLoad:
    defaults = {"ref": "order.payment-outcomes", "topic": "payment-events", "records_per_second": 1000.0,
                "ms_per_record": 20.0, "concurrency": 16, "batch_size": 100, "window_seconds": 1.0}
    return capacity.HandlerLoad(**{**defaults, **fields})


def test_every_handler_of_the_catalog_has_measured_calls_and_reads():
    """A handler missing from bench section 2's figures would silently take the assumed default."""
    for spec in catalog.SERVICES:
        for handler in spec.handlers:
            ref = f"{spec.name}.{handler.name}"
            key = capacity._model_key(ref)
            assert key in capacity.CALLS_PER_EVENT and key in capacity.READS_PER_EVENT, ref
            assert 0 <= capacity.reads_per_event(ref) <= capacity.calls_per_event(ref)[0], ref


def test_the_audit_trail_makes_one_write_and_no_read(monkeypatch):
    """M1: a trail record is one conditional put; it used to be counted as 2 reads besides (the look-up missed
    the audit.trail-* entry)."""
    _only(monkeypatch, AuditRecorded=1.0)  # audit-events: only audit.trail-audit takes it
    cost = capacity.monthly_cost(_prod(), RATE)
    writes_only = RATE * capacity.TRAIL_WRU * capacity.DYNAMODB_WRU * capacity.SECONDS_PER_MONTH
    assert cost["DynamoDB requests"] == pytest.approx(writes_only)
    assert capacity.reads_per_event("audit.trail-order") == 0
    assert capacity.calls_per_event("audit.trail-order") == capacity.CALLS_PER_EVENT["audit.trail-*"]


def test_reads_are_the_handlers_reads_not_its_calls_but_one(monkeypatch):
    """A notification's two transactions are writes: of its 3 calls per event one is a read."""
    _only(monkeypatch, OrderShipped=1.0)  # order-events: notification.order-notices and the order trail
    cost = capacity.monthly_cost(_prod(), RATE)
    notices = RATE * (capacity.WRU_PER_EVENT * capacity.DYNAMODB_WRU + 1.0 * capacity.DYNAMODB_RRU)
    trail = RATE * capacity.TRAIL_WRU * capacity.DYNAMODB_WRU
    assert cost["DynamoDB requests"] == pytest.approx((notices + trail) * capacity.SECONDS_PER_MONTH)


def test_billed_seconds_are_shared_by_the_records_that_run_side_by_side():
    """M3: an invocation bills its wall time; with 16 keys at once, 16 records share it."""
    serial, parallel = _load(concurrency=1), _load(concurrency=16)
    assert serial.billed_seconds(10) == pytest.approx(1000 * 0.020)
    assert parallel.billed_seconds(10) == pytest.approx(1000 * 0.020 / 16)
    # ... but only as many as the invocation holds: one record at a time shares nothing
    trickle = _load(records_per_second=1.0, window_seconds=0)
    assert trickle.records_per_invocation(10) == 1
    assert trickle.billed_seconds(10) == pytest.approx(1.0 * 0.020)


def test_records_per_invocation_grow_as_partitions_shrink():
    """M4: what a partition gathers in its window (or, window 0, during one invocation), 1 to the batch size."""
    windowed = _load(records_per_second=1000.0, window_seconds=1.0)
    assert [windowed.records_per_invocation(p) for p in (1000, 100, 20, 10, 1)] == [1, 10, 50, 100, 100]
    at_once = _load(records_per_second=2000.0, ms_per_record=300.0, window_seconds=0)
    assert at_once.records_per_invocation(60) == pytest.approx(2000 / 60 * 0.3)
    assert at_once.invocations_per_second(60) == pytest.approx(2000 / (2000 / 60 * 0.3))


def test_fewer_partitions_mean_fewer_invocations_log_lines_and_archive_objects():
    wide, narrow = (capacity.monthly_cost(_prod(**{"audit-events": n, "order-events": n}), RATE) for n in (240, 24))
    for item in ("Lambda", "CloudWatch Logs", "S3 archive PUTs"):
        assert narrow[item] < wide[item], item


def test_the_archive_puts_one_object_per_trail_invocation(monkeypatch):
    _only(monkeypatch, AuditRecorded=1.0)
    audit = _prod(**{"audit-events": 6})
    trail = next(ld for ld in capacity.loads(RATE) if ld.ref == "audit.trail-audit")
    puts = trail.invocations_per_second(6)
    assert puts == pytest.approx(RATE / 100)  # 333 records/s per partition: every 1 s window fills the batch
    cost = capacity.monthly_cost(audit, RATE)
    assert cost["S3 archive PUTs"] == pytest.approx(puts * capacity.S3_PUT * capacity.SECONDS_PER_MONTH)


def test_the_trail_table_holds_its_retention_not_a_month(monkeypatch):
    """M6: with a TTL the table is a steady size, the retention's worth of trail records."""
    _only(monkeypatch, AuditRecorded=1.0)
    item = f"DynamoDB storage (the trail's {capacity.TRAIL_RETENTION_DAYS} days)"
    kept_gb = RATE * capacity.RECORD_KB * capacity.TRAIL_RETENTION_DAYS * 86400 / 1e6
    assert capacity.monthly_cost(_prod(), RATE)[item] == pytest.approx(kept_gb * capacity.DYNAMODB_GB_MONTH)
    monkeypatch.setattr(capacity, "TRAIL_RETENTION_DAYS", 14)
    assert capacity.monthly_cost(_prod(), RATE)["DynamoDB storage (the trail's 14 days)"] == pytest.approx(
        2 * kept_gb * capacity.DYNAMODB_GB_MONTH)


def test_the_saga_options_replace_the_relay_hops_and_the_charge_hop():
    today = capacity.saga_hops()
    assert today == capacity.saga_hops(direct_publish=False, authorise_beside=False)
    relays = [h for h in today if "relay" in h[0]]
    assert len(relays) == 3 and len(today) == 7
    direct = capacity.saga_hops(direct_publish=True)
    assert [h[1:] for h in direct if "produce after the commit" in h[0]] == [capacity.PRODUCE_MS] * 3
    assert sum(h[1] for h in today) - sum(h[1] for h in direct) == pytest.approx(3 * capacity.STREAM_MS[0])
    beside = capacity.saga_hops(authorise_beside=True)
    assert len(beside) == 4  # POST, order relay, the slower of reservation and authorisation, confirmation
    both = {name: (p50_met, p99_met) for name, _, _, p50_met, p99_met in capacity.saga_options()}
    assert both == {"today": (False, False), "A: publish after the commit": (True, False),
                    "B: authorise beside the reservation": (False, False), "A + B": (True, True)}


def test_partitions_round_up_to_whole_multiples_of_the_brokers():
    assert [capacity.rounded_partitions(n, 6) for n in (0, 1, 6, 7, 13)] == [6, 6, 6, 12, 18]
