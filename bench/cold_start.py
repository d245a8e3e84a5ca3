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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    from local.http_events import claims_for, http_event
    from shopstream import catalog, names

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
    from shopstream import catalog

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


if __name__ == "__main__":
    only = sys.argv[1:]  # function names (service.entry) to measure; all when none are given
    rows = [measure(f) for f in functions() if not only or f.name in only]
    print(report(rows))
    print(json.dumps(rows))
