"""The local saga's hops from its traces (issue 23): orders placed one after another through ``make local``, each
order's trace read from the console, the duration of each kind of hop (API, commit, wait in the outbox, relay,
wait in the mapping, handler, provider call) and of the whole saga (POST to the shipment's creation) as medians
and p95s: what docs/capacity.md sets beside the AWS latency model."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import urllib.request
from pathlib import Path

from local.child import local_process
from local.client import Caller
from local.traces import hops

ORDERS = int(os.environ.get("BENCH_TRACE_ORDERS", 20))
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN: Caller = {"user": "ops", "admin": True}
HOPS = ("API request", "commit", "wait in the outbox", "relay publish", "wait in the mapping", "handler",
        "provider call")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def measure() -> dict[str, list[float]]:
    found: dict[str, list[float]] = {hop: [] for hop in (*HOPS, "saga: POST to shipment created")}
    with tempfile.TemporaryDirectory() as workdir, local_process(Path(workdir), healthy_within=120) as local:
        client = local.client

        def console(path: str) -> dict:
            request = urllib.request.Request(f"http://127.0.0.1:{local.ports['api']}{path}",
                                             headers={"Authorization": f"Bearer {local.console_token}"})
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError:
                return {}

        client.call("POST", "/users", user="hops", body={"email": "h@x.ie", "name": "H"})
        _, product, _ = client.call("POST", "/products", **ADMIN,
                                    body={"sku": "HOP", "name": "hops", "price": {"amount": 500, "currency": "EUR"}})
        pid = product["productId"]
        client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
        client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": ORDERS + 5, "reason": "bench"})
        body = {"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa",
                "shippingAddress": ADDRESS}
        for _ in range(ORDERS):
            status, placed, _ = client.wait_until(
                lambda: (r := client.call("POST", "/orders", user="hops", body=body)) and r[0] != 422 and r)
            order_id = placed["orderId"]

            def complete(order_id: str = order_id) -> dict | None:
                answer = console(f"/console/api/trace?q={order_id}")
                rows = answer.get("rows") or []
                done = any(r["name"] == "process shipping-events" and r["attributes"].get("shopstream.event_type")
                           == "ShippingCreated" for r in rows)
                return answer if done else None

            answer = client.wait_until(complete, timeout=60, interval=0.2)
            for hop, durations in hops(answer["rows"]).items():
                if hop in found:
                    found[hop] += durations
            rows = answer["rows"]
            shipped = max(r["startMs"] + r["durationMs"] for r in rows if r["name"] == "process shipping-events")
            found["saga: POST to shipment created"].append(shipped)
    return found


def report(found: dict[str, list[float]]) -> str:
    lines = [f"{ORDERS} orders one after another through make local; every span of each order's trace:",
             "", "| hop | spans | median (ms) | p95 (ms) |", "|---|---|---|---|"]
    for hop, durations in found.items():
        if durations:
            lines.append(f"| {hop} | {len(durations)} | {statistics.median(durations):.1f} | "
                         f"{_percentile(durations, 0.95):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
