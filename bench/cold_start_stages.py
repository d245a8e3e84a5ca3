"""Where a function's cold start goes above the floor: the same import + first invocation as
bench/cold_start.py, timed in stages inside each fresh interpreter (median of the runs).

Stages, each timed after the one before: the floor (boto3 and the function's clients), then the
libraries a function of that kind cannot run without (Powertools' batch module for a consumer,
loaded before pydantic as its consumers module does; pydantic; Powertools' event handler for an
API; Powertools' logging and metrics), then the entry module itself (shopstream, the service's
logic, the event models of its topics) and the first invocation (models built on first use, the
batch processor, the resolver's routing). ``python -m bench.cold_start_stages [service.entry ...]``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from typing import Any

from bench import cold_start
from bench.cold_start import RUNS, Function, functions

STAGED = """
event = {event!r}
import json, time
marks = [("start", time.perf_counter())]
import boto3
s = boto3.session.Session()
clients = [s.client(n) for n in {clients!r}]
marks.append(("floor", time.perf_counter()))
kind = {kind!r}
if kind == "consumer":
    import aws_lambda_powertools.utilities.batch
    marks.append(("powertools batch", time.perf_counter()))
import pydantic.main
marks.append(("pydantic", time.perf_counter()))
if kind == "api":
    import aws_lambda_powertools.event_handler
    marks.append(("powertools event handler", time.perf_counter()))
import aws_lambda_powertools.logging, aws_lambda_powertools.metrics
marks.append(("powertools logging, metrics", time.perf_counter()))
import importlib
function = getattr(importlib.import_module({module!r}), {attribute!r})
marks.append(("entry module", time.perf_counter()))
if event is not None:
    function(event, None)
    marks.append(("first invocation", time.perf_counter()))
print(json.dumps([(name, t - marks[i][1]) for i, (name, t) in enumerate(marks[1:])]))
"""


def measure(function: Function) -> dict[str, Any]:
    module, attribute = function.handler.rsplit(".", 1)
    code = STAGED.format(event=function.event, clients=list(function.clients), module=module, attribute=attribute,
                         kind={"consumers": "consumer", "api": "api"}.get(module.split(".")[1], "schedule"))
    _run_json(code, function.environment)  # warm-up: byte code
    runs = [_run_json(code, function.environment) for _ in range(RUNS)]
    stages = [name for name, _ in runs[0]]
    medians = {name: statistics.median(dict(r)[name] for r in runs) * 1000 for name in stages}
    return {"function": function.name, "stages_ms": medians}


def _run_json(code: str, environment: dict[str, str]) -> list[tuple[str, float]]:
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "PYTHONPATH": f"{cold_start.ROOT / 'layers/shopstream/python'}:{cold_start.ROOT / 'functions'}:"
                         f"{cold_start.ROOT}",
           "PYTHONPYCACHEPREFIX": cold_start.BYTECODE_CACHE, "AWS_REGION": "eu-west-1",
           "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
           "POWERTOOLS_TRACE_DISABLED": "true", **environment}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(out.stderr[-3000:])
    result: list[tuple[str, float]] = [tuple(x) for x in json.loads(out.stdout.strip().splitlines()[-1])]
    return result


def report(rows: list[dict[str, Any]]) -> str:
    lines = ["| function | stage | ms | share of the floor |", "|---|---|---|---|"]
    for row in rows:
        floor = row["stages_ms"]["floor"]
        for name, ms in row["stages_ms"].items():
            share = "" if name == "floor" else f"{ms / floor:.0%}"
            lines.append(f"| {row['function']} | {name} | {ms:.0f} | {share} |")
    return "\n".join(lines)


if __name__ == "__main__":
    only = sys.argv[1:] or ["order.inventory_outcomes", "order.api", "order.sweep_saga_timeouts"]
    rows = [measure(f) for f in functions() if f.name in only]
    print(report(rows))
    print(json.dumps(rows))
