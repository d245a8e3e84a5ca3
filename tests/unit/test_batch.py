"""How a batch's key groups run (shopstream/batch.py): the seeded interleaving the simulation uses instead of
threads, and the grouping of a handler that keeps no order."""

from __future__ import annotations

import random

from shopstream.batch import SeededInterleaving, ordering_key


def _run(groups: list[list[str]], concurrency: int, seed: int) -> list[str]:
    ran: list[str] = []
    SeededInterleaving(random.Random(seed))([list(g) for g in groups], ran.append, concurrency)
    return ran


GROUPS = [["a1", "a2", "a3"], ["b1", "b2"], ["c1", "c2", "c3"], ["d1"]]


def test_every_record_runs_once_and_each_groups_records_stay_in_order():
    for seed in range(50):
        ran = _run(GROUPS, 16, seed)
        assert sorted(ran) == sorted(r for g in GROUPS for r in g)
        for group in GROUPS:
            assert [r for r in ran if r in group] == group


def test_a_seed_replays_its_order_and_seeds_differ():
    assert _run(GROUPS, 16, 7) == _run(GROUPS, 16, 7)
    orders = {tuple(_run(GROUPS, 16, seed)) for seed in range(20)}
    assert len(orders) > 10
    assert any(o[0] != "a1" for o in orders)  # not always the batch's own order


def test_no_more_groups_under_way_than_the_concurrency_as_a_thread_pool_takes_them():
    """With 2 workers the third group starts only once one of the first two is done."""
    for seed in range(50):
        ran = _run(GROUPS, 2, seed)
        first_done = min(ran.index("a3"), ran.index("b2"))
        assert ran.index("c1") > first_done
    assert all(_run(GROUPS, 1, seed) == [r for g in GROUPS for r in g] for seed in range(10))


def test_a_handler_that_keeps_no_order_has_every_record_in_a_group_of_its_own():
    one, two = ({"topic": "audit-events", "partition": 3, "offset": n, "key": "admin-1"} for n in (10, 11))
    assert ordering_key(one) == ordering_key(two) == ("audit-events", 3, "admin-1")
    assert ordering_key(one, ordered=False) != ordering_key(two, ordered=False)


def _kafka_batch(keys: list[str]) -> dict:
    from shopstream.wire import msk_event, msk_record

    return msk_event([msk_record(topic="order-events", partition=0, offset=n, key=key.encode(), value=b"{}",
                                 headers=[]) for n, key in enumerate(keys)])


def _processed(keys: list[str], failing: set[int], *, concurrency: int, ordered: bool = True) -> tuple[list, dict]:
    """Which offsets the handler saw, and the partial batch response, when the records at ``failing`` fail."""
    from aws_lambda_powertools.utilities.batch import process_partial_response

    from shopstream.batch import KeyOrderedBatchProcessor

    seen: list[int] = []

    def handler(record) -> None:
        seen.append(record.offset)
        if record.offset in failing:
            raise RuntimeError("transient")

    processor = KeyOrderedBatchProcessor(concurrency, ordered=ordered, run_groups=SeededInterleaving(random.Random(3)))
    response = process_partial_response(event=_kafka_batch(keys), record_handler=handler, processor=processor)
    return sorted(seen), {"failed": [f["itemIdentifier"] for f in response["batchItemFailures"]],
                          "held": processor.held_back}


def test_a_failed_record_holds_back_the_later_records_of_its_key_and_no_other():
    keys = ["a", "b", "a", "b", "a"]  # offsets 0..4
    for concurrency in (1, 16):  # one by one, and keys side by side
        seen, outcome = _processed(keys, failing={0}, concurrency=concurrency)
        assert seen == [0, 1, 3]  # a's later records (2, 4) were never handed to the handler
        assert outcome["held"] == 2
        assert len(outcome["failed"]) == 3  # the failure and the two held back: redelivered from offset 0


def test_a_handler_that_keeps_no_order_holds_nothing_back():
    seen, outcome = _processed(["a", "b", "a", "b", "a"], failing={0}, concurrency=16, ordered=False)
    assert seen == [0, 1, 2, 3, 4]
    assert outcome["held"] == 0 and len(outcome["failed"]) == 1
