"""Cold start of every Lambda function: import + first invocation, median of fresh interpreters,
next to the floor measured in the same run (import boto3 + the clients that function needs).

Each function runs with the environment the catalog gives it and is invoked once with an event it
answers without leaving the process, so what the first invocation builds is counted too (the
idempotency layer, Powertools' batch processor, the envelope model, the resolver's routing):
- a consumer: a batch of one valid event of a type it does not take (parsed, validated, skipped);
- an API: an authenticated GET of a path no route matches (Powertools answers 404);
- a schedule: not invoked (every run reads its table), import only.
The function's clients are made as the floor makes them (through shopstream.aws, which caches
them), before the probe, since a first invocation that does its work makes them. Floor and function runs alternate, so a
drift of the machine's speed reaches both. Functions run as on Lambda (``AWS_LAMBDA_FUNCTION_NAME``
set), so they pause garbage collection through their init (shopstream/coldstart.py); the floor is
also measured with collection paused the same way and printed beside, for an even comparison.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local.http_events import claims_for, http_event
from shopstream import catalog, names

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_COLD_RUNS", 7))
TARGET = 1.25

FLOOR = """
import time; t = time.perf_counter()
import boto3
s = boto3.session.Session()
clients = [s.client(n) for n in {clients!r}]
print(time.perf_counter() - t)
"""

# The same floor with collection paused as the functions pause it on Lambda (shopstream/coldstart.py):
# printed beside the floor, so that what the pause saves is not mistaken for what the code costs.
FLOOR_PAUSED = """
import gc; gc.disable()
import time; t = time.perf_counter()
import boto3
s = boto3.session.Session()
clients = [s.client(n) for n in {clients!r}]
gc.freeze(); gc.enable()
print(time.perf_counter() - t)
"""

FUNCTION = """
event = {event!r}
import time; t = time.perf_counter()
import importlib
function = getattr(importlib.import_module({module!r}), {attribute!r})
from shopstream import aws
for name in {clients!r}:  # what a first invocation that does its work makes (the probe below does not)
    aws.client(name)
if event is not None:
    function(event, None)
print(time.perf_counter() - t)
"""

# What the clients of a consumer's needs are (catalog.HandlerSpec.needs).
NEED_CLIENTS = {"audit-archive": "s3", "email": "sesv2", "personal-seal": "kms", "personal-open": "kms",
                "personal-check": "dynamodb", "customer-keys": "kms", "identity": "cognito-idp"}


@dataclass(frozen=True)
class Function:
    name: str  # service.entry
    handler: str  # Lambda's handler setting: module.attribute
    clients: tuple[str, ...]
    environment: dict[str, str]
    event: dict[str, Any] | None  # the first invocation's event (None: import only)


def functions() -> list[Function]:
    """Every function of the catalog: the API, each consumer and each schedule of every service."""
    def environment(spec: catalog.ServiceSpec, handler: catalog.HandlerSpec | None = None) -> dict[str, str]:
        return {**catalog.function_environment(
            spec, environment="bench", table_name="t", idempotency_table_name="t-idempotency",
            bootstrap_servers="127.0.0.1:9092", kafka_auth="none", handler=handler,
            dlq_url="https://sqs.eu-west-1.amazonaws.com/000000000000/dlq" if handler else None,
            audit_archive_bucket="archive", notification_channel="ses"),
            "POWERTOOLS_METRICS_FUNCTION_NAME": handler.entry if handler else "bench"}

    found = []
    for spec in catalog.SERVICES:
        if spec.routes:
            probe = http_event("GET", "/cold-start-probe", claims=claims_for("bench"))
            found.append(Function(f"{spec.name}.api", names.entry_point(spec.name, names.API_MODULE, spec.api_entry),
                                  tuple(dict.fromkeys(("dynamodb", *(NEED_CLIENTS[n] for n in spec.api_needs)))),
                                  environment(spec), probe))
        for handler in spec.handlers:
            clients = tuple(dict.fromkeys(("dynamodb", "sqs", *(NEED_CLIENTS[n] for n in handler.needs))))
            found.append(Function(f"{spec.name}.{handler.entry}",
                                  names.entry_point(spec.name, names.CONSUMERS_MODULE, handler.entry), clients,
                                  environment(spec, handler), _skipped_batch(handler)))
        for schedule in spec.schedules:
            found.append(Function(f"{spec.name}.{schedule.entry}",
                                  names.entry_point(spec.name, names.SCHEDULES_MODULE, schedule.entry), ("dynamodb",),
                                  environment(spec), None))
    return found


def _skipped_batch(handler: Any) -> dict[str, Any]:
    """An ``aws:kafka`` batch of one valid event on the handler's topic of a type it does not take."""
    other = next(e for e in catalog.EVENTS if e.name not in handler.event_types)
    envelope = {"eventId": "6f1c1c3e-9a55-4c1e-8a36-0d5b8d9f0e01", "eventType": other.name, "eventVersion": "v1",
                "timestamp": "2026-11-29T10:00:00.000Z", "source": "bench-service", "correlationId": "cold-start",
                "causationId": None, "data": {}, "metadata": {"userId": None, "sessionId": None}}
    record = {"topic": handler.topic, "partition": 0, "offset": 0, "timestamp": 0, "timestampType": "CREATE_TIME",
              "key": base64.b64encode(b"k").decode(), "value": base64.b64encode(json.dumps(envelope).encode()).decode(),
              "headers": []}
    return {"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:eu-west-1:000000000000:cluster/bench/x",
            "bootstrapServers": "", "records": {f"{handler.topic}-0": [record]}}


# Both sides run from byte code, as boto3 does in Lambda's runtime: the warm-up run of each side
# compiles what it imports into this cache (PYTHONDONTWRITEBYTECODE, if set around the bench, would
# otherwise make every function run compile the project's sources while the floor's boto3 is compiled).
BYTECODE_CACHE = tempfile.mkdtemp(prefix="cold-start-pycache-")


def _run(code: str, environment: dict[str, str]) -> float:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}",
           "PYTHONPYCACHEPREFIX": BYTECODE_CACHE,
           "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_TRACE_DISABLED": "true", **environment}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    return float(out.stdout.strip().splitlines()[-1])


def measure(function: Function) -> dict[str, Any]:
    module, attribute = function.handler.rsplit(".", 1)
    floor_code = FLOOR.format(clients=list(function.clients))
    function_code = FUNCTION.format(module=module, attribute=attribute, event=function.event,
                                    clients=list(function.clients))
    paused_code = FLOOR_PAUSED.format(clients=list(function.clients))
    on_lambda = {**function.environment, "AWS_LAMBDA_FUNCTION_NAME": function.name.replace(".", "-")}
    _run(floor_code, function.environment), _run(function_code, on_lambda)  # warm-up: byte code, caches
    floors, colds, paused = [], [], []
    for _ in range(RUNS):
        floors.append(_run(floor_code, function.environment))
        colds.append(_run(function_code, on_lambda))
        paused.append(_run(paused_code, function.environment))
    floor, cold, floor_paused = statistics.median(floors), statistics.median(colds), statistics.median(paused)
    return {"function": function.name, "cold_ms": cold * 1000, "floor_ms": floor * 1000, "ratio": cold / floor,
            "floor_paused_ms": floor_paused * 1000, "ratio_paused": cold / floor_paused}


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| function | import + setup (ms) | floor (ms) | ratio | target ≤ 1.25 | floor, collection paused (ms) "
             "| ratio to it |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['function']} | {r['cold_ms']:.0f} | {r['floor_ms']:.0f} | {r['ratio']:.2f} | "
                     f"{'met' if r['ratio'] <= TARGET else 'not met'} | {r['floor_paused_ms']:.0f} | "
                     f"{r['ratio_paused']:.2f} |")
    met = sum(r["ratio"] <= TARGET for r in rows)
    lines.append(f"{met} of {len(rows)} functions within {TARGET}x the floor; median ratio "
                 f"{statistics.median(r['ratio'] for r in rows):.2f} (to the floor with collection paused too: "
                 f"{statistics.median(r['ratio_paused'] for r in rows):.2f}).")
    return "\n".join(lines)


# --- what tracing adds (issue 23: at most 10 ms) ------------------------------------------------------
TRACING_TARGET_MS = 10.0
# Functions whose probe makes a span: an API's request is traced whatever it answers (a consumer's probe, a
# record it skips, makes none: its first traced record costs what the "first span" row shows).
TRACED_FUNCTIONS = ("order.api", "catalog.api", "payment.api")

FIRST_SPAN = """
import time, boto3, pydantic, aws_lambda_powertools, urllib3  # what a function has loaded before its first span
from shopstream import aws, config
config.get_settings()  # read by then too
"x".encode("idna")  # so has its first AWS call (urllib3 checks host names with the IDNA codec: 3 ms of import)
t = time.perf_counter()
from shopstream import tracing
span = tracing.start("process order-events", kind="consumer",
                     parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
with tracing.activate(span):
    with tracing.span("commit"):
        pass
tracing.flush()
print(time.perf_counter() - t)
"""


class _Sink:
    """An OTLP/HTTP receiver on loopback that accepts everything (the export's round trip without a network)."""

    def __enter__(self) -> str:
        class Accept(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()


# FUNCTION, timed in two parts: the import (with the clients) and the first invocation. Tracing adds nothing to
# the first part (shopstream.tracing is imported either way and reads its configuration at the first span), so
# what it adds to a cold start is the difference in the second, measured without the import's noise (±30 ms
# on this machine, over a 10-ms target).
FUNCTION_SPLIT = """
event = {event!r}
import time; t = time.perf_counter()
import importlib
function = getattr(importlib.import_module({module!r}), {attribute!r})
from shopstream import aws
for name in {clients!r}:
    aws.client(name)
imported = time.perf_counter()
function(event, None)
print(imported - t, time.perf_counter() - imported)
"""


def _run_parts(code: str, environment: dict[str, str]) -> tuple[float, float]:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}",
           "PYTHONPYCACHEPREFIX": BYTECODE_CACHE, "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1",
           "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "POWERTOOLS_TRACE_DISABLED": "true", **environment}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    imported, invoked = out.stdout.strip().splitlines()[-1].split()
    return float(imported), float(invoked)


def measure_tracing(function: Function, endpoint: str) -> dict[str, Any]:
    """The function's cold start without and with tracing (every trace sampled, spans exported to ``endpoint``
    before the invocation returns): fresh interpreters, alternating; what tracing adds is the median of the
    pairs' differences in the first invocation."""
    module, attribute = function.handler.rsplit(".", 1)
    code = FUNCTION_SPLIT.format(module=module, attribute=attribute, event=function.event,
                                 clients=list(function.clients))
    on_lambda = {**function.environment, "AWS_LAMBDA_FUNCTION_NAME": function.name.replace(".", "-")}
    traced = {**on_lambda, "SHOPSTREAM_TRACE_EXPORT": endpoint, "SHOPSTREAM_TRACE_SAMPLE_RATE": "1"}
    _run_parts(code, on_lambda), _run_parts(code, traced)  # warm-up: byte code
    without, with_ = [], []
    for _ in range(RUNS):
        without.append(_run_parts(code, on_lambda))
        with_.append(_run_parts(code, traced))
    return {"function": function.name,
            "without_ms": statistics.median(sum(r) for r in without) * 1000,
            "with_ms": statistics.median(sum(r) for r in with_) * 1000,
            "invoke_without_ms": statistics.median(r[1] for r in without) * 1000,
            "invoke_with_ms": statistics.median(r[1] for r in with_) * 1000,
            "added_ms": statistics.median(w[1] - o[1] for o, w in zip(without, with_, strict=True)) * 1000,
            "import_added_ms": statistics.median(w[0] - o[0] for o, w in zip(without, with_, strict=True)) * 1000}


def measure_first_span(endpoint: str) -> float:
    environment = {"SHOPSTREAM_TRACE_EXPORT": endpoint, "SHOPSTREAM_SERVICE": "order"}
    _run(FIRST_SPAN, environment)
    return statistics.median(_run(FIRST_SPAN, environment) for _ in range(RUNS)) * 1000


def report_tracing(rows: list[dict[str, Any]], first_span_ms: float) -> str:
    lines = ["| function | cold start without / with tracing (ms) | first invocation without / with (ms) | "
             "added by tracing (ms) | target ≤ 10 ms |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['function']} | {r['without_ms']:.0f} / {r['with_ms']:.0f} | {r['invoke_without_ms']:.1f} "
                     f"/ {r['invoke_with_ms']:.1f} | {r['added_ms']:.1f} (import: {r['import_added_ms']:+.1f}) | "
                     f"{'met' if r['added_ms'] <= TRACING_TARGET_MS else 'not met'} |")
    lines.append(f"| first span in a loaded function (import, span, child, flush over loopback) | – | – | "
                 f"{first_span_ms:.1f} | {'met' if first_span_ms <= TRACING_TARGET_MS else 'not met'} |")
    return "\n".join(lines)


# --- what direct publish adds (issue 24: keep confluent_kafka out of the import path until the first publish) -----
# The direct publishers' cold start with the setting off and on: the same, since shopstream.direct and the Kafka
# client are imported by the first commit that publishes (shopstream.transaction), not at import.
FIRST_PUBLISH = """
import time, boto3, pydantic, aws_lambda_powertools  # what a function has loaded before its first commit
from shopstream import aws, config, outbox, transaction
config.get_settings()
t = time.perf_counter()
from shopstream import direct, publisher
publisher.get_publisher()  # confluent_kafka imported, the librdkafka client made (it connects in the background)
print(time.perf_counter() - t)
"""


def measure_direct(function: Function) -> dict[str, Any]:
    """The function's cold start (import and first invocation) without and with SHOPSTREAM_DIRECT_PUBLISH, pairs of
    fresh interpreters alternating; the difference is the median of the pairs'."""
    module, attribute = function.handler.rsplit(".", 1)
    code = FUNCTION.format(module=module, attribute=attribute, event=function.event, clients=list(function.clients))
    off = {**function.environment, "AWS_LAMBDA_FUNCTION_NAME": function.name.replace(".", "-")}
    on = {**off, "SHOPSTREAM_DIRECT_PUBLISH": "true"}
    _run(code, off), _run(code, on)  # warm-up: byte code
    pairs = [(_run(code, off), _run(code, on)) for _ in range(RUNS)]
    return {"function": function.name, "off_ms": statistics.median(p[0] for p in pairs) * 1000,
            "on_ms": statistics.median(p[1] for p in pairs) * 1000,
            "added_ms": statistics.median(p[1] - p[0] for p in pairs) * 1000}


def measure_first_publish() -> float:
    environment = {"SHOPSTREAM_SERVICE": "order", "SHOPSTREAM_DIRECT_PUBLISH": "true",
                   "SHOPSTREAM_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # nothing listens: no connection is waited for
    _run(FIRST_PUBLISH, environment)
    return statistics.median(_run(FIRST_PUBLISH, environment) for _ in range(RUNS)) * 1000


def report_direct(rows: list[dict[str, Any]], first_publish_ms: float) -> str:
    lines = ["| function | cold start, direct publish off / on (ms) | added by the setting (ms) |", "|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['function']} | {r['off_ms']:.0f} / {r['on_ms']:.0f} | {r['added_ms']:+.1f} |")
    lines.append(f"| first direct publish of a loaded function (import shopstream.direct and confluent_kafka, make the "
                 f"producer) | – | {first_publish_ms:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--direct-publish"]:
        from shopstream import catalog

        only = sys.argv[2:] or [ref.replace("-", "_") for ref in sorted(catalog.DIRECT_PUBLISHERS)]
        rows = [measure_direct(f) for f in functions() if f.name in only]
        print(report_direct(rows, measure_first_publish()))
        print(json.dumps(rows))
        sys.exit(0)
    if sys.argv[1:2] == ["--tracing"]:
        only = sys.argv[2:] or list(TRACED_FUNCTIONS)
        with _Sink() as endpoint:
            rows = [measure_tracing(f, endpoint) for f in functions() if f.name in only]
            print(report_tracing(rows, measure_first_span(endpoint)))
        print(json.dumps(rows))
        sys.exit(0)
    only = sys.argv[1:]  # function names (service.entry) to measure; all when none are given
    rows = [measure(f) for f in functions() if not only or f.name in only]
    print(report(rows))
    print(json.dumps(rows))
