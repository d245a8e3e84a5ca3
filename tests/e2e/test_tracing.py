"""One trace per order through ``make local`` (issue 23): from the POST to the confirmation and the shipment,
collected by the runtime, shown by the console and by ``make ops ARGS="trace <orderId>"``; a replayed record's
span starts a trace of its own, linked to the order's."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import pytest

from local.child import local_process
from tests.support import Who

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN: Who = {"user": "ops", "admin": True}
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("traced")
    with local_process(workdir, healthy_within=120) as local:
        yield local, workdir


def _console(runtime, path: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{runtime.ports['api']}{path}",
                                     headers={"Authorization": f"Bearer {runtime.console_token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def test_one_order_is_one_trace_from_the_post_to_the_confirmation_and_the_shipment(runtime):
    runtime, workdir = runtime  # make ops runs where make local runs (its console token is there)
    client = runtime.client
    assert client.call("POST", "/users", user="trace-1", body={"email": "t@x.ie", "name": "T"})[0] == 201
    status, product, _ = client.call("POST", "/products", **ADMIN,
                                     body={"sku": "TRC", "name": "traced", "price": {"amount": 500, "currency": "EUR"}})
    assert status == 201
    pid = product["productId"]
    client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200)
    assert client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 5, "reason": "e2e"})[0] == 200
    body = {"items": [{"productId": pid, "quantity": 1}], "paymentMethod": "pm_card_visa", "shippingAddress": ADDRESS}
    status, placed, headers = client.wait_until(
        lambda: (r := client.call("POST", "/orders", user="trace-1", body=body)) and r[0] != 422 and r, timeout=60)
    assert status == 202, placed
    order_id = placed["orderId"]
    trace_id = (_header(headers, "traceresponse") or "").split("-")[1]
    assert len(trace_id) == 32
    client.wait_until(lambda: client.call("GET", f"/orders/{order_id}", user="trace-1")[1]["status"] == "CONFIRMED",
                      timeout=90)
    client.wait_until(lambda: client.call("GET", f"/orders/{order_id}/shipment", user="trace-1")[0] == 200,
                      timeout=60)
    _, _, headers = client.call("GET", f"/orders/{order_id}", user="trace-1")
    assert _header(headers, "X-Trace-Id") == trace_id  # the order's trace, whoever asks later

    # Each handler of the saga records its span when it has applied its event; some (the order's view of the
    # shipment) apply after the shipment is readable through the API: wait for every one of them.
    saga_handlers = {"inventory.order-reservations", "payment.inventory-outcomes", "order.payment-outcomes",
                     "shipping.order-fulfilment", "order.shipping-outcomes"}

    def complete() -> dict | None:
        status, answer = _console(runtime, f"/console/api/trace?q={order_id}")
        rows = answer.get("rows", [])
        names = {(r["name"], r["attributes"].get("shopstream.event_type")) for r in rows}
        handlers = {r["attributes"].get("shopstream.handler") for r in rows if r["kind"] == "consumer"}
        wanted = {("process order-events", "OrderConfirmed"), ("process shipping-events", "ShippingCreated")}
        return answer if status == 200 and wanted <= names and saga_handlers <= handlers else None

    answer = client.wait_until(complete, timeout=60, interval=0.5)
    assert answer["traceId"] == trace_id
    rows = answer["rows"]
    spans = [r for r in rows if r["kind"] != "wait"]
    assert spans[0]["name"] == "POST /orders" and spans[0]["kind"] == "server" and spans[0]["depth"] == 0
    assert [r for r in spans if r["depth"] == 0] == [spans[0]]  # one root: everything hangs from the POST
    names = {r["name"] for r in spans}
    assert {"POST /orders", "commit", "publish order-events", "process order-events", "process inventory-events",
            "process payment-events", "authorise payment-provider", "publish shipping-events",
            "process shipping-events"} <= names, names
    handlers = {r["attributes"].get("shopstream.handler") for r in spans if r["kind"] == "consumer"}
    assert saga_handlers <= handlers, handlers
    waits = {r["name"] for r in rows if r["kind"] == "wait"}
    assert waits == {"wait in the outbox", "wait in the mapping"}
    assert all(r["durationMs"] >= 0 for r in rows)

    out = subprocess.run([sys.executable, "-m", "tools.ops", "trace", order_id], env=runtime.env, capture_output=True,
                         text=True, timeout=120, cwd=workdir).stdout
    assert f"trace {trace_id}" in out and "POST /orders" in out and "wait in the mapping" in out, out
    assert "OrderCreated" in out  # the causal chain, above the waterfall

    # A replay of the order's payment outcomes: each record's span starts a new trace, linked to the order's.
    replayed = subprocess.run([sys.executable, "-m", "tools.ops", "replay", "--handler", "order.payment-outcomes"],
                              env=runtime.env, capture_output=True, text=True, timeout=120, cwd=workdir).stdout
    assert "0 reported failed" in replayed, replayed

    def linked() -> list | None:
        found = _console(runtime, f"/console/api/trace?q={trace_id}")[1].get("linked") or []
        return found or None

    # the order's PaymentAuthorised and PaymentProcessed: a trace each
    replays = client.wait_until(linked, timeout=30, interval=0.5)
    for replay in replays:
        assert replay["traceId"] != trace_id
        [root] = [r for r in replay["rows"] if r["depth"] == 0]
        assert root["name"] == "process payment-events" and root["attributes"]["shopstream.redelivery"] == "replay"
        assert any(link["traceId"] == trace_id for link in root["links"])
