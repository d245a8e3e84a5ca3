"""An outbox relay behind its table's stream, run the way Lambda's stream mapping runs it: the
in-process bus and the local runtime both use this, and differ only in where records go."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local.context import LocalLambdaContext
from local.streams import StreamReader
from shopstream.config import Settings, override_settings
from shopstream.outbox import OutboxRelay

BATCH_SIZE = 100  # the relay mapping's batch size (stacks/service/consumers.py)
GiveUp = Callable[[dict[str, Any]], None]


class StreamRelay:
    """New stream records in batches, the relay invoked on each; a shard resumes at the first record
    the relay reported failed (the ones after it are published again: consumers drop them by eventId).
    With ``retry_attempts``, a batch that keeps failing is given up: its on-failure record (Lambda's
    ``DDBStreamBatchInfo`` shape) goes to ``give_up`` and the shard moves on."""

    def __init__(self, service: str, reader: StreamReader, settings: Settings, *,
                 retry_attempts: int | None = None, give_up: GiveUp | None = None):
        self.service, self.reader, self.settings = service, reader, settings
        self.retry_attempts, self.give_up = retry_attempts, give_up
        self.attempts: dict[str, int] = {}

    def poll(self, relay: OutboxRelay) -> tuple[int, bool]:
        """One read of the stream: (records read, whether every one of them was relayed)."""
        moved, complete = 0, True
        for shard_id, records in self.reader.read():
            for start in range(0, len(records), BATCH_SIZE):
                batch = records[start:start + BATCH_SIZE]
                moved += len(batch)
                with override_settings(self.settings):
                    result = relay({"Records": batch}, LocalLambdaContext(function_name=f"{self.service}-relay"))
                failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
                done = next((batch[:i] for i, r in enumerate(batch) if r["dynamodb"]["SequenceNumber"] in failed),
                            batch)
                if len(done) < len(batch) and not self._given_up(shard_id, batch[len(done):]):
                    if done:
                        self.reader.advance(shard_id, done[-1])
                    complete = False
                    break  # this shard resumes at its first failed record on the next poll
                self.reader.advance(shard_id, batch[-1])
        return moved, complete

    def _given_up(self, shard_id: str, rest: list[dict[str, Any]]) -> bool:
        if self.retry_attempts is None or self.give_up is None:
            return False
        first = rest[0]["dynamodb"]["SequenceNumber"]
        self.attempts[first] = self.attempts.get(first, 0) + 1
        if self.attempts[first] <= self.retry_attempts:
            return False
        self.give_up(failure_record(self.service, self.reader.stream_arn, shard_id, rest, self.retry_attempts + 1))
        return True


def failure_record(service: str, stream_arn: str, shard_id: str, batch: list[dict[str, Any]],
                   attempts: int) -> dict[str, Any]:
    """What a DynamoDB stream mapping sends to its on-failure destination (coordinates, no payload)."""
    def arrival(record: dict[str, Any]) -> str:
        moment = record["dynamodb"].get("ApproximateCreationDateTime")
        return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)

    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                           "functionArn": f"{service}-relay", "approximateInvokeCount": attempts},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": datetime.now(UTC).isoformat(),
        "DDBStreamBatchInfo": {"shardId": shard_id, "streamArn": stream_arn, "batchSize": len(batch),
                               "startSequenceNumber": batch[0]["dynamodb"]["SequenceNumber"],
                               "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                               "approximateArrivalOfFirstRecord": arrival(batch[0]),
                               "approximateArrivalOfLastRecord": arrival(batch[-1])},
    }


def queue_sender(client: Any, queue_url: str) -> GiveUp:
    def send(record: dict[str, Any]) -> None:
        client.send_message(QueueUrl=queue_url, MessageBody=json.dumps(record))
    return send
