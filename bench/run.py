"""``make bench``: every benchmark, written to bench/results.md with the machine, date and command."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from local.stack import LocalStack

RESULTS = Path(__file__).with_name("results.md")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    memory = ""
    if Path("/proc/meminfo").exists():
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 1024 / 1024:.0f} GiB"
    return (f"{os.cpu_count()} cores ({cpu}), {memory}, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def moto_request_ms(samples: int = 200) -> float:
    """Latency of one DynamoDB GetItem against the local moto server (what every local call costs)."""
    stack = LocalStack(external_bootstrap="unused:0")
    stack.log_dir.mkdir(exist_ok=True)
    stack._start_moto()
    try:
        dynamodb = stack.client("dynamodb")
        dynamodb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        started = time.perf_counter()
        for n in range(samples):
            dynamodb.get_item(TableName="t", Key={"pk": {"S": str(n)}})
        return (time.perf_counter() - started) / samples * 1000
    finally:
        stack.stop()


SECTIONS = [
    ("cold_start", "1. Cold start (median of fresh interpreters; target ≤ 1.25x the floor)"),
    ("cold_start_stages", "1b. Where a cold start's time goes, on top of the floor"),
    ("aws_calls", "2. AWS calls and DynamoDB capacity units per consumed event (100-record batches, realistic flow, "
                  "moto)"),
    ("consumer_cpu", "3. Per-record CPU of the consumer runtime (store and publisher faked)"),
    ("key_parallel", "3b. Key-ordered parallelism inside a batch (target ≥ 8x at 16 keys)"),
    ("hot_stock", "3c. One product everybody orders: its stock on counters (lost races per reservation)"),
    ("relay_rate", "4. Outbox relay rate into the local broker (target ratio ≥ 0.5)"),
    ("local_runtime", "5. The local runtime at interactive speed (idle settle; 1,000 orders from 10 clients; "
                      "10 clients placing orders and polling each until it settles)"),
]


def run_section(module: str) -> str:
    """Each benchmark in a fresh interpreter: no cached clients or patched modules leak between them."""
    out = subprocess.run([sys.executable, "-m", f"bench.{module}"], capture_output=True, text=True, timeout=3600)
    if out.returncode:
        raise SystemExit(f"bench.{module} failed:\n{out.stderr[-3000:]}")
    return "\n".join(line for line in out.stdout.splitlines()
                     if not line.startswith(("{", "[{", "%")) and line.strip())


def figure_key(figure: str) -> str:
    """A figure's name without its parameters ("sustained: 1000 orders ... at 5/s" -> "sustained")."""
    return re.split(r"[:(,]", figure, maxsplit=1)[0].strip()


def with_previous(body: str, previous: str, previous_date: str) -> str:
    """Each figure of a ``| figure | result | target |`` table beside the previous run's result."""
    before: dict[str, str] = {}
    for line in previous.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3 and cells[0] != "figure":
            before[figure_key(cells[0])] = cells[1]
    out = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| figure | result | target |"):
            out.append(f"| figure | result | previous run ({previous_date}) | target |")
        elif line.startswith("|---|---|---|"):
            out.append("|---|---|---|---|")
        elif line.startswith("| ") and len(cells) == 3:
            out.append(f"| {cells[0]} | {cells[1]} | {before.get(figure_key(cells[0]), '–')} | {cells[2]} |")
        else:
            out.append(line)
    return "\n".join(out)


def previous_section(text: str, number: str) -> str:
    """The body of section ``number`` ("5") in an earlier results.md, or ""."""
    match = re.search(rf"^## {re.escape(number)}\. .*?\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    return match.group(1) if match else ""


def main() -> int:
    previous = RESULTS.read_text() if RESULTS.exists() else ""
    previous_date = next((line.split(":", 1)[1].strip()[:16] for line in previous.splitlines()
                          if line.startswith("- date:")), "none")
    sections = []
    started = time.monotonic()
    for number, (module, title) in enumerate(SECTIONS, start=1):
        print(f"{number}/{len(SECTIONS) + 1} {module}", file=sys.stderr, flush=True)
        body = run_section(module)
        if module == "local_runtime":  # the figures a developer feels, against the last run's
            body = with_previous(body, previous_section(previous, title.split(".")[0]), previous_date)
        sections.append((title, body))
    print(f"{len(SECTIONS) + 1}/{len(SECTIONS) + 1} moto request latency", file=sys.stderr, flush=True)
    sections.append(("6. One DynamoDB request against the local moto server",
                     f"{moto_request_ms():.2f} ms per GetItem (mean of 200)"))
    text = ["# Benchmark results\n",
            f"- date: {datetime.now(UTC).isoformat(timespec='seconds')}",
            f"- machine: {machine()}",
            f"- command: `make bench` (took {time.monotonic() - started:.0f} s)",
            "- what the targets mean and what bounds each figure: docs/capacity.md\n"]
    for title, body in sections:
        text += [f"## {title}\n", body, ""]
    RESULTS.write_text("\n".join(text))
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
