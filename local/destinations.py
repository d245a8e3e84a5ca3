"""The on-failure destination of the local mappings: the service's failed-batch bucket, as on AWS.

A mapping that gives a batch up writes Lambda's invocation record (metadata and the whole event) under
its own prefix; the bucket's notification announces the object to the mapping's dead-letter queue
(local/provision.py configures both as the stacks do). Used by the broker-backed mappings
(local/mapping.py), the stream relays (local/relay.py) and the in-process bus (local/bus.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from local import naming
from shopstream.failed_batches import object_key

GiveUp = Callable[[dict[str, Any], str], None]  # (invocation record, shard: "<topic>-<partition>" or a shard id)


def failed_batch_destination(client: Callable[[str], Any], service: str, owner: str) -> GiveUp:
    """Where the mapping of ``owner`` (a handler's name, or ``relay``) gives its batches up."""
    bucket, mapping = naming.failed_batches_bucket(service), naming.mapping_id(service, owner)

    def give_up(record: dict[str, Any], shard: str) -> None:
        client("s3").put_object(Bucket=bucket, Key=object_key(mapping, shard, datetime.now(UTC)),
                                Body=json.dumps(record, default=str).encode(), ContentType="application/json")

    return give_up
