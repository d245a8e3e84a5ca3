"""The audit table: ``TRAIL#<correlationId>`` / ``<timestamp>#<eventId>``, written once, never updated.
The archive keeps the same envelopes in S3 (Object Lock) as ``<topic>/<yyyy>/<mm>/<dd>/<eventId>.json``."""

from __future__ import annotations

import json
from typing import Any

from shopstream import aws, dynamo
from shopstream.transaction import UnitOfWork


def record(uow: UnitOfWork, envelope: dict[str, Any], topic: str, partition: int, offset: int) -> None:
    uow.put({"pk": f"TRAIL#{envelope['correlationId']}", "sk": f"{envelope['timestamp']}#{envelope['eventId']}",
             "envelope": json.dumps(envelope, separators=(",", ":")), "topic": topic, "partition": partition,
             "offset": offset}, condition="attribute_not_exists(pk)")


def trail(correlation_id: str) -> list[dict[str, Any]]:
    items = dynamo.query("pk = :pk", {":pk": f"TRAIL#{correlation_id}"})
    return [json.loads(i["envelope"]) for i in items]


def archive(bucket: str, topic: str, envelope: dict[str, Any]) -> None:
    """Written once: a redelivered event finds its object there (If-None-Match), so the locked
    archive does not grow a second version of it."""
    day = envelope["timestamp"][:10].replace("-", "/")
    s3 = aws.client("s3")
    try:
        s3.put_object(Bucket=bucket, Key=f"{topic}/{day}/{envelope['eventId']}.json",
                      Body=json.dumps(envelope, separators=(",", ":")).encode(),
                      ContentType="application/json", IfNoneMatch="*")
    except s3.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
            raise
