"""Local saga throughput: N orders over HTTP through the local runtime (broker + moto + runner),
orders settled per second, time-to-settle percentiles, and where the time goes."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time

ORDERS = int(os.environ.get("BENCH_SAGA_ORDERS", 200))
CLIENTS = 8
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}


def measure() -> dict:
    from local.demo import embedded_stack, percentile

    with embedded_stack() as client:
        runtime = embedded_stack_runtime()
        admin = {"user": "bench-admin", "admin": True}
        users = [f"bench-{n}" for n in range(CLIENTS)]
        for user in users:
            client.call("POST", "/users", user=user, body={"email": f"{user}@x.ie", "name": user})
        _, product, _ = client.call("POST", "/products", **admin,
                                    body={"sku": "B", "name": "b", "price": {"amount": 1000, "currency": "EUR"}})
        pid = product["productId"]
        client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **admin)[0] == 200)
        client.call("POST", f"/inventory/{pid}/adjustments", **admin, body={"delta": ORDERS * 2, "reason": "bench"})
        body = {"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa",
                "shippingAddress": ADDRESS}
        for user in users:  # each user's profile must have reached the order service's replica
            client.wait_until(lambda u=user: client.call("POST", "/orders", user=u, body=body)[0] == 202)
        busy_before = {m.group: m.busy_seconds for m in runtime.mappings}
        relay_before = runtime.relay_busy_seconds
        placed: dict[str, tuple[str, float]] = {}
        lock = threading.Lock()

        def place(n: int) -> None:
            user = users[n % CLIENTS]
            started = time.monotonic()
            status, answer, _ = client.call("POST", "/orders", user=user, body=body)
            assert status == 202, answer
            with lock:
                placed[answer["orderId"]] = (user, started)

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(place, range(ORDERS)))
        placing_seconds = time.monotonic() - started
        settle: dict[str, float] = {}
        deadline = time.monotonic() + 900
        while len(settle) < ORDERS and time.monotonic() < deadline:
            for user in users:  # one history call per user, not one call per order
                try:
                    status, history, _ = client.call("GET", f"/users/{user}/orders", user=user)
                except OSError:
                    continue  # the stack is saturated; ask again next round
                for order in (history or {}).get("orders", []):
                    if order["orderId"] in placed and order["orderId"] not in settle and order["status"] != "PENDING":
                        settle[order["orderId"]] = time.monotonic() - placed[order["orderId"]][1]
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        busy = sorted(((m.group, m.busy_seconds - busy_before[m.group], m.invocations) for m in runtime.mappings),
                      key=lambda row: -row[1])
        times = list(settle.values())
        return {"orders": ORDERS, "settled": len(settle), "elapsed": elapsed, "placing_seconds": placing_seconds,
                "orders_per_second": len(settle) / elapsed, "p50": percentile(times, 50),
                "p95": percentile(times, 95), "p99": percentile(times, 99), "busiest": busy[:6],
                "relay_busy": runtime.relay_busy_seconds - relay_before}


def embedded_stack_runtime():
    from local.demo import embedded_stack

    return embedded_stack.current


def report(r: dict) -> str:
    lines = ["| orders | settled | wall (s) | orders settled/s | p50 (s) | p95 (s) | p99 (s) |",
             "|---|---|---|---|---|---|---|",
             f"| {r['orders']} | {r['settled']} | {r['elapsed']:.1f} | {r['orders_per_second']:.2f} | "
             f"{r['p50']:.2f} | {r['p95']:.2f} | {r['p99']:.2f} |", "",
             "Busy time during the run (seconds inside the function):", "",
             "| component | busy (s) | share of wall time |", "|---|---|---|"]
    for group, seconds, _ in r["busiest"]:
        lines.append(f"| mapping {group} | {seconds:.1f} | {seconds / r['elapsed']:.0%} |")
    busy = r["relay_busy"]
    lines.append(f"| outbox relays (all tables, one thread) | {busy:.1f} | {busy / r['elapsed']:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(measure()))
