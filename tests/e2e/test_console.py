"""The console of ``make local`` in a real browser (Debian's Chromium, playwright-core), on a real run:
orders over HTTP, poison on a topic, the pages showing them, a redrive from the page. Also the Kafka
tools of ``make ops`` (tail, produce) and ``GET /analytics/live`` against the same run.

SHOPSTREAM_CONSOLE_SCREENSHOTS=1 writes each page's screenshot to docs/ (as committed).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from local import naming
from local.child import ROOT, local_process
from local.client import ApiClient
from tests.e2e.browser import Browser, chromium_or_skip
from tests.support import Who

ADDRESS = {"line1": "1 Main St", "city": "Dublin", "postalCode": "D01", "country": "IE"}
ADMIN: Who = {"user": "ops", "admin": True}
pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``python -m local`` on free ports, with a few orders through it."""
    workdir = tmp_path_factory.mktemp("console")
    with local_process(workdir, healthy_within=180) as local:
        client = local.client
        status, product, _ = client.call("POST", "/products", **ADMIN, body={
            "sku": "CONSOLE-1", "name": "Console mug", "price": {"amount": 1200, "currency": "EUR"}})
        assert status == 201, product
        pid = product["productId"]
        client.wait_until(lambda: client.call("GET", f"/inventory/{pid}", **ADMIN)[0] == 200, timeout=90)
        stocked = client.call("POST", f"/inventory/{pid}/adjustments", **ADMIN, body={"delta": 50, "reason": "e2e"})
        assert stocked[0] == 200
        assert client.call("POST", "/users", user="ada", body={"email": "ada@example.com", "name": "Ada"})[0] == 201
        orders = {kind: _order(client, pid, method) for kind, method in
                  (("confirmed", "pm_card_visa"), ("declined", "pm_card_chargeDeclined"))}
        for order_id in orders.values():
            client.wait_until(lambda o=order_id: client.call("GET", f"/orders/{o}", user="ada")[1]["status"]
                              != "PENDING", timeout=120)
            # The console draws stories from the audit trail, which batches off the saga's path: the
            # outcome reaches it a little after the order's own status.
            correlation = client.call("GET", f"/orders/{order_id}", user="ada")[1]["correlationId"]
            client.wait_until(lambda c=correlation: _trail_has(client, c, {"OrderConfirmed", "OrderCancelled"}),
                              timeout=60)
        yield {"process": local.process, "client": client, "ports": local.ports, "product": pid, "orders": orders,
               "env": local.env, "workdir": workdir, "console_token": local.console_token}


def _order(client: ApiClient, product_id: str, method: str) -> str:
    body = {"items": [{"productId": product_id, "quantity": 1}], "paymentMethod": method, "shippingAddress": ADDRESS}
    status, answer, _ = client.wait_until(
        lambda: (r := client.call("POST", "/orders", user="ada", body=body)) and r[0] != 422 and r, timeout=90)
    assert status == 202, answer
    return str(answer["orderId"])


def _aws(run, service: str):
    import boto3

    any_service: Callable[..., Any] = boto3.client  # named at run time: the stubs type each literal name
    return any_service(service, endpoint_url=f"http://127.0.0.1:{run['ports']['aws']}", region_name="eu-west-1",
                       aws_access_key_id="local", aws_secret_access_key="local")


def _ops(run, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**run["env"]}
    return subprocess.run([sys.executable, "-m", "tools.ops", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def _shot(browser: Browser, name: str, tmp_path: Path) -> None:
    target = ROOT / "docs" / f"console-{name}.png" if os.environ.get("SHOPSTREAM_CONSOLE_SCREENSHOTS") else \
        tmp_path / f"console-{name}.png"
    browser("screenshot", path=str(target))
    assert target.stat().st_size > 10_000


@pytest.fixture(scope="module")
def browser(run):
    """Chromium, signed in to the console as a developer is: with the address ``make local`` printed."""
    chromium = chromium_or_skip()
    driver = Browser(chromium)
    printed = re.search(r"console: (http://\S+/console/login\?token=\S+)", (run["workdir"] / "local.out").read_text())
    assert printed is not None and printed.group(1).endswith(run["console_token"])
    assert driver("goto", url=printed.group(1)) == _console(run)  # redirected: the token left the address bar
    yield driver
    driver.close()


# --- the API and the Kafka tools on the same run --------------------------------------------------
def test_live_analytics_answers_from_a_real_run(run):
    client = run["client"]
    assert client.call("GET", "/analytics/live", user="ada")[0] == 403

    def settled(windows: list[dict]) -> bool:
        return (sum(w["ordersPlaced"] for w in windows) >= 2 and sum(w["ordersConfirmed"] for w in windows) >= 1
                and sum(w["ordersCancelled"].get("payment_declined", 0) for w in windows) >= 1
                and sum(w["paymentsFailed"] for w in windows) >= 1
                and any(w["confirmLatencyMs"]["count"] for w in windows))

    # the analytics handlers run behind their own consumer groups: wait until they saw both sagas end
    status, live, _ = client.wait_until(
        lambda: (r := client.call("GET", "/analytics/live?minutes=10", **ADMIN)) and r[0] == 200
        and settled(r[1]["windows"]) and r, timeout=90)
    windows = live["windows"]
    assert len(windows) == 10 and windows[-1]["closed"] is False
    assert sum(w["revenue"].get("EUR", 0) for w in windows) >= 1200
    latency = next(w["confirmLatencyMs"] for w in windows if w["confirmLatencyMs"]["count"])
    assert 0 < latency["p50"] <= latency["p95"] < 120_000


def test_ops_tail_prints_decoded_envelopes_and_produce_validates_first(run, tmp_path):
    confirmed = run["orders"]["confirmed"]
    tail = _ops(run, "tail", "order-events", "--key", confirmed)
    assert tail.returncode == 0, tail.stderr
    assert f"key={confirmed}  OrderCreated v2" in tail.stdout and "OrderConfirmed v1" in tail.stdout
    assert "record(s) of order-events with key" in tail.stdout
    from shopstream.envelope import event_from_command

    user = f"cli-{uuid.uuid4().hex[:6]}"
    good = event_from_command(event_type="UserRegistered", service="user", correlation_id="ops-produce",
                              data={"userId": user, "email": f"{user}@example.com", "name": "Cli"})
    (tmp_path / "good.json").write_text(good.model_dump_json(by_alias=True))
    bad = json.loads(good.model_dump_json(by_alias=True))
    bad["data"]["email"] = "x"
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = _ops(run, "produce", "user-events", str(tmp_path / "bad.json"))
    assert refused.returncode == 2 and "invalid_data" in refused.stdout
    wrong = _ops(run, "produce", "order-events", str(tmp_path / "good.json"))
    assert wrong.returncode == 2 and "belongs on user-events" in wrong.stdout
    sent = _ops(run, "produce", "user-events", str(tmp_path / "good.json"))
    assert sent.returncode == 0 and "produced to user-events[" in sent.stdout, sent.stdout + sent.stderr
    shown = _ops(run, "tail", "user-events", "--key", user)
    assert f"key={user}  UserRegistered v1" in shown.stdout and "1 record(s)" in shown.stdout
    # and the services took it (v1 is still accepted): the notification service has a contact, without the
    # address, which v1 carries in clear and which nothing can seal (no key: not registered through the API)
    contact = run["client"].wait_until(lambda: _aws(run, "dynamodb").get_item(
        TableName=naming.table("notification"), Key={"pk": {"S": f"CONTACT#{user}"}, "sk": {"S": "CONTACT"}}
    ).get("Item"), timeout=60)
    assert contact["status"]["S"] == "ACTIVE" and "email" not in contact


# --- the console in a browser ---------------------------------------------------------------------
def _console(run) -> str:
    return f"http://127.0.0.1:{run['ports']['api']}/console"


def test_the_system_map_shows_every_topic_and_group_with_rates_and_lag(run, browser, tmp_path):
    from shopstream import catalog

    browser("goto", url=f"{_console(run)}#map")
    browser("wait", selector="#map-diagram svg")
    browser("wait", selector="#map-topics tr[data-topic='order-events'] .records", text="^[1-9]")
    svg = " ".join(browser("text", selector="#map-diagram svg"))
    assert all(t.name in svg for t in catalog.TOPICS) and all(s.name in svg for s in catalog.SERVICES)
    groups = sum(len(s.handlers) for s in catalog.SERVICES)
    assert browser("count", selector="#map-groups tbody tr") == groups
    # A group's lag is "?" while the broker's answer for its offsets is late (5 s, on a busy machine); the page
    # asks again at each refresh: every lag must be known within a few.
    deadline = time.monotonic() + 30
    while True:
        lags = browser("text", selector="#map-groups .lag")
        if all(lag.isdigit() for lag in lags) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(lags) == groups and all(lag.isdigit() for lag in lags), lags
    assert float(browser("text", selector="#map-topics tr[data-topic='order-events'] .rate")[0]) >= 0
    # the partitions the broker has: a local run creates dev's, not the catalog's
    assert browser("text", selector="#map-topics tr[data-topic='order-events'] .partitions") == [
        str(naming.dev_partitions()["order-events"])] != [str(catalog.topic("order-events").partitions)]
    _shot(browser, "map", tmp_path)
    assert browser("problems") == []


def test_dead_letters_are_decoded_and_a_redrive_from_the_page_goes_back_through_the_handler(run, browser,
                                                                                            tmp_path):
    from confluent_kafka import Producer

    from shopstream.dlq import poison_message
    from shopstream.envelope import event_from_command
    from shopstream.wire import IncomingRecord, to_record

    producer = Producer({"bootstrap.servers": f"127.0.0.1:{run['ports']['kafka']}"})
    producer.produce("order-events", key=b"o-poison", value=b"{not json at all")
    producer.produce("order-events", key=b"o-binary", value=b"\xff\xfe\x00binary")
    producer.flush(10)
    # A valid record that a handler refused before a fix: what a redrive is for.
    correlation = f"e2e-redrive-{uuid.uuid4().hex[:8]}"
    envelope = event_from_command(event_type="OrderCreated", service="order", correlation_id=correlation, data={
        "orderId": "o-redriven", "userId": "ada", "total": {"amount": 1200, "currency": "EUR"},
        "items": [{"productId": run["product"], "quantity": 1, "unitPrice": {"amount": 1200, "currency": "EUR"}}],
        "paymentMethod": "pm_card_visa", "shippingAddress": ADDRESS})
    record = to_record(envelope)
    sqs = _aws(run, "sqs")
    queue = sqs.get_queue_url(QueueName=naming.dlq("audit", "trail-order"))["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(poison_message(
        IncomingRecord(topic="order-events", partition=3, offset=4242, timestamp=None, key=record.key.encode(),
                       value=record.value, headers=dict(record.headers), raw={}),
        handler="audit.trail-order", reason="refused_by_handler", detail="a bug in the handler, since fixed")))
    client = run["client"]
    assert client.call("GET", f"/audit/{correlation}", **ADMIN)[0] == 404

    browser("goto", url=f"{_console(run)}#dlq")
    trail_order = ".queue[data-queue='audit.trail-order']"
    browser("wait", selector=f"{trail_order} .value-text", text="not json at all")
    browser("wait", selector=f"{trail_order} .value-hex", text="^ff fe 00")
    browser("wait", selector=f"{trail_order} .reason", text="refused_by_handler")
    reasons = browser("text", selector=f"{trail_order} .reason")
    assert sorted(reasons) == ["not_json", "not_json", "refused_by_handler"], reasons
    assert any("order-events[3]@4242" in t for t in browser("text", selector=f"{trail_order} .message"))
    summary = browser("text", selector="#dlq-summary")[0]
    assert "relay failure queues" in summary
    _shot(browser, "dead-letters", tmp_path)

    fixed = browser("eval", expression=f"""[...document.querySelectorAll("{trail_order} .message")]
        .find(m => m.textContent.includes("refused_by_handler")).dataset.messageId""")
    browser("click", selector=f"{trail_order} button.redrive[data-id='{fixed}']")
    browser("wait", selector="#dlq-output", text="redrive audit.trail-order .* done")
    assert "1 redriven, 0 kept" in browser("text", selector="#dlq-output")[0]
    # the handler took it: the trail has the event, and the queue no longer holds the message
    trail = client.wait_until(lambda: (r := client.call("GET", f"/audit/{correlation}", **ADMIN))[0] == 200 and r[1])
    assert [e["eventId"] for e in trail["events"]] == [envelope.event_id]
    browser("gone", selector=f"[data-message-id='{fixed}']")

    # still poison: redriven through the handler, which dead-letters it again as a new message
    browser("wait", selector=f"{trail_order} .message", text="not json at all")
    poison = browser("eval", expression=f"""[...document.querySelectorAll("{trail_order} .message")]
        .find(m => m.textContent.includes("not json at all")).dataset.messageId""")
    browser("click", selector=f"{trail_order} button.redrive[data-id='{poison}']")
    browser("wait", selector="#dlq-output", text=f"redrive audit.trail-order {poison}: done")
    browser("gone", selector=f"[data-message-id='{poison}']")
    browser("wait", selector=f"{trail_order} .value-text", text="not json at all")  # the fresh one

    # discard: the binary record leaves the payment handler's queue for good
    payments = ".queue[data-queue='payment.order-payments']"
    browser("wait", selector=f"{payments} .message", text="ff fe 00")
    binary = browser("eval", expression=f"""[...document.querySelectorAll("{payments} .message")]
        .find(m => m.querySelector(".value-hex")).dataset.messageId""")
    browser("eval", expression="window.confirmDiscard = () => true")
    browser("click", selector=f"{payments} button.discard[data-id='{binary}']")
    browser("wait", selector="#dlq-output", text=f"discard payment.order-payments {binary}: done")
    browser("gone", selector=f"[data-message-id='{binary}']")
    listing = _ops(run, "dlq", "list", "--handler", "payment.order-payments").stdout
    assert "1 message(s)" in listing and "not_json" in listing
    assert browser("problems") == []


# The rows of the first waterfall under ``at``, as the page draws them.
WATERFALL_ROWS = """[...document.querySelector('{at} table.waterfall').querySelectorAll('tr.span-row')].map(r => ({{
    kind: r.dataset.kind, depth: +r.dataset.depth, name: r.querySelector('.span-name').firstChild.textContent.trim(),
    service: r.querySelector('.span-service').textContent, ms: +r.querySelector('.span-ms').textContent,
    left: parseFloat(r.querySelector('.bar-fill').style.left),
    width: parseFloat(r.querySelector('.bar-fill').style.width)}}))"""


def _trail_has(client, correlation: str, event_types: set[str]) -> bool:
    status, trail, _ = client.call("GET", f"/audit/{correlation}", **ADMIN)
    return status == 200 and any(e["eventType"] in event_types for e in trail["events"])


def test_an_orders_story_is_drawn_as_its_causal_graph_with_timings(run, browser, tmp_path):
    order_id = run["orders"]["confirmed"]
    browser("goto", url=f"{_console(run)}#story")
    browser("fill", selector="#story-q", value=order_id)
    browser("press", selector="#story-q", key="Enter")
    browser("wait", selector="#story-diagram svg")
    browser("wait", selector=".order-status", text="CONFIRMED|SHIPPED|DELIVERED")
    drawn = " ".join(browser("text", selector="#story-diagram svg"))
    for event_type in ("OrderCreated", "InventoryReserved", "PaymentInitiated", "PaymentProcessed", "OrderConfirmed"):
        assert event_type in drawn
    assert "+0 ms" in drawn and "order ·" in drawn
    rows = browser("eval", expression="""[...document.querySelectorAll('#story-events tbody tr')]
        .map(r => [...r.cells].map(c => c.textContent.trim()))""")
    assert len(rows) >= 6 and rows[0][:3] == ["0", "OrderCreated", "order"]
    confirmed = next(r for r in rows if r[1] == "OrderConfirmed")
    assert int(confirmed[0]) >= int(confirmed[3]) >= 0  # since the first event, since its cause
    assert browser("count", selector="#story-diagram svg .edgePath, #story-diagram svg .flowchart-link") >= 5
    # Under the graph, the order's trace as a waterfall (local/traces.py): a row per span, nested, with the waits
    # no span covers; the page asks again every 3 s, so spans still arriving show up.
    browser("wait", selector="#trace-waterfall td.span-name", text="^process payment-events", timeout=30)
    spans = browser("eval", expression=WATERFALL_ROWS.format(at="#trace-waterfall"))
    names = {r["name"] for r in spans}
    assert {"POST /orders", "commit", "wait in the outbox", "publish order-events", "wait in the mapping",
            "process order-events", "process inventory-events", "authorise payment-provider",
            "process payment-events"} <= names, names
    assert spans[0]["name"] == "POST /orders" and spans[0]["depth"] == 0 and spans[0]["left"] == 0
    assert all(r["depth"] > 0 for r in spans[1:])  # one trace: everything hangs from the POST
    assert {r["kind"] for r in spans if r["name"].startswith("wait in")} == {"wait"}
    assert {r["service"] for r in spans if r["kind"] == "consumer"} >= {"inventory", "payment", "order"}
    assert all(r["ms"] >= 0 and 0 <= r["left"] <= 100 and 0 < r["width"] <= 100 - r["left"] + 0.01 for r in spans)
    authorise = next(r for r in spans if r["name"] == "authorise payment-provider")
    post = spans[0]
    assert authorise["left"] > post["left"] and authorise["service"] == "payment"
    trace_id = browser("text", selector="#trace-head .trace-id")[0]
    assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
    _shot(browser, "story", tmp_path)
    # the same story by correlation id, and an unknown id answered on the page
    correlation = run["client"].call("GET", f"/orders/{order_id}", user="ada")[1]["correlationId"]
    browser("goto", url=f"{_console(run)}#story?q={correlation}")
    browser("wait", selector="#story-head code", text=correlation)
    assert browser("problems") == []
    browser("goto", url=f"{_console(run)}#story?q=nothing-like-this")
    browser("wait", selector="#story-head", text="no events with correlation id")
    assert all("status of 404" in p for p in browser("problems"))  # the API's answer, shown on the page
    assert browser("eval", expression="document.querySelector('#story-trace').hidden") is True


def test_a_replay_of_an_orders_records_shows_as_traces_linked_to_its_trace(run, browser):
    order_id = run["orders"]["confirmed"]
    browser("goto", url=f"{_console(run)}#story?q={order_id}")
    browser("wait", selector="#trace-waterfall tr.span-row")
    replayed = subprocess.run([sys.executable, "-m", "tools.ops", "replay", "--handler", "order.payment-outcomes"],
                              env=run["env"], cwd=run["workdir"], capture_output=True, text=True, timeout=120)
    assert "0 reported failed" in replayed.stdout, replayed.stdout + replayed.stderr
    # the tool's spans reach the runtime's collector; the page, asking again, lists the new traces
    browser("wait", selector="#trace-linked details.linked-trace .linked-kind", text="^replay$", timeout=30)
    linked = browser("eval", expression="""[...document.querySelectorAll('#trace-linked details.linked-trace')]
        .map(d => d.dataset.traceId)""")
    assert linked and browser("text", selector="#trace-head .trace-id")[0] not in linked
    browser("click", selector="#trace-linked details.linked-trace summary")
    rows = browser("eval", expression=WATERFALL_ROWS.format(at="#trace-linked details.linked-trace"))
    assert rows[0]["name"] == "process payment-events" and rows[0]["depth"] == 0
    assert browser("problems") == []


def test_live_analytics_refresh_in_place(run, browser, tmp_path):
    browser("goto", url=f"{_console(run)}#analytics")
    browser("wait", selector="#card-placed .value", text="^[1-9]")
    browser("eval", expression="window.notReloaded = true")
    before = int(browser("text", selector="#card-placed .value")[0])
    refreshes = browser("eval", expression="window.consoleState.refreshes")
    _order(run["client"], run["product"], "pm_card_visa")
    browser("wait", selector="#card-placed .value", text=f"^(?!{before}$)[0-9]+$", timeout=60)
    assert int(browser("text", selector="#card-placed .value")[0]) == before + 1
    assert browser("eval", expression="window.notReloaded === true && window.consoleState.refreshes") > refreshes
    assert browser("count", selector="#analytics-windows tbody tr") == 15
    assert browser("count", selector="#analytics-chart svg rect") == 30
    _shot(browser, "analytics", tmp_path)
    assert browser("problems") == []


def test_the_session_cookie_is_out_of_the_pages_reach(run, browser):
    browser("goto", url=f"{_console(run)}#map")
    [cookie] = [c for c in browser("cookies") if c["name"].startswith("shopstream_console")]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console")
    assert cookie["value"] != run["console_token"]
    assert cookie["name"] not in browser("eval", expression="document.cookie")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_console_is_served_from_the_machine_only(run):
    base = f"http://127.0.0.1:{run['ports']['api']}"
    token = {"Authorization": f"Bearer {run['console_token']}"}
    status, mermaid = _get(f"{base}/console/vendor/mermaid.min.js", token)
    assert status == 200 and len(mermaid) > 100_000  # from node_modules, not a CDN
    status, page = _get(f"{base}/console", token)
    html = page.decode()
    assert status == 200 and "http://" not in html.replace("http://127.0.0.1", "") and "https://" not in html
    for path in ("/console/static/../../stack.py", "/console/nothing"):
        assert _get(f"{base}{path}", token)[0] == 404, path


def test_the_console_refuses_whoever_has_not_its_token_or_its_origin(run):
    base = f"http://127.0.0.1:{run['ports']['api']}"
    token = {"Authorization": f"Bearer {run['console_token']}"}
    status, page = _get(f"{base}/console")
    assert status == 401 and b"/console/login?token=" in page
    assert _get(f"{base}/console/api/dlq")[0] == 401
    assert _get(f"{base}/console/api/dlq", {"Authorization": "Bearer not-this-runs"})[0] == 401
    # DNS rebinding: a foreign name resolving to 127.0.0.1 arrives with its own Host
    assert _get(f"{base}/console/api/dlq", {**token, "Host": f"rebound.example:{run['ports']['api']}"})[0] == 403
    assert _get(f"{base}/console/api/dlq", {**token, "Origin": "http://attacker.example"})[0] == 403
