"""Reading DynamoDB streams (moto) the way the Lambda stream poller does: new records only."""

from __future__ import annotations

from typing import Any

PAGE = 1000


class StreamReader:
    """Remembers, per shard, the last sequence number relayed and the iterator that continues after
    the last record read: a poll that follows a fully relayed read costs one GetRecords call. After
    a partial relay (``advance`` to an earlier record) or an iterator that no longer works, it asks
    for a fresh AFTER_SEQUENCE_NUMBER iterator."""

    def __init__(self, streams: Any, stream_arn: str):
        self.streams = streams
        self.stream_arn = stream_arn
        self.position: dict[str, int] = {}
        self._shards: list[str] = []
        self._continue: dict[str, tuple[str, int | None]] = {}  # shard -> (next iterator, last seq read)

    def _shard_ids(self, refresh: bool = False) -> list[str]:
        if refresh or not self._shards:
            description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            self._shards = [shard["ShardId"] for shard in description["Shards"]]
        return self._shards

    def _iterator(self, shard_id: str) -> str:
        cached = self._continue.get(shard_id)
        if cached is not None and cached[1] == self.position.get(shard_id):
            return cached[0]
        if shard_id in self.position:
            return str(self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=str(self.position[shard_id]))["ShardIterator"])
        return str(self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])

    def read(self) -> list[tuple[str, list[dict[str, Any]]]]:
        """New records per shard, shaped as the Lambda stream event's records."""
        out = []
        for shard_id in self._shard_ids():
            try:
                records = self._read_shard(shard_id)
            except self.streams.exceptions.ClientError:
                # The iterator expired or the shard changed: start again from what was relayed.
                self._continue.clear()
                self._shard_ids(refresh=True)
                records = self._read_shard(shard_id) if shard_id in self._shards else []
            if records:
                out.append((shard_id, records))
        return out

    def _read_shard(self, shard_id: str) -> list[dict[str, Any]]:
        iterator: str | None = self._iterator(shard_id)
        last_read = self.position.get(shard_id)
        records: list[dict[str, Any]] = []
        while iterator:
            page = self.streams.get_records(ShardIterator=iterator, Limit=PAGE)
            records += [{**r, "eventSource": "aws:dynamodb", "eventSourceARN": self.stream_arn}
                        for r in page["Records"]]
            if page["Records"]:
                last_read = int(page["Records"][-1]["dynamodb"]["SequenceNumber"])
            following = page.get("NextShardIterator")
            if following:
                self._continue[shard_id] = (following, last_read)
            # A short page is the end of what there is (no need for one more, empty, request).
            iterator = following if len(page["Records"]) == PAGE else None
        return records

    def advance(self, shard_id: str, record: dict[str, Any]) -> None:
        """The next read of this shard starts after ``record``."""
        self.position[shard_id] = int(record["dynamodb"]["SequenceNumber"])
