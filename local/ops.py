"""The operator's commands, as functions: replay, dead letters (list, redrive, discard), traces, tail, produce.

Each runs against a Target: the local stack (the default), or a deployed environment. Locally a handler is run
in this process as its mapping would run it (the local runtime's functions), and deployed it is invoked as its
Lambda function. The console (local/console.py) and the seeded simulation call these functions; their command
line is tools/ops.py (``make ops``). They live beside the local runtime because the local target runs it.
Replay and redrive are safe to repeat: every handler keeps a state guard (a version, a fact per event, a
write-once record), so an event it already applied changes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, Producer, TopicPartition
from pydantic import ValidationError

from local import entry_points, naming
from local.client import partition_numbers
from local.context import LocalLambdaContext
from local.http_events import claims_for, http_event
from local.stack import from_environment
from local.traces import render
from shopstream import aws, catalog, failed_batches, names, outbox, tracing
from shopstream.config import Settings, override_settings
from shopstream.consumer import PoisonRecord, parse_record
from shopstream.envelope import EventEnvelope
from shopstream.outbox import failure_window, outbox_items_between, record_of_item, stored_record
from shopstream.publisher import producer_config
from shopstream.wire import IncomingRecord, msk_event, msk_record, msk_record_of, redelivered, to_record


# --- where things are -----------------------------------------------------------------------
class Target:
    """The local stack, or a deployed environment."""

    def __init__(self, env: str, *, in_process: bool = False):
        """``in_process``: the local names, reached with this process's own AWS clients as they are (moto in
        process: the seeded simulation and tests drive the operator's commands this way)."""
        self.env = env
        self.local = env == "local"
        if self.local and not in_process:
            quiet = {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
            for key, value in {**from_environment().environment(), **quiet, **local_trace_export()}.items():
                os.environ.setdefault(key, value)
        self.prefix = names.prefix(env)
        self.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        self._queue_urls: dict[str, str] = {}

    def client(self, name: str) -> Any:
        return aws.client(name)

    def queue_url(self, service: str, handler: str) -> str:
        name = names.dead_letter_queue(self.prefix, service, handler)
        if name not in self._queue_urls:
            self._queue_urls[name] = self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        return self._queue_urls[name]

    def archive_bucket(self) -> str:
        """The audit archive's bucket: the local stack's, or the environment's in this session's account and region
        (the platform stack names it by the same rule)."""
        if self.local:
            return naming.AUDIT_ARCHIVE_BUCKET
        account = self.client("sts").get_caller_identity()["Account"]
        return names.audit_archive_bucket(self.prefix, account, self.client("s3").meta.region_name)

    def table(self, service: str) -> str:
        if self.local:
            return names.table(self.prefix, service)
        stack = names.service_stack(self.prefix, service)
        outputs = self.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        return next(o["OutputValue"] for o in outputs.get("Outputs", []) if o["OutputKey"] == names.TABLE_NAME_OUTPUT)

    def kafka_config(self) -> dict[str, Any]:
        settings = Settings(kafka_bootstrap_servers=self.bootstrap, kafka_auth="none" if self.local else "iam")
        config = {k: v for k, v in producer_config(settings).items()
                  if k in ("bootstrap.servers", "security.protocol", "sasl.mechanisms", "oauth_cb")}
        return config

    def invoker(self, service: str, handler: catalog.HandlerSpec) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Run one batch through the handler exactly as its mapping would."""
        if self.local:
            settings = naming.function_settings(service, handler.name, bootstrap_servers=self.bootstrap,
                                                dlq_url=self.queue_url(service, handler.name))
            function = entry_points.consumer(service, handler)

            def invoke_local(event: dict[str, Any]) -> dict[str, Any]:
                with override_settings(settings):
                    return function(event, LocalLambdaContext(function_name=f"{service}-{handler.name}"))

            return invoke_local
        return self._lambda(names.function(self.prefix, service, names.construct(handler.entry)))

    def _lambda(self, name: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def invoke_lambda(event: dict[str, Any]) -> dict[str, Any]:
            answer = self.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
            payload: dict[str, Any] = json.loads(answer["Payload"].read() or b"{}")
            if answer.get("FunctionError"):
                raise RuntimeError(f"{name} failed: {payload}")
            return payload

        return invoke_lambda

    def api(self, service: str, method: str, path: str) -> tuple[int, Any]:
        """Call a service's API function as the operator (an admin), as API Gateway would."""
        event = http_event(method, path, claims=claims_for("ops", admin=True))
        if self.local:
            with override_settings(naming.function_settings(service, bootstrap_servers=self.bootstrap)):
                response = entry_points.api(service)(event, LocalLambdaContext(function_name=f"{service}-api"))
        else:
            response = self._lambda(names.function(self.prefix, service, names.API_FUNCTION))(event)
        return int(response["statusCode"]), json.loads(response.get("body") or "null")


def local_api_url() -> str:
    return f"http://127.0.0.1:{int(os.environ.get('SHOPSTREAM_LOCAL_API_PORT', '8000'))}"


def local_console_token() -> str | None:
    try:
        return naming.CONSOLE_TOKEN_FILE.read_text().strip() or None
    except OSError:
        return None


def local_trace_export() -> dict[str, str]:
    """Where handlers run by this process (replay, redrive) send their spans: the running local runtime's
    collector (local/traces.py), behind its console token. Nothing when no make local runs here."""
    token = local_console_token()
    if token is None:
        return {}
    return {tracing.EXPORT_ENV: f"{local_api_url()}/console/api/traces",
            tracing.HEADERS_ENV: f"Authorization=Bearer {token}"}


RELAY = names.RELAY  # ``<service>.relay``: the service's outbox relay, whose failure queue holds stream batches


def find_handler(ref: str) -> tuple[str, catalog.HandlerSpec]:
    service, _, name = ref.partition(".")
    return service, catalog.service(service).handler(name)


def all_queues() -> list[str]:
    """Every dead-letter queue: each handler's, and each service's relay failure queue."""
    return [*(f"{s.name}.{h.name}" for s in catalog.SERVICES for h in s.handlers),
            *(f"{s.name}.{RELAY}" for s in catalog.SERVICES if s.publishes)]


# --- replay ---------------------------------------------------------------------------------
def retention_gaps(starts: dict[int, int | None], logs: dict[int, tuple[int, int]]) -> dict[int, int]:
    """Partitions whose asked-for start lies before the first record the broker still holds, with that first
    offset. ``starts``: an offset asked for, or None where the start was found by time and landed on the log's
    first record, or after its end with nothing left (records removed before may have come after that time);
    ``logs``: (low, high) watermarks."""
    gaps = {}
    for partition, start in starts.items():
        low = logs[partition][0]
        if low > 0 and (start is None or start < low):
            gaps[partition] = low
    return gaps


def replay(target: Target, ref: str, *, from_timestamp: str | None, from_offsets: str | None,
           idle_seconds: float = 3.0, out=print) -> int:
    """Re-consume a topic into one handler through a fresh consumer group: the records each partition held when
    the replay began, from the start asked for. A partition is done once it has passed the end it had then and
    either a poll finds nothing more or a record written after the replay began comes (the live mapping's: not
    replayed); the end alone does not finish it, since a broker may report less than it holds (Tansu answers a
    partition's end as its last record batch's first offset + 1). Nothing for ``idle_seconds`` after the last
    invocation ends it too. Exit 1 when a record reported failed or an invocation failed, the replay stopped
    short (it prints the --from-offsets to go on from), or what was asked for is past the topic's retention (the
    audit archive has it)."""
    service, handler = find_handler(ref)
    topic = catalog.topic(handler.topic)
    group = f"{catalog.consumer_group_id(service, handler.name)}-replay-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({**target.kafka_config(), "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "latest"})
    began_ms = int(time.time() * 1000)
    numbers = partition_numbers(consumer, topic.name)
    logs = {p: consumer.get_watermark_offsets(TopicPartition(topic.name, p), timeout=10) for p in numbers}
    # the start asked for, per partition (None: found by time on the log's first record or past a log now empty);
    # from the beginning means from the first record held: nothing asked for is missing
    asked: dict[int, int | None] = {p: logs[p][0] for p in numbers}
    if from_timestamp:
        millis = int(datetime.fromisoformat(from_timestamp.replace("Z", "+00:00")).timestamp() * 1000)
        found = consumer.offsets_for_times([TopicPartition(topic.name, p, millis) for p in numbers], timeout=10)
        asked = {tp.partition: (None if logs[tp.partition][0] == logs[tp.partition][1] else logs[tp.partition][1])
                 if tp.offset == OFFSET_END or tp.offset < 0  # nothing at or after the time (or nothing held)
                 else None if tp.offset == logs[tp.partition][0] else tp.offset for tp in found}
    elif from_offsets:
        starts: dict[int, int] = {}
        for pair in from_offsets.split(","):
            partition_text, _, offset_text = pair.partition(":")
            starts[int(partition_text)] = int(offset_text)
        asked = {p: starts.get(p, logs[p][0]) for p in numbers}
    # Where each partition starts (never below what it holds) and how far it has got. A start past the end is out
    # of range: the consumer then goes to the end (auto.offset.reset latest), where only live records come.
    reached = {p: max(logs[p][0] if start is None else start, logs[p][0]) for p, start in asked.items()}
    consumer.assign([TopicPartition(topic.name, p, reached[p]) for p in numbers])
    invoke = target.invoker(service, handler)
    replayed, failed, last = 0, 0, time.monotonic()
    live: set[int] = set()  # partitions past their end whose next record came after the replay began
    error = ""
    try:
        # ``last`` is set after each invocation: a slow one (a cold start, provider calls) is not idleness.
        while time.monotonic() - last < idle_seconds and len(live) < len(numbers):
            messages = [m for m in consumer.consume(handler.batch_size, 0.5) if m.error() is None]
            taken = []
            for message in messages:
                partition = message.partition() or 0
                if partition in live:
                    continue
                if (message.offset() or 0) >= logs[partition][1] and message.timestamp()[1] > began_ms:
                    live.add(partition)
                    consumer.pause([TopicPartition(topic.name, partition)])
                    continue
                taken.append(message)
            if not taken:
                if not messages and all(reached[p] >= logs[p][1] for p in numbers):
                    break
                continue
            event = msk_event([redelivered(msk_record_of(m), "replay") for m in taken])
            try:
                response = invoke(event)
            except Exception as exc:  # the function failed (every record, or the invocation): stop here
                error = f"{type(exc).__name__}: {str(exc)[:200]}"
                break
            failed += len(response.get("batchItemFailures", []))
            replayed += len(taken)
            for message in taken:
                partition = message.partition() or 0
                reached[partition] = max(reached[partition], (message.offset() or 0) + 1)
            last = time.monotonic()
    finally:
        consumer.close()
    out(f"replayed {replayed} record(s) of {topic.name} into {ref} (group {group}); {failed} reported failed")
    if error:
        out(f"stopped: an invocation failed ({error}); nothing after it was replayed")
    short = {p for p in numbers if reached[p] < logs[p][1]}
    if error or short:
        out(f"stopped short of the end of {', '.join(f'[{p}] at {reached[p]} of {logs[p][1]}' for p in sorted(short))}"
            if short else "stopped short")
        out("go on with: --from-offsets " + ",".join(f"{p}:{reached[p]}" for p in numbers))
    gaps = retention_gaps(asked, logs)
    bucket = target.archive_bucket()
    for partition, first in sorted(gaps.items()):
        out(f"past retention: {topic.name}[{partition}] now starts at offset {first}; the records asked for before "
            f"it were not replayed: they are in the audit archive, s3://{bucket}/{topic.name}/<yyyy>/<mm>/<dd>/"
            f"{partition:04d}-*.jsonl")
    return 0 if not (failed or error or short or gaps) else 1


# --- dead letters ---------------------------------------------------------------------------
# A dead-letter queue holds three kinds of message: a poison record, carried whole (shopstream/dlq.py); an S3
# notification of a batch a mapping gave up on, whose invocation record (metadata and the records themselves)
# the service's failed-batch bucket keeps (shopstream/failed_batches.py); and, from before the mappings wrote
# to S3, an on-failure record with coordinates only (a topic's offsets, a stream's window). A message is
# deleted only once every record it stands for was handled; one that names records that cannot be found any
# more is kept, and the command says what is missing and exits non-zero.
@dataclass
class Letter:
    """One dead-letter message, read: what it stands for and what of it cannot be found."""

    message: dict[str, Any]
    body: dict[str, Any]
    record: dict[str, Any] | None  # the poison message, or the mapping's invocation record (stored or carried)
    stored: list[tuple[str, str]]  # the S3 objects that keep it (bucket, key)
    missing: str | None = None

    @property
    def message_id(self) -> str:
        return str(self.message["MessageId"])

    def describe(self) -> str:
        if self.record is None:
            return f"stored  {' '.join(f's3://{b}/{k}' for b, k in self.stored)}"
        return ("stored  " if self.stored else "") + _describe(self.record)


def _dlq_messages(target: Target, service: str, handler: str) -> list[dict[str, Any]]:
    sqs, url, seen = target.client("sqs"), target.queue_url(service, handler), {}
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30,
                                  AttributeNames=["SentTimestamp"])
        for message in got.get("Messages", []):
            if failed_batches.is_test_event(json.loads(message["Body"])):
                # S3's greeting when the bucket's notifications were configured: not a dead letter.
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                continue
            seen[message["MessageId"]] = message
        if not got.get("Messages"):
            break
    return list(seen.values())


def _letters(target: Target, service: str, handler: str) -> list[Letter]:
    return [_read(target, message) for message in _dlq_messages(target, service, handler)]


def _read(target: Target, message: dict[str, Any]) -> Letter:
    body = json.loads(message["Body"])
    stored = failed_batches.stored_objects(body)
    if not stored:
        return Letter(message, body, body, [])
    s3, records, gone = target.client("s3"), [], []
    for bucket, key in stored:
        try:
            records.append(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        except s3.exceptions.NoSuchKey:
            gone.append(f"s3://{bucket}/{key}")
    missing = f"the stored batch {', '.join(gone)} is gone (expired or deleted)" if gone else None
    return Letter(message, body, records[0] if len(records) == 1 and not gone else None, stored, missing)


def _describe(body: dict[str, Any]) -> str:
    if "DDBStreamBatchInfo" in body:
        info = body["DDBStreamBatchInfo"]
        condition = body.get("requestContext", {}).get("condition", "?")
        return (f"relay   {condition:<20} {info.get('batchSize')} stream record(s) "
                f"{info.get('approximateArrivalOfFirstRecord')}..{info.get('approximateArrivalOfLastRecord')}")
    if body.get("kind") == "poison":
        return (f"poison  {body['reason']:<20} {body['topic']}[{body['partition']}]@{body['offset']}  "
                f"{body['detail'][:80]}")
    info = body.get("KafkaBatchInfo", {})
    return (f"retries {body.get('requestContext', {}).get('condition', '?'):<20} {info.get('topic')}"
            f"[{info.get('partition')}]@{info.get('firstOffset')}..{info.get('lastOffset')}")


def _release(target: Target, service: str, handler: str, messages: list[dict[str, Any]]) -> None:
    sqs, url = target.client("sqs"), target.queue_url(service, handler)
    for message in messages:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def _done_with(target: Target, service: str, handler: str, letter: Letter) -> None:
    """Every record of the letter was handled: the message goes, then the objects that kept its records (the
    other order could leave a message pointing at nothing; an object left by a crash here just expires)."""
    target.client("sqs").delete_message(QueueUrl=target.queue_url(service, handler),
                                        ReceiptHandle=letter.message["ReceiptHandle"])
    for bucket, key in letter.stored:
        target.client("s3").delete_object(Bucket=bucket, Key=key)


def dlq_list(target: Target, ref: str | None, out=print) -> int:
    total = 0
    for each in [ref] if ref else all_queues():
        service, _, handler = each.partition(".")
        letters = _letters(target, service, handler)
        for letter in letters:
            # The message's id is what `dlq discard --message-id` and `dlq redrive --message-id` take.
            out(f"{each:<36} {letter.message_id}  {letter.describe()}"
                f"{f'  MISSING: {letter.missing}' if letter.missing else ''}")
        _release(target, service, handler, [letter.message for letter in letters])
        total += len(letters)
    out(f"{total} message(s)")
    return 0


def _records_of(target: Target, letter: Letter) -> tuple[list[dict[str, Any]], str | None]:
    """The Kafka records a letter stands for, and what of them cannot be found (None: all of them)."""
    body = letter.record
    if letter.missing or body is None:
        return [], letter.missing or "no invocation record"
    if body.get("kind") == "poison":
        def raw(value: str | None) -> bytes | None:
            return base64.b64decode(value) if value is not None else None

        return [msk_record(topic=body["topic"], partition=body["partition"], offset=body["offset"],
                           key=raw(body["key"]), value=raw(body["value"]),
                           headers=[(k, raw(v) or b"") for k, v in body.get("headers", {}).items()],
                           timestamp_ms=body.get("timestamp") or 0)], None
    info = body["KafkaBatchInfo"]
    if letter.stored or failed_batches.payload(body) is not None:
        records = failed_batches.kafka_records(body)
        named = failed_batches.named_count(body)
        return records, (f"{named - len(records)} of the {named} records it names are not in it"
                         if len(records) < named else None)
    return _read_back(target, info)


def _read_back(target: Target, info: dict[str, Any], seconds: float = 30) -> tuple[list[dict[str, Any]], str | None]:
    """An on-failure record with offsets only (written before the mappings kept their records in S3): the
    records read back from the topic, all of first..last or it says which are gone (past the topic's
    retention) or were not read in time."""
    first, last = int(info["firstOffset"]), int(info["lastOffset"])
    consumer = Consumer({**target.kafka_config(), "group.id": f"redrive-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(info["topic"], info["partition"], first)])
    found: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and len(found) < last - first + 1:
            for m in consumer.consume(100, 0.5):
                if m.error() is None and first <= (m.offset() or 0) <= last:
                    found[m.offset() or 0] = msk_record_of(m)
    finally:
        consumer.close()
    absent = [o for o in range(first, last + 1) if o not in found]
    missing = (f"offsets {absent[0]}..{absent[-1]} ({len(absent)} record(s)) could not be read back from "
               f"{info['topic']}[{info['partition']}] (past its retention?)") if absent else None
    return [found[o] for o in sorted(found)], missing


def _relay_records(letter: Letter) -> tuple[list[Any], str | None]:
    """The outbox events a relay's failure letter stands for: from the stored stream records, or (a record
    with coordinates only) from the outbox items the table still holds in the batch's window."""
    body = letter.record
    if letter.missing or body is None:
        return [], letter.missing or "no invocation record"
    named = failed_batches.named_count(body)
    if letter.stored or failed_batches.payload(body) is not None:
        records = failed_batches.stream_records(body)
        # Where direct publish is on, the batch also holds the deletes of items their function published: those
        # items are not published again, and no delete counts as an event.
        removed = {(r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records
                   if r.get("eventName") == "REMOVE" and "pk" in r.get("dynamodb", {}).get("Keys", {})}
        inserts = [r.get("dynamodb", {}).get("NewImage") or {} for r in records if r.get("eventName") != "REMOVE"]
        found = [stored_record(image) for image in inserts
                 if (image.get("pk", {}).get("S"), image.get("sk", {}).get("S")) not in removed]
        events = [event for event in found if event is not None]
        named = len(found) if records else named
    else:
        events = [record_of_item(item) for item in outbox_items_between(*failure_window(body))]
    return events, (f"{named - len(events)} of the {named} events it names were not found"
                    f"{'' if letter.stored else ' in the outbox (expired?)'}" if len(events) < named else None)


def relay_redrive(target: Target, service: str, out=print, only: set[str] | None = None) -> int:
    """Publish again the outbox events of each batch the relay gave up on (the stored stream records), then
    delete the message. Consumers drop what they already have, by eventId."""
    settings = Settings(service=service, table_name=target.table(service), kafka_bootstrap_servers=target.bootstrap,
                        kafka_auth="none" if target.local else "iam")
    redriven, kept = 0, 0
    with override_settings(settings):
        for letter in _letters(target, service, RELAY):
            if only is not None and letter.message_id not in only:
                _release(target, service, RELAY, [letter.message])
                continue
            events, missing = _relay_records(letter)
            if missing:
                kept += 1
                _release(target, service, RELAY, [letter.message])
                out(f"kept     {letter.describe()}: {missing}; nothing was published, the message stays")
                continue
            try:
                published = outbox.republish(events)
            except Exception as exc:  # the broker refused: the message stays for the next attempt
                kept += 1
                _release(target, service, RELAY, [letter.message])
                out(f"kept     {letter.describe()}: publishing failed ({type(exc).__name__}: {str(exc)[:200]})")
                continue
            _done_with(target, service, RELAY, letter)
            redriven += 1
            out(f"redriven {letter.describe()}: {published} outbox event(s) published again")
    out(f"{redriven} relay batch(es) redriven, {kept} kept")
    return 0 if not kept else 1


def dlq_redrive(target: Target, ref: str, out=print, only: set[str] | None = None) -> int:
    """Feed each DLQ message (or only those with the given message ids) back to its handler; delete it (and
    the object that kept its records) once the handler took every record."""
    if ref.endswith(f".{RELAY}"):
        return relay_redrive(target, ref.removesuffix(f".{RELAY}"), out, only)
    service, handler = find_handler(ref)
    invoke = target.invoker(service, handler)
    redriven, kept = 0, 0
    for letter in _letters(target, service, handler.name):
        if only is not None and letter.message_id not in only:
            _release(target, service, handler.name, [letter.message])
            continue
        records, missing = _records_of(target, letter)
        if missing:
            kept += 1
            out(f"kept     {letter.describe()}  ({missing}; nothing was redriven, the message stays)")
            _release(target, service, handler.name, [letter.message])
            continue
        try:
            response = invoke(msk_event([redelivered(record, "redrive") for record in records]))
        except Exception as exc:  # a function error (every record failed): Lambda would retry the whole batch
            response = {"batchItemFailures": [{"error": f"{type(exc).__name__}: {str(exc)[:200]}"}]}
        if response.get("batchItemFailures"):
            kept += 1
            out(f"kept     {letter.describe()}  (still failing)")
            _release(target, service, handler.name, [letter.message])
            continue
        # Taken: applied, or dead-lettered anew with a fresh reason if it is still poison.
        _done_with(target, service, handler.name, letter)
        redriven += 1
        out(f"redriven {letter.describe()}")
    out(f"{redriven} redriven, {kept} kept  (a record that is still poison is dead-lettered again, afresh)")
    return 0 if not kept else 1


def dlq_discard(target: Target, ref: str, message_ids: set[str], out=print) -> int:
    """Delete the given messages from a dead-letter queue, and the objects that kept their records (after
    reading them: nothing is redriven)."""
    service, _, handler = ref.partition(".")
    discarded = 0
    for letter in _letters(target, service, handler):
        if letter.message_id in message_ids:
            _done_with(target, service, handler, letter)
            discarded += 1
            out(f"discarded {letter.describe()}")
        else:
            _release(target, service, handler, [letter.message])
    out(f"{discarded} discarded")
    return 0 if discarded == len(message_ids) else 1


def dlq_peek(target: Target, ref: str) -> list[dict[str, Any]]:
    """The messages of one queue, decoded (for the console): id, summary, body, raw value as text or hex."""
    service, _, handler = ref.partition(".")
    letters = _letters(target, service, handler)
    _release(target, service, handler, [letter.message for letter in letters])
    decoded = []
    for letter in letters:
        body = letter.record if letter.record is not None else letter.body
        entry: dict[str, Any] = {"messageId": letter.message_id, "summary": letter.describe().strip(), "body": body,
                                 "sentAt": int(letter.message.get("Attributes", {}).get("SentTimestamp", 0))}
        if letter.missing:
            entry["missing"] = letter.missing
        if body.get("kind") == "poison":
            entry["value"] = readable(base64.b64decode(body["value"]) if body.get("value") is not None else None)
            entry["key"] = readable(base64.b64decode(body["key"]) if body.get("key") is not None else None)
        elif "KafkaBatchInfo" in body and failed_batches.payload(body) is not None:
            records = failed_batches.kafka_records(body)
            entry["records"] = len(records)
            if records:  # the first of them, as a poison message shows its one record
                value, key = records[0].get("value"), records[0].get("key")
                entry["value"] = readable(base64.b64decode(value) if value is not None else None)
                entry["key"] = readable(base64.b64decode(key) if key is not None else None)
        decoded.append(entry)
    return decoded


def readable(raw: bytes | None) -> dict[str, Any]:
    """Bytes as UTF-8 text when they are, else as hex."""
    if raw is None:
        return {"none": True}
    try:
        return {"text": raw.decode("utf-8"), "bytes": len(raw)}
    except UnicodeDecodeError:
        return {"hex": raw.hex(" "), "bytes": len(raw)}


# --- tail and produce -----------------------------------------------------------------------
def describe_record(topic: str | None, partition: int | None, offset: int | None, key: bytes | None,
                    value: bytes | None) -> str:
    """One record as text: the envelope's fields and data when it is one, else its bytes."""
    where = f"{topic}[{partition}]@{offset} key={readable(key).get('text', key.hex() if key else None)}"
    try:
        envelope = json.loads(value or b"")
        if not isinstance(envelope, dict) or "eventType" not in envelope:
            raise ValueError("not an envelope")
    except (ValueError, UnicodeDecodeError):
        shown = readable(value)
        return f"{where}  NOT AN ENVELOPE: {shown.get('text', shown.get('hex', ''))[:500]}"
    head = (f"{where}  {envelope.get('eventType')} {envelope.get('eventVersion')}  {envelope.get('timestamp')}  "
            f"{envelope.get('source')}  corr={envelope.get('correlationId')}  cause={envelope.get('causationId')}  "
            f"id={envelope.get('eventId')}")
    return f"{head}\n    {json.dumps(envelope.get('data'), separators=(',', ':'))}"


def tail(target: Target, topic_name: str, *, follow: bool = False, key: str | None = None,
         idle_seconds: float = 2.0, out=print) -> int:
    """Print the topic's records from the beginning (every partition), decoded; ``--follow`` keeps going."""
    topic = catalog.topic(topic_name)
    consumer = Consumer({**target.kafka_config(), "group.id": f"ops-tail-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic.name, p, OFFSET_BEGINNING) for p in partition_numbers(consumer, topic.name)])
    shown, last = 0, time.monotonic()
    wanted = key.encode() if key is not None else None
    try:
        while follow or time.monotonic() - last < idle_seconds:
            messages = [m for m in consumer.consume(500, 0.5) if m.error() is None]
            if messages:
                last = time.monotonic()
            for m in sorted(messages, key=lambda m: (m.timestamp()[1], m.partition(), m.offset())):
                if wanted is not None and m.key() != wanted:
                    continue
                out(describe_record(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
                shown += 1
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    out(f"{shown} record(s) of {topic.name}{f' with key {key}' if key is not None else ''}")
    return 0


def validated_records(topic_name: str, text: str) -> list[Any]:
    """The Kafka records for a file of envelopes (one JSON object, or an array of them), each checked as
    a consumer would check it (``shopstream.consumer.parse_record``): a ValueError names what is wrong."""
    catalog.topic(topic_name)  # KeyError for an unknown topic
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    records = []
    for n, body in enumerate(loaded if isinstance(loaded, list) else [loaded]):
        try:
            envelope = EventEnvelope.model_validate(body)
            spec = catalog.find_event(envelope.event_type, envelope.event_version)
            if spec is not None and spec.topic != topic_name:
                raise ValueError(f"{envelope.event_type} belongs on {spec.topic}, not {topic_name}")
            record = to_record(envelope) if spec is not None else None
            incoming = IncomingRecord(topic=topic_name, partition=0, offset=0, timestamp=None,
                                      key=record.key.encode() if record else None,
                                      value=json.dumps(body).encode(), headers={}, raw={})
            parse_record(incoming, frozenset({envelope.event_type}))
        except PoisonRecord as exc:
            raise ValueError(f"envelope {n}: {exc.reason}: {exc.detail}") from exc
        except (ValidationError, ValueError) as exc:
            raise ValueError(f"envelope {n}: {exc}") from exc
        assert record is not None
        records.append(record)
    return records


def produce(target: Target, topic_name: str, path: str, out=print) -> int:
    """Send the envelopes of a file to a topic, keyed and with headers as the outbox relay would."""
    try:
        with open(path) as handle:
            records = validated_records(topic_name, handle.read())
    except (OSError, KeyError, ValueError) as exc:
        out(f"refused: {exc}")
        return 2
    producer = Producer({**target.kafka_config(), "enable.idempotence": True, "acks": "all"})
    delivered: list[str] = []

    def report(error: Any, message: Any) -> None:
        delivered.append(f"error {error}" if error else
                         f"produced to {message.topic()}[{message.partition()}]@{message.offset()}")

    for record in records:
        producer.produce(record.topic, key=record.key.encode(), value=record.value, headers=list(record.headers),
                         on_delivery=report)
    producer.flush(30)
    for line in delivered:
        out(line)
    return 0 if len(delivered) == len(records) and not any(d.startswith("error") for d in delivered) else 1


# --- trace ------------------------------------------------------------------------------------
def trace(target: Target, ref: str, mermaid_path: str | None, out=print,
          waterfall: Callable[[str], dict[str, Any] | None] | None = None) -> int:
    """The audit service's trail of a correlation id or an order's (its API puts causes before their effects),
    then, locally, the order's trace as a waterfall from the running runtime's collector (local/traces.py)."""
    correlation_id = ref
    status, body = target.api("audit", "GET", f"/audit/{ref}")
    if status != 200:
        found, order = target.api("order", "GET", f"/orders/{ref}")
        if found == 200 and order.get("correlationId"):
            correlation_id = order["correlationId"]
            status, body = target.api("audit", "GET", f"/audit/{correlation_id}")
    events = body.get("events", []) if status == 200 else []
    if not events:
        out(f"no events with correlation id {correlation_id}")
        return 1
    code = _trail(events, mermaid_path, out)
    if target.local or waterfall is not None:
        _waterfall(ref, out, waterfall or local_waterfall)
    else:
        out("spans: in CloudWatch (Transaction Search, the X-Ray trace map); the order's trace id is the "
            "X-Trace-Id header of GET /orders/{orderId}")
    return code


def local_waterfall(ref: str) -> dict[str, Any] | None:
    """The running make local's waterfall of an order (its console API, with this run's console token)."""
    token = local_console_token()
    if token is None:
        return None
    request = urllib.request.Request(f"{local_api_url()}/console/api/trace?q={urllib.parse.quote(ref)}",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _waterfall(ref: str, out: Callable[[str], Any], fetch: Callable[[str], dict[str, Any] | None]) -> None:
    answer = fetch(ref)
    if not answer or not answer.get("rows"):
        out("no trace collected for it (is make local running, and did it run the order?)")
        return
    out(f"\ntrace {answer['traceId']} ({answer['spans']} spans)")
    for line in answer.get("text") or []:
        out(line)
    for linked in answer.get("linked") or []:
        out(f"\nlinked trace {linked['traceId']} (a record of this trace delivered again)")
        for line in render(linked["rows"]):
            out(line)


def _trail(events: list[dict[str, Any]], mermaid_path: str | None, out: Callable[[str], Any]) -> int:
    depth: dict[str, int] = {}
    for e in events:
        depth[e["eventId"]] = depth.get(e.get("causationId") or "", -1) + 1
        out(f"{'   ' * depth[e['eventId']]}{'└─ ' if depth[e['eventId']] else ''}{e['eventType']}  "
            f"[{e['source']}]  {e['timestamp']}  {e['eventId'][:8]}")
    if mermaid_path:
        with open(mermaid_path, "w") as handle:
            handle.write(mermaid(events))
        out(f"sequence diagram written to {mermaid_path}")
    return 0


def mermaid(events: list[dict[str, Any]]) -> str:
    by_id = {e["eventId"]: e for e in events}
    participants = list(dict.fromkeys(["client", *(e["source"] for e in events)]))
    lines = ["sequenceDiagram", *(f"    participant {p.replace('-service', '')}" for p in participants)]
    for e in events:
        cause = by_id.get(e.get("causationId") or "")
        sender = (cause["source"] if cause else "client").replace("-service", "")
        lines.append(f"    {sender}->>{e['source'].replace('-service', '')}: {e['eventType']}")
    return "\n".join(lines) + "\n"
