"""The local runtime at interactive speed: what a developer or a demo feels on `make local`.

- idle settle: one order at a time on an idle stack, POST /orders to its terminal event, median;
- sustained: ORDERS orders from CLIENTS concurrent clients offered at RATE orders/s: the rate they
  settle at, first 100 against last 100 (flat cost), settle and POST p95;
- AWS requests per order: everything the moto server answered during the sustained run (services,
  relays, pollers) divided by the orders (the bench itself only POSTs; it watches order-events on
  the broker to see orders settle, so it adds no reads).

    python -m bench.local_runtime            (BENCH_LOCAL_ORDERS=1000, BENCH_LOCAL_RATE=5.5)

The clients offer a little more than the 5 orders/s target: offered exactly 5/s, the settle rate
can only approach 5 (the run ends with the last order's settle time), never show it.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from typing import Any

ORDERS = int(os.environ.get("BENCH_LOCAL_ORDERS", 1000))
RATE = float(os.environ.get("BENCH_LOCAL_RATE", 5.5))
CLIENTS = 10
IDLE_ORDERS = 15
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}


def moto_requests(aws_port: int) -> dict[str, Any]:
    from local.moto_server import COUNTS_PATH

    with urllib.request.urlopen(f"http://127.0.0.1:{aws_port}{COUNTS_PATH}", timeout=10) as response:
        counts: dict[str, Any] = json.loads(response.read())
        return counts


def busy_seconds(runtime: Any) -> dict[str, float]:
    """Seconds each mapping spent inside its function, and the relays in theirs: a stage busy for
    most of the run is the one that bounds the rate."""
    busy = {mapping.group: mapping.busy_seconds for mapping in runtime.mappings}
    busy["outbox relays"] = runtime.relay_busy_seconds
    return busy


def measure() -> dict[str, Any]:
    from local.client import OrderWatcher
    from local.demo import embedded_stack, percentile

    with embedded_stack() as client:
        runtime = embedded_stack.current
        admin = {"user": "bench-admin", "admin": True}
        users = [f"bench-{n}" for n in range(CLIENTS)]
        for user in users:
            client.call("POST", "/users", user=user, body={"email": f"{user}@x.ie", "name": user})
        _, product, _ = client.call("POST", "/products", **admin,
                                    body={"sku": "B", "name": "b", "price": {"amount": 1000, "currency": "EUR"}})
        pid = product["productId"]
        client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **admin)[0] == 200)
        client.call("POST", f"/inventory/{pid}/adjustments", **admin, body={"delta": ORDERS * 3, "reason": "bench"})
        body = {"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa",
                "shippingAddress": ADDRESS}
        for user in users:  # each profile must have reached the order service's replica
            client.wait_until(lambda u=user: client.call("POST", "/orders", user=u, body=body)[0] == 202)
        settled = OrderWatcher(runtime.stack.bootstrap_servers)
        time.sleep(2)  # let the warm-up orders drain: the stack is idle

        idle: list[float] = []
        for n in range(IDLE_ORDERS):
            started = time.monotonic()
            _, answer, _ = client.call("POST", "/orders", user=users[n % CLIENTS], body=body)
            settled.wait_for({answer["orderId"]}, 30)
            idle.append(settled.settled_at.get(answer["orderId"], time.monotonic()) - started)
            time.sleep(0.3)

        before = moto_requests(runtime.stack.aws_port)
        busy_before = busy_seconds(runtime)
        placed: dict[str, float] = {}
        post_seconds: list[float] = []
        lock = threading.Lock()
        interval = CLIENTS / RATE  # each client's pace, so that all of them offer RATE orders/s

        def client_loop(index: int) -> None:
            next_at = time.monotonic() + index * interval / CLIENTS
            for _ in range(index, ORDERS, CLIENTS):
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                started = time.monotonic()
                status, answer, _ = client.call("POST", "/orders", user=users[index], body=body)
                with lock:
                    post_seconds.append(time.monotonic() - started)
                    if status == 202:
                        placed[answer["orderId"]] = started

        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        settled.wait_for(set(placed), 300)
        elapsed = time.monotonic() - started
        after = moto_requests(runtime.stack.aws_port)
        busy = {name: seconds - busy_before.get(name, 0.0) for name, seconds in busy_seconds(runtime).items()}
        settled.close()
        done = sorted((settled.settled_at[o], o) for o in placed if o in settled.settled_at)
        settle_times = [settled.settled_at[o] - placed[o] for o in placed if o in settled.settled_at]
        by_time = sorted(placed.items(), key=lambda item: item[1])

        def rate(first: list[tuple[str, float]]) -> float:
            ends = sorted(settled.settled_at[o] for o, _ in first if o in settled.settled_at)
            return len(ends) / max(ends[-1] - first[0][1], 1e-9) if ends else 0.0

        actions = {k: after["byAction"].get(k, 0) - before["byAction"].get(k, 0) for k in after["byAction"]}
        return {
            "idle_median": percentile(idle, 50), "idle_p95": percentile(idle, 95),
            "orders": len(placed), "settled": len(done), "elapsed": elapsed,
            "sustained_rate": len(done) / elapsed if elapsed else 0.0,
            "first_100_rate": rate(by_time[:100]), "last_100_rate": rate(by_time[-100:]),
            "settle_p50": percentile(settle_times, 50), "settle_p95": percentile(settle_times, 95),
            "post_p50": percentile(post_seconds, 50), "post_p95": percentile(post_seconds, 95),
            "requests_per_order": (after["requests"] - before["requests"]) / max(len(placed), 1),
            "top_actions": sorted(actions.items(), key=lambda kv: -kv[1])[:8],
            "busiest": sorted(busy.items(), key=lambda kv: -kv[1])[:5],
        }


def report(r: dict[str, Any]) -> str:
    flat = r["last_100_rate"] / r["first_100_rate"] if r["first_100_rate"] else 0.0
    per_order = ", ".join(f"{name} {count / max(r['orders'], 1):.1f}" for name, count in r["top_actions"])
    return "\n".join([
        "| figure | result | target |", "|---|---|---|",
        f"| idle single-order settle (POST to terminal event), median of {IDLE_ORDERS} | "
        f"{r['idle_median'] * 1000:.0f} ms (p95 {r['idle_p95'] * 1000:.0f} ms) | ≤ 1 s |",
        f"| sustained: {r['orders']} orders from {CLIENTS} clients offered at {RATE:g}/s | "
        f"{r['sustained_rate']:.2f} orders/s settled ({r['settled']}/{r['orders']} in {r['elapsed']:.0f} s) | ≥ 5 |",
        f"| flat cost: last 100 vs first 100 settle rate | {r['last_100_rate']:.2f} vs {r['first_100_rate']:.2f} "
        f"orders/s = {flat:.2f}x | ≥ 0.8x |",
        f"| settle p50 / p95 at that load | {r['settle_p50']:.2f} s / {r['settle_p95']:.2f} s | p95 ≤ 5 s |",
        f"| POST /orders p50 / p95 | {r['post_p50'] * 1000:.0f} ms / {r['post_p95'] * 1000:.0f} ms | p95 ≤ 300 ms |",
        f"| AWS requests per order (all services, relays, pollers) | {r['requests_per_order']:.1f} | ≤ 80 |",
        "", f"Requests per order by action: {per_order}",
        "", "Busiest stages during the sustained run (seconds inside the function, of "
        f"{r['elapsed']:.0f} s): " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in r["busiest"]),
    ])


if __name__ == "__main__":
    print(report(measure()))
