"""Reading DynamoDB streams (moto) the way the Lambda stream poller does: new records only."""

from __future__ import annotations

from typing import Any

PAGE = 1000


class StreamReader:
    """Remembers the last sequence number relayed per shard and reads only what came after it.

    A fresh AFTER_SEQUENCE_NUMBER iterator is asked for on every read: moto replaces a table's
    shard object when it rolls back a failed transaction, which strands iterators kept across reads.
    """

    def __init__(self, streams: Any, stream_arn: str):
        self.streams = streams
        self.stream_arn = stream_arn
        self.position: dict[str, int] = {}

    def read(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """New records per shard, shaped as the Lambda stream event's records."""
        out = []
        for shard in self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            if shard_id in self.position:
                iterator = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=str(self.position[shard_id]))["ShardIterator"]
            else:
                iterator = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            records: list[dict[str, Any]] = []
            while iterator:
                page = self.streams.get_records(ShardIterator=iterator, Limit=PAGE)
                records += [{**r, "eventSource": "aws:dynamodb", "eventSourceARN": self.stream_arn}
                            for r in page["Records"]]
                # A short page is the end of what there is (no need for one more, empty, request).
                iterator = page.get("NextShardIterator") if len(page["Records"]) == PAGE else None
            if records:
                out.append((shard_id, records))
        return out

    def advance(self, shard_id: str, record: dict[str, Any]) -> None:
        """The next read of this shard starts after ``record``."""
        self.position[shard_id] = int(record["dynamodb"]["SequenceNumber"])
