"""One trace per order (shopstream.tracing): W3C context from the request through the outbox, the relay and the
handler; a record delivered again, redriven or replayed gets a link to its context, not a child in its trace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local import naming
from local.context import LocalLambdaContext
from local.samples import product_created
from local.traces import MIN_BAR_PCT, SpanStore, flatten, render, timeline, waterfall
from shopstream import spans, tracing
from shopstream.consumer import EventConsumer
from shopstream.outbox import republish, stored_record
from shopstream.publisher import InMemoryPublisher
from shopstream.relay import OutboxRelay
from shopstream.transaction import UnitOfWork
from shopstream.wire import msk_event, msk_record, redelivered
from tests.support import present
from tests.unit.test_outbox import stream_event


@pytest.fixture
def collected():
    """Tracing on in this process, every span kept (as the local runtime keeps them)."""
    store = SpanStore()
    tracing.configure(store.ingest, sample_rate=1.0)
    yield store
    tracing.reset()


def _all(store: SpanStore) -> list[dict[str, Any]]:
    tracing.flush()
    return [span for trace_id in list(store._traces) for span in store.trace(trace_id)]


def _record_of(published, offset: int = 0) -> dict[str, Any]:
    return msk_record(topic=published.topic, partition=0, offset=offset, key=published.key.encode(),
                      value=published.value, headers=list(published.headers), timestamp_ms=1)


def _commit_under_request(aws, service_env) -> tuple[str, InMemoryPublisher]:
    """A request span commits an event; the relay publishes it from the table's stream."""
    table = service_env("catalog")["SHOPSTREAM_TABLE_NAME"]
    request = tracing.start("POST /products", kind="server", parent=None)
    with tracing.activate(request):
        uow = UnitOfWork()
        uow.emit(product_created("p-1"))
        uow.commit()
    publisher = InMemoryPublisher()
    OutboxRelay(publisher)(stream_event(aws["dynamodb"], table), None)
    return tracing.traceparent(request) or "", publisher


def test_tracing_is_off_unless_configured_and_then_imports_nothing(monkeypatch):
    monkeypatch.delenv(tracing.EXPORT_ENV, raising=False)
    tracing.reset()
    assert not tracing.enabled()
    assert tracing.start("x") is None and tracing.current_traceparent() is None
    with tracing.span("commit") as span:
        assert span is None


def test_the_context_goes_from_the_request_through_the_outbox_and_the_relay_into_the_handler(collected, aws,
                                                                                               service_env):
    origin, publisher = _commit_under_request(aws, service_env)
    item = next(i for i in aws["dynamodb"].scan(TableName=naming.table("catalog"))["Items"]
                if i["pk"]["S"].startswith("OUTBOX#"))
    assert item[tracing.TRACEPARENT]["S"] == origin  # the outbox item keeps the committing span's context
    [published] = publisher.records
    header = dict(published.headers)[tracing.TRACEPARENT].decode()
    assert tracing.trace_id_of(header) == tracing.trace_id_of(origin) and header != origin

    service_env("inventory", "product-sync")
    handled: list[str | None] = []

    def handle(inbound):
        handled.append(tracing.current_traceparent())
        with tracing.span("charge payment-provider", kind="client"):
            pass

    consumer = EventConsumer("inventory", "product-sync", handle)
    assert consumer(msk_event([_record_of(published)]), LocalLambdaContext())["batchItemFailures"] == []
    recorded = {s["name"]: s for s in _all(collected)}
    assert {"POST /products", "commit", "publish catalog-events", "process catalog-events",
            "charge payment-provider"} <= set(recorded)
    assert len({s["traceId"] for s in recorded.values()}) == 1  # one trace
    publish, process = recorded["publish catalog-events"], recorded["process catalog-events"]
    assert publish["kind"] == "producer" and publish["parentSpanId"] == recorded["POST /products"]["spanId"]
    assert process["kind"] == "consumer" and process["parentSpanId"] == publish["spanId"]
    assert recorded["charge payment-provider"]["parentSpanId"] == process["spanId"]
    assert recorded["commit"]["parentSpanId"] == recorded["POST /products"]["spanId"]
    assert tracing.trace_id_of(handled[0]) == publish["traceId"]  # events the handler emits carry its context
    attributes = process["attributes"]
    assert attributes["messaging.system"] == "kafka" and attributes["messaging.destination.name"] == "catalog-events"
    assert attributes["messaging.destination.partition.id"] == "0" and attributes["messaging.kafka.offset"] == 0
    assert attributes["messaging.consumer.group.name"] == "inventory-product-sync"
    assert attributes["messaging.operation.type"] == "process" and "shopstream.mapping.wait_ms" in attributes
    rows = waterfall(collected.trace(publish["traceId"]))
    assert [r["name"] for r in rows if r["kind"] == "wait"] == ["wait in the outbox", "wait in the mapping"]
    assert any("process catalog-events" in line for line in render(rows))


def test_the_consoles_bars_sit_on_the_traces_time_scale():
    rows = [{"name": "POST /orders", "kind": "server", "startMs": 0.0, "durationMs": 40.0},
            {"name": "wait in the outbox", "kind": "wait", "startMs": 40.0, "durationMs": 60.0},
            {"name": "publish order-events", "kind": "producer", "startMs": 100.0, "durationMs": 0.0},
            {"name": "process order-events", "kind": "consumer", "startMs": 150.0, "durationMs": 50.0}]
    bars = [row["bar"] for row in timeline(rows)]
    assert bars[0] == {"left": 0.0, "width": 20.0} and bars[1] == {"left": 20.0, "width": 30.0}
    assert bars[2] == {"left": 50.0, "width": MIN_BAR_PCT}  # an instant still shows
    assert bars[3] == {"left": 75.0, "width": 25.0}  # the last span ends the scale
    assert "bar" not in rows[0]  # the rows given are left as they were
    [alone] = timeline([{"startMs": 0.0, "durationMs": 0.0}])
    assert alone["bar"] == {"left": 0.0, "width": MIN_BAR_PCT} and timeline([]) == []
    assert all(b["left"] >= 0 and b["left"] + b["width"] <= 100 for b in bars)


def _links(span: dict[str, Any]) -> set[str]:
    return {link["spanId"] for link in span["links"]}


def test_a_record_delivered_again_starts_a_trace_linked_to_its_context(collected, aws, service_env):
    _, publisher = _commit_under_request(aws, service_env)
    [published] = publisher.records
    publish = next(s for s in _all(collected) if s["name"] == "publish catalog-events")
    service_env("inventory", "product-sync")
    consumer = EventConsumer("inventory", "product-sync", lambda inbound: None)
    event = msk_event([_record_of(published)])
    consumer(event, LocalLambdaContext())
    consumer(event, LocalLambdaContext())  # the mapping delivers the batch again
    first, again = sorted((s for s in _all(collected) if s["name"] == "process catalog-events"),
                          key=lambda s: s["start"])
    assert first["parentSpanId"] == publish["spanId"] and first["traceId"] == publish["traceId"]
    assert again["parentSpanId"] is None and again["traceId"] != publish["traceId"]
    assert _links(again) == {publish["spanId"]} and again["attributes"]["shopstream.redelivery"] == "redelivered"


def test_a_duplicate_the_idempotency_record_answers_is_linked_not_a_child(collected, aws, service_env):
    _, publisher = _commit_under_request(aws, service_env)
    [published] = publisher.records
    service_env("inventory", "product-sync")
    consumer = EventConsumer("inventory", "product-sync", lambda inbound: None, idempotent=True)
    consumer(msk_event([_record_of(published, offset=0)]), LocalLambdaContext())
    consumer(msk_event([_record_of(published, offset=1)]), LocalLambdaContext())  # the same event, a new offset
    first, duplicate = sorted((s for s in _all(collected) if s["name"] == "process catalog-events"),
                              key=lambda s: s["start"])
    assert first["parentSpanId"] is not None
    assert duplicate["parentSpanId"] is None and duplicate["attributes"]["shopstream.redelivery"] == "duplicate"
    assert _links(duplicate) == {first["parentSpanId"]}


@pytest.mark.parametrize("how", ["redrive", "replay"])
def test_a_redriven_or_replayed_record_links_to_its_original_context(collected, aws, service_env, how):
    _, publisher = _commit_under_request(aws, service_env)
    [published] = publisher.records
    publish = next(s for s in _all(collected) if s["name"] == "publish catalog-events")
    service_env("inventory", "product-sync")
    applied: list[str | None] = []
    consumer = EventConsumer("inventory", "product-sync", lambda inbound: applied.append(tracing.current_trace_id()))
    consumer(msk_event([redelivered(_record_of(published), how)]), LocalLambdaContext())
    [span] = [s for s in _all(collected) if s["name"] == "process catalog-events"]
    assert span["parentSpanId"] is None and span["traceId"] != publish["traceId"]
    assert _links(span) == {publish["spanId"]} and span["attributes"]["shopstream.redelivery"] == how
    assert applied == [span["traceId"]]  # what the handler causes belongs to the new trace
    assert SpanStore.linking_to(collected, publish["traceId"]) == [span["traceId"]]


def test_a_relay_redrive_publishes_in_a_new_trace_linked_to_the_commit(collected, aws, service_env):
    table = service_env("catalog")["SHOPSTREAM_TABLE_NAME"]
    request = tracing.start("POST /products", kind="server", parent=None)
    with tracing.activate(request):
        uow = UnitOfWork()
        uow.emit(product_created("p-2"))
        uow.commit()
    image = next(r["dynamodb"]["NewImage"] for r in stream_event(aws["dynamodb"], table)["Records"]
                 if r["dynamodb"]["Keys"]["pk"]["S"].startswith("OUTBOX#"))
    publisher = InMemoryPublisher()
    record = stored_record(image)
    assert record is not None
    republish([record], publisher)
    headers = dict(publisher.records[0].headers)
    assert headers[tracing.REDELIVERY_HEADER] == b"redrive"
    [publish] = [s for s in _all(collected) if s["name"] == "publish catalog-events"]
    assert request is not None
    assert publish["parentSpanId"] is None and _links(publish) == {request.get_span_context().span_id}
    assert tracing.trace_id_of(headers[tracing.TRACEPARENT].decode()) == publish["traceId"]


def test_traceparent_is_read_as_w3c_trace_context_says():
    ids = "0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"
    trace_id, span_id = ids.split("-")
    assert spans.context_of(f"00-{ids}-01") == spans.span_context(trace_id, span_id, 1, remote=True)
    assert spans.context_of(f"01-{ids}-00-later-fields") == spans.span_context(trace_id, span_id, 0, remote=True)
    for refused in (f"00-{ids}-01-more", f"ff-{ids}-01", f"00-{ids.upper()}-01", f"00-{'0' * 32}-b7ad6b7169203331-01",
                    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01", "garbage", "", None):
        assert spans.context_of(refused) is None, refused
    assert spans.traceparent_of(present(spans.context_of(f"00-{ids}-01"))) == f"00-{ids}-01"


def test_sampling_follows_the_parent_and_the_rate():
    recorder = spans.Recorder(sample_rate=0.0, exporter=None, service=lambda: "x")
    assert not recorder.start("a", kind="server", parent=None).is_recording()
    sampled_parent = spans.context_of("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert sampled_parent is not None
    child = recorder.start("b", kind="consumer", parent=sampled_parent)
    assert child.is_recording() and child.get_span_context().trace_id == sampled_parent.trace_id
    everything = spans.Recorder(sample_rate=1.0, exporter=None, service=lambda: "x")
    unsampled = spans.context_of("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
    assert not everything.start("c", kind="consumer", parent=unsampled).is_recording()
    half = spans.Recorder(sample_rate=0.5, exporter=None, service=lambda: "x")
    kept = sum(half.start("d", kind="server", parent=None).is_recording() for _ in range(4000))
    assert 1700 < kept < 2300


def test_flush_exports_one_otlp_json_request_and_never_raises():
    sent: list[bytes] = []
    recorder = spans.Recorder(sample_rate=1.0, exporter=sent.append, service=lambda: "order-service")
    with spans.activate(recorder.start("POST /orders", kind="server", parent=None, attributes={"n": 1, "ok": True})):
        pass
    assert recorder.flush() == 1 and recorder.flush() == 0
    request = json.loads(sent[0])  # OTLP/JSON, as it is sent
    [resource] = request["resourceSpans"]
    assert {"key": "service.name", "value": {"stringValue": "order-service"}} in resource["resource"]["attributes"]
    [span] = resource["scopeSpans"][0]["spans"]
    assert span["kind"] == 2 and len(span["traceId"]) == 32 and len(span["spanId"]) == 16
    assert {"key": "n", "value": {"intValue": "1"}} in span["attributes"]
    assert flatten(request)[0]["attributes"] == {"n": 1, "ok": True}

    def broken(_body: bytes) -> None:
        raise ConnectionError("collector down")

    failing = spans.Recorder(sample_rate=1.0, exporter=broken, service=lambda: "x")
    failing.start("x", kind="internal", parent=None).end()
    assert failing.flush() == 1  # logged, not raised: tracing never fails the work it observes


def test_the_xray_exporter_signs_with_sigv4_for_xray(monkeypatch):
    from botocore.credentials import Credentials

    posted: dict[str, Any] = {}
    monkeypatch.setattr(spans, "_post", lambda url, body, headers, timeout: posted.update(url=url, headers=headers))
    export = spans.xray_exporter("eu-west-1", lambda: Credentials("AKIDEXAMPLE", "secret", "token"))
    export(b'{"resourceSpans":[]}')
    assert posted["url"] == "https://xray.eu-west-1.amazonaws.com/v1/traces"
    assert "/eu-west-1/xray/aws4_request" in posted["headers"]["Authorization"]
    assert posted["headers"]["X-Amz-Security-Token"] == "token"


def test_the_first_tls_connection_trusts_amazons_roots_and_falls_back_to_the_whole_bundle(monkeypatch):
    import urllib3

    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    roots = {dict(pair[0] for pair in cert["subject"]).get("commonName")
             for cert in spans._tls_context(True).get_ca_certs()}
    assert roots == set(spans.AMAZON_ROOTS)  # five roots parsed, not botocore's 150

    class Pool:
        def __init__(self, verified: bool):
            self.verified, self.calls = verified, 0

        def request(self, *_args: Any, **_kwargs: Any) -> Any:
            self.calls += 1
            if not self.verified:
                raise urllib3.exceptions.SSLError("certificate verify failed")
            return type("Response", (), {"status": 200, "data": b""})()

    pools = {True: Pool(verified=False), False: Pool(verified=True)}
    monkeypatch.setattr(spans, "_pools", pools)
    spans._post("https://xray.eu-west-1.amazonaws.com/v1/traces", b"{}", {}, 1.0)
    assert (pools[True].calls, pools[False].calls) == (1, 1)  # sent again, trusting the whole bundle


def test_the_exporter_is_chosen_by_the_environment(monkeypatch):
    monkeypatch.setenv(tracing.EXPORT_ENV, "http://127.0.0.1:1/v1/traces")
    monkeypatch.setenv(tracing.SAMPLE_RATE_ENV, "0.25")
    tracing.reset()
    try:
        active = tracing.recorder()
        assert active is not None and active.sample_rate == 0.25
        monkeypatch.setenv(tracing.EXPORT_ENV, "ftp://nope")
        tracing.reset()
        with pytest.raises(ValueError):
            tracing.recorder()
    finally:
        tracing.reset()
