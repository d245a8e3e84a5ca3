"""The local runtime at interactive speed: what a developer or a demo feels on `make local`.

- idle settle: one order at a time on an idle stack, POST /orders to its terminal event, median;
- sustained: ORDERS orders from CLIENTS concurrent clients offered at RATE orders/s: the rate they
  settle at, first 100 against last 100 (flat cost), settle and POST p95;
- AWS requests per order: everything the moto server answered during the sustained run (services,
  relays, pollers) divided by the orders (the bench itself only POSTs; it watches order-events on
  the broker to see orders settle, so it adds no reads);
- closed loop: CLOSED_ORDERS orders from CLIENTS clients that behave as a new user's client would,
  each placing an order, then asking for it (GET /orders/{id}) every POLL_SECONDS until it is
  CONFIRMED or CANCELLED, then placing the next (in a process of their own, as a user's client is):
  the rate they get through and the settle time they see (POST to the answer that shows the order
  settled), while status reads compete with the saga;
  beside it, the same clients seeing their orders settle on the broker instead (no reads): the rate
  the machine allows at that concurrency, so that the reads' cost shows as a ratio, whatever else
  the machine is doing.

    python -m bench.local_runtime            (BENCH_LOCAL_ORDERS=1000, BENCH_LOCAL_RATE=5.5,
                                              BENCH_LOCAL_CLOSED_ORDERS=200)
    python -m bench.local_runtime --closed-loop-only

The clients offer a little more than the 5 orders/s target: offered exactly 5/s, the settle rate
can only approach 5 (the run ends with the last order's settle time), never show it.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any

from local.client import ApiClient, Caller, OrderWatcher
from local.demo import embedded_stack, percentile
from local.moto_server import COUNTS_PATH

ORDERS = int(os.environ.get("BENCH_LOCAL_ORDERS", 1000))
RATE = float(os.environ.get("BENCH_LOCAL_RATE", 5.5))
CLIENTS = 10
IDLE_ORDERS = 15
CLOSED_ORDERS = int(os.environ.get("BENCH_LOCAL_CLOSED_ORDERS", 200))
POLL_SECONDS = 0.1  # each closed-loop client's pace between status reads (start to start)
SETTLED = frozenset({"CONFIRMED", "CANCELLED"})
ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}


def run_clients(client_loop: Callable[[int], None]) -> None:
    """The CLIENTS clients, each a thread running ``client_loop(its index)``, until all are done."""
    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def moto_requests(aws_port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{aws_port}{COUNTS_PATH}", timeout=10) as response:
        counts: dict[str, Any] = json.loads(response.read())
        return counts


def busy_seconds(runtime: Any) -> dict[str, float]:
    """Seconds each mapping spent inside its function, and the relays in theirs: a stage busy for
    most of the run is the one that bounds the rate."""
    busy = {mapping.group: mapping.busy_seconds for mapping in runtime.mappings}
    busy["outbox relays"] = runtime.relay_busy_seconds
    return busy


def measure(*, open_loop: bool = True) -> dict[str, Any]:
    with embedded_stack() as client:
        runtime = embedded_stack.current
        admin: Caller = {"user": "bench-admin", "admin": True}
        users = [f"bench-{n}" for n in range(CLIENTS)]
        for user in users:
            client.call("POST", "/users", user=user, body={"email": f"{user}@x.ie", "name": user})
        _, product, _ = client.call("POST", "/products", **admin,
                                    body={"sku": "B", "name": "b", "price": {"amount": 1000, "currency": "EUR"}})
        pid = product["productId"]
        client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **admin)[0] == 200)
        client.call("POST", f"/inventory/{pid}/adjustments", **admin,
                    body={"delta": (ORDERS + CLOSED_ORDERS) * 3, "reason": "bench"})
        body = {"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa",
                "shippingAddress": ADDRESS}
        for user in users:  # each profile must have reached the order service's replica
            client.wait_until(lambda u=user: client.call("POST", "/orders", user=u, body=body)[0] == 202)
        time.sleep(2)  # let the warm-up orders drain: the stack is idle
        figures: dict[str, Any] = {}
        if open_loop:
            figures |= open_loop_figures(client, runtime, users, body)
        return figures | closed_loop_figures(runtime, users, body)


def open_loop_figures(client: Any, runtime: Any, users: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """Idle settle and the sustained run: orders offered at RATE, settles seen on the broker."""
    settled = OrderWatcher(runtime.stack.bootstrap_servers)

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
    run_clients(client_loop)
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


def closed_loop_figures(runtime: Any, users: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """The closed loop, first with the clients seeing their orders settle on the broker (no reads: what the same
    clients would get if reading cost nothing), then polling."""
    unread = closed_loop(runtime, users, body, watch=True)
    return {**{f"unread_{name.removeprefix('closed_')}": value for name, value in unread.items()},
            **closed_loop(runtime, users, body, watch=False)}


def closed_loop(runtime: Any, users: list[str], body: dict[str, Any], *, watch: bool) -> dict[str, Any]:
    """The closed-loop clients in a process of their own, as a user's would be (in this one, a hundred reads a second
    would take the interpreter's turns from the runtime they measure)."""
    before = moto_requests(runtime.stack.aws_port)
    cache = getattr(runtime, "reads", None)  # the gateway's read cache (local/read_cache.py), where there is one
    hits_before = cache.hits if cache is not None else 0
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as clients:
        clients.submit(int).result()  # started before the clock starts
        cpu = time.process_time()  # this process's: the runtime's threads, not the clients'
        seen = clients.submit(closed_loop_clients, f"http://127.0.0.1:{runtime.api_port}",
                              runtime.stack.bootstrap_servers if watch else None, users, body).result()
        cpu = time.process_time() - cpu
    after = moto_requests(runtime.stack.aws_port)
    settle, gets = seen["settle_seconds"], seen["get_seconds"]
    return {
        "closed_orders": CLOSED_ORDERS, "closed_settled": len(settle), "closed_elapsed": seen["elapsed"],
        "closed_rate": len(settle) / seen["elapsed"] if seen["elapsed"] else 0.0,
        "closed_refused": len(seen["refused"]), "closed_unsettled": len(seen["unsettled"]),
        "closed_settle_p50": percentile(settle, 50), "closed_settle_p95": percentile(settle, 95),
        "closed_post_p95": percentile(seen["post_seconds"], 95),
        "closed_get_p50": percentile(gets, 50), "closed_get_p95": percentile(gets, 95),
        "closed_gets_per_order": len(gets) / max(CLOSED_ORDERS, 1),
        "closed_gets_cached": ((cache.hits if cache is not None else 0) - hits_before) / max(len(gets), 1),
        "closed_requests_per_order": (after["requests"] - before["requests"]) / max(CLOSED_ORDERS, 1),
        "closed_cpu_per_order": cpu / max(len(settle), 1),
    }


def closed_loop_clients(url: str, bootstrap: str | None, users: list[str], body: dict[str, Any]) -> dict[str, Any]:
    """CLOSED_ORDERS orders from CLIENTS clients, each placing an order and reading it every POLL_SECONDS (start to
    start, no catching up) until it is settled, then placing its next: settle as the client sees it. With a
    ``bootstrap`` the clients see their orders settle on the broker instead of reading them."""
    client = ApiClient(url)
    watcher = OrderWatcher(bootstrap) if bootstrap else None
    seen: dict[str, list[Any]] = {"settle_seconds": [], "post_seconds": [], "get_seconds": [], "refused": [],
                                  "unsettled": []}
    lock = threading.Lock()

    def note(name: str, value: Any) -> None:
        with lock:
            seen[name].append(value)

    def client_loop(index: int) -> None:
        for _ in range(index, CLOSED_ORDERS, CLIENTS):
            placed_at = time.monotonic()
            status, answer, _ = client.call("POST", "/orders", user=users[index], body=body)
            answered_at = time.monotonic()
            note("post_seconds", answered_at - placed_at)
            if status != 202:
                note("refused", status)
                continue
            order_id = answer["orderId"]
            if watcher is not None:
                watcher.wait_for({order_id}, 60)
                settled_at = watcher.settled_at.get(order_id)
                if settled_at is None:
                    note("unsettled", order_id)
                else:
                    note("settle_seconds", settled_at - placed_at)
                continue
            next_at, deadline = answered_at + POLL_SECONDS, answered_at + 60
            while True:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at + POLL_SECONDS, time.monotonic())
                asked_at = time.monotonic()
                status, order, _ = client.call("GET", f"/orders/{order_id}", user=users[index])
                seen_at = time.monotonic()
                note("get_seconds", seen_at - asked_at)
                if status == 200 and order["status"] in SETTLED:
                    note("settle_seconds", seen_at - placed_at)
                    break
                if seen_at > deadline:
                    note("unsettled", order_id)
                    break

    started = time.monotonic()
    run_clients(client_loop)
    elapsed = time.monotonic() - started
    if watcher is not None:
        watcher.close()
    return {**seen, "elapsed": elapsed}


def report(r: dict[str, Any]) -> str:
    lines = ["| figure | result | target |", "|---|---|---|"]
    if "idle_median" in r:
        lines += open_loop_rows(r)
    lines += [
        f"| closed loop: {r['closed_orders']} orders from {CLIENTS} clients, each placing one then reading it every "
        f"{POLL_SECONDS * 1000:.0f} ms until settled | {r['closed_rate']:.2f} orders/s settled "
        f"({r['closed_settled']}/{r['closed_orders']} in {r['closed_elapsed']:.0f} s"
        + (f"; {r['closed_refused']} POSTs refused" if r["closed_refused"] else "")
        + (f"; {r['closed_unsettled']} not settled in 60 s" if r["closed_unsettled"] else "") + ") | ≥ 5 |",
        f"| closed-loop settle p50 / p95 (POST to the read that shows it settled) | {r['closed_settle_p50']:.2f} s / "
        f"{r['closed_settle_p95']:.2f} s | p95 ≤ 2 s |",
        f"| closed-loop GET /orders/{{id}} p50 / p95 ({r['closed_gets_per_order']:.1f} per order, "
        f"{r['closed_gets_cached']:.0%} answered again from the gateway's read cache) and POST p95 | "
        f"{r['closed_get_p50'] * 1000:.0f} ms / {r['closed_get_p95'] * 1000:.0f} ms; "
        f"{r['closed_post_p95'] * 1000:.0f} ms | – |",
        f"| closed-loop AWS requests / runtime CPU per order (reads included) | {r['closed_requests_per_order']:.1f} / "
        f"{r['closed_cpu_per_order'] * 1000:.0f} ms | – |",
        f"| closed-loop reference: the same clients seeing their orders settle on the broker (no reads) | "
        f"{r['unread_rate']:.2f} orders/s, settle p50 {r['unread_settle_p50']:.2f} s / p95 "
        f"{r['unread_settle_p95']:.2f} s, {r['unread_requests_per_order']:.1f} AWS requests and "
        f"{r['unread_cpu_per_order'] * 1000:.0f} ms of runtime CPU per order | – |",
    ]
    if "idle_median" in r:
        lines += open_loop_notes(r)
    return "\n".join(lines)


def open_loop_rows(r: dict[str, Any]) -> list[str]:
    flat = r["last_100_rate"] / r["first_100_rate"] if r["first_100_rate"] else 0.0
    return [
        f"| idle single-order settle (POST to terminal event), median of {IDLE_ORDERS} | "
        f"{r['idle_median'] * 1000:.0f} ms (p95 {r['idle_p95'] * 1000:.0f} ms) | ≤ 1 s |",
        f"| sustained: {r['orders']} orders from {CLIENTS} clients offered at {RATE:g}/s | "
        f"{r['sustained_rate']:.2f} orders/s settled ({r['settled']}/{r['orders']} in {r['elapsed']:.0f} s) | ≥ 5 |",
        f"| flat cost: last 100 vs first 100 settle rate | {r['last_100_rate']:.2f} vs {r['first_100_rate']:.2f} "
        f"orders/s = {flat:.2f}x | ≥ 0.8x |",
        f"| settle p50 / p95 at that load | {r['settle_p50']:.2f} s / {r['settle_p95']:.2f} s | p95 ≤ 5 s |",
        f"| POST /orders p50 / p95 | {r['post_p50'] * 1000:.0f} ms / {r['post_p95'] * 1000:.0f} ms | p95 ≤ 300 ms |",
        f"| AWS requests per order (all services, relays, pollers) | {r['requests_per_order']:.1f} | ≤ 80 |",
    ]


def open_loop_notes(r: dict[str, Any]) -> list[str]:
    per_order = ", ".join(f"{name} {count / max(r['orders'], 1):.1f}" for name, count in r["top_actions"])
    return [
        "", f"Requests per order by action: {per_order}",
        "", "Busiest stages during the sustained run (seconds inside the function, of "
        f"{r['elapsed']:.0f} s): " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in r["busiest"]),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--closed-loop-only", action="store_true", help="skip the idle and sustained (open-loop) runs")
    print(report(measure(open_loop=not parser.parse_args().closed_loop_only)))
