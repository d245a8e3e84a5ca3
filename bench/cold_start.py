"""Cold start per function module: import + first-invocation setup, median of fresh interpreters,
next to the floor measured in the same run (import boto3 + the clients that function needs)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = int(os.environ.get("BENCH_COLD_RUNS", 7))

FLOOR = """
import time; t = time.perf_counter()
import boto3
s = boto3.session.Session()
clients = [s.client(n) for n in {clients!r}]
print(time.perf_counter() - t)
"""

FUNCTION = """
import time; t = time.perf_counter()
import importlib
module = importlib.import_module("{service}.handlers")
function = getattr(module, "{entry}")
if hasattr(function, "_setup"):
    function._setup()          # what the first invocation builds: idempotency layer, clients
else:
    from shopstream import aws
    for name in {clients!r}:
        aws.client(name)
print(time.perf_counter() - t)
"""


def _run(code: str) -> float:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'layers/shopstream/python'}:{ROOT / 'functions'}:{ROOT}",
           "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x",
           "AWS_SECRET_ACCESS_KEY": "x",
           "SHOPSTREAM_IDEMPOTENCY_TABLE_NAME": "t", "SHOPSTREAM_DLQ_URL": "http://q", "SHOPSTREAM_TABLE_NAME": "t",
           "POWERTOOLS_TRACE_DISABLED": "true"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def measure() -> list[dict]:
    from shopstream import catalog

    rows = []
    for spec in catalog.SERVICES:
        entries = [(h.entry, ["dynamodb", "sqs"]) for h in spec.handlers[:1]]
        if spec.routes:
            entries.append(("api", ["dynamodb"]))
        for entry, clients in entries:
            floor = statistics.median(_run(FLOOR.format(clients=clients)) for _ in range(RUNS))
            cold = statistics.median(_run(FUNCTION.format(service=spec.name, entry=entry, clients=clients))
                                     for _ in range(RUNS))
            rows.append({"function": f"{spec.name}.{entry}", "cold_ms": cold * 1000, "floor_ms": floor * 1000,
                         "ratio": cold / floor})
    return rows


def report(rows: list[dict]) -> str:
    lines = ["| function | import + setup (ms) | floor (ms) | ratio | target ≤ 1.25 |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['function']} | {r['cold_ms']:.0f} | {r['floor_ms']:.0f} | {r['ratio']:.2f} | "
                     f"{'met' if r['ratio'] <= 1.25 else 'not met'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    rows = measure()
    print(report(rows))
    print(json.dumps(rows))
