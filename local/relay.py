"""An outbox relay behind its table's stream, run the way Lambda's stream mapping runs it: the
in-process bus and the local runtime both use this, and differ only in where records go."""

from __future__ import annotations

from typing import Any

from local.context import LocalLambdaContext
from local.destinations import GiveUp
from local.streams import StreamReader
from shopstream.config import Settings, override_settings
from shopstream.failed_batches import invocation_record
from shopstream.outbox import OUTBOX_PREFIX
from shopstream.relay import OutboxRelay

BATCH_SIZE = 100  # the relay mapping's batch size (stacks/service/consumers.py)


class StreamRelay:
    """New stream records in batches, the relay invoked on each; a shard resumes at the first record
    the relay reported failed (the ones after it are published again: consumers drop them by eventId).
    Only outbox inserts are batched, as the stack's filter on the relay's mapping lets only them through, and
    where direct publish is on the outbox deletes that show an event was published (shopstream.direct). A batch
    the relay held back (``heldBack``: an item still in its grace) resumes there without counting an attempt.
    With ``retry_attempts``, a batch that keeps failing is given up: its invocation record (Lambda's
    ``DDBStreamBatchInfo`` and the stream records) goes to ``give_up`` and the shard moves on."""

    def __init__(self, service: str, reader: StreamReader, settings: Settings, *,
                 retry_attempts: int | None = None, give_up: GiveUp | None = None):
        self.service, self.reader, self.settings = service, reader, settings
        self.retry_attempts, self.give_up = retry_attempts, give_up
        self.attempts: dict[str, int] = {}

    def poll(self, relay: OutboxRelay) -> tuple[int, bool]:
        """One read of the stream: (records read, whether every one of them was relayed)."""
        moved, complete = 0, True
        for shard_id, read in self.reader.read():
            moved += len(read)
            wanted = _outbox_change if self.settings.direct_publish else _outbox_insert
            records = [r for r in read if wanted(r)]
            shard_done = True
            for start in range(0, len(records), BATCH_SIZE):
                batch = records[start:start + BATCH_SIZE]
                with override_settings(self.settings):
                    result = relay({"Records": batch}, LocalLambdaContext(function_name=f"{self.service}-relay"))
                failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
                done = next((batch[:i] for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed),
                            batch)
                held = len(done) < len(batch) and batch[len(done)]["dynamodb"]["SequenceNumber"] == result.get(
                    "heldBack")
                if len(done) < len(batch) and (held or not self._given_up(shard_id, batch[len(done):])):
                    if done:
                        self.reader.advance(shard_id, done[-1])
                    complete = shard_done = False
                    break  # this shard resumes at its first failed record on the next poll
                self.reader.advance(shard_id, batch[-1])
            if shard_done and read:
                self.reader.advance(shard_id, read[-1])  # past the records the filter drops
        return moved, complete

    def _given_up(self, shard_id: str, rest: list[dict[str, Any]]) -> bool:
        if self.retry_attempts is None or self.give_up is None:
            return False
        first = rest[0]["dynamodb"]["SequenceNumber"]
        self.attempts[first] = self.attempts.get(first, 0) + 1
        if self.attempts[first] <= self.retry_attempts:
            return False
        self.give_up(failure_record(self.service, self.reader.stream_arn, shard_id, rest, self.retry_attempts + 1),
                     shard_id)
        return True


def _outbox_insert(record: dict[str, Any]) -> bool:
    """What the relay mapping's filter lets through: inserts of outbox items."""
    key = record.get("dynamodb", {}).get("Keys", {}).get("pk", {}).get("S", "")
    return record.get("eventName") == "INSERT" and key.startswith(OUTBOX_PREFIX)


def _outbox_change(record: dict[str, Any]) -> bool:
    """What the relay mapping's filters let through where direct publish is on: inserts of outbox items, and their
    deletes by a function (a delete by TTL names DynamoDB as its ``userIdentity``)."""
    key = record.get("dynamodb", {}).get("Keys", {}).get("pk", {}).get("S", "")
    return _outbox_insert(record) or (record.get("eventName") == "REMOVE" and key.startswith(OUTBOX_PREFIX)
                                      and "userIdentity" not in record)


def failure_record(service: str, stream_arn: str, shard_id: str, batch: list[dict[str, Any]],
                   attempts: int) -> dict[str, Any]:
    """What a DynamoDB stream mapping writes to its S3 on-failure destination: the coordinates
    (``DDBStreamBatchInfo``) and the invocation event, whose records hold the outbox items."""
    def arrival(record: dict[str, Any]) -> str:
        moment = record["dynamodb"].get("ApproximateCreationDateTime")
        return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)

    info = {"shardId": shard_id, "streamArn": stream_arn, "batchSize": len(batch),
            "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(batch[0]), "approximateArrivalOfLastRecord": arrival(batch[-1])}
    return invocation_record(function=f"{service}-relay", condition="RetryAttemptsExhausted", error="Unhandled",
                             attempts=attempts, batch_info=info, event={"Records": batch})
