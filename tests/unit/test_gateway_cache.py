"""The local gateway's read cache (local/read_cache.py): a GET's answer is given again only while nothing it read has
changed, never to another caller; and status reads no longer go ahead of the saga (local/runtime.py)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from types import SimpleNamespace

import pytest

from local import naming
from local.read_cache import READ_CACHE_SECONDS, ReadCache, item_reads
from tests.support import FakeTime

ORDERS = naming.table("order")
GET = "DynamoDB_20120810.GetItem"
WRITE = "DynamoDB_20120810.TransactWriteItems"


def _get(table: str, order_id: str) -> bytes:
    return json.dumps({"TableName": table, "Key": {"pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "STATE"}}}).encode()


def _write(table: str, order_id: str) -> bytes:
    return json.dumps({"TransactItems": [{"Put": {"TableName": table, "Item": {
        "pk": {"S": f"ORDER#{order_id}"}, "sk": {"S": "STATE"}, "status": {"S": "CONFIRMED"}}}}]}).encode()


class Function:
    """A GET's function: reads ``order_id``'s item (as moto would tell the cache) and answers how often it ran."""

    def __init__(self, cache: ReadCache, order_id: str = "o-1", *, also=None):
        self.cache, self.order_id, self.also, self.runs = cache, order_id, also, 0

    def __call__(self) -> dict:
        self.runs += 1
        self.cache.observe(GET, _get(ORDERS, self.order_id), True)
        if self.also is not None:
            self.also()
        return {"statusCode": 200, "headers": {"X-Correlation-Id": f"run-{self.runs}"}, "body": f"run {self.runs}"}


def _ask(cache: ReadCache, function: Function, key: str = "GET /orders/o-1") -> str:
    return cache.answer(key, function)[0]["body"]


# --- invalidation ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("table, order_id, again", [
    (ORDERS, "o-1", False),  # a write to what it read
    (ORDERS, "o-2", True),  # another order
    (naming.table("inventory"), "o-1", True),  # the same key in another service's table
])
def test_an_answer_is_given_again_until_a_write_names_what_it_read(table, order_id, again):
    cache = ReadCache(clock=FakeTime().clock)
    function = Function(cache)
    assert _ask(cache, function) == _ask(cache, function) == "run 1"
    cache.observe(WRITE, _write(table, order_id), True)
    assert _ask(cache, function) == ("run 1" if again else "run 2")


def test_an_erasure_drops_the_answers_that_opened_the_customers_data():
    """The order's answer shows an address opened with the customer's key: the user service's transaction deleting
    that key (in the key store, not the order service's table) drops it."""
    cache = ReadCache(clock=FakeTime().clock)
    key = json.dumps({"TableName": naming.CUSTOMER_KEYS_TABLE, "Key": {"userId": {"S": "u-1"}}}).encode()
    function = Function(cache, also=lambda: cache.observe(GET, key, True))
    assert _ask(cache, function) == _ask(cache, function) == "run 1"
    cache.observe(WRITE, json.dumps({"TransactItems": [
        {"Put": {"TableName": naming.table("user"), "Item": {"pk": {"S": "USER#u-1"}, "status": {"S": "ERASED"}}}},
        {"Delete": {"TableName": naming.CUSTOMER_KEYS_TABLE, "Key": {"userId": {"S": "u-1"}}}}]}).encode(), True)
    assert _ask(cache, function) == "run 2"


def test_a_write_while_the_function_runs_keeps_its_answer_from_being_given_again():
    cache = ReadCache(clock=FakeTime().clock)

    def consumer_writes() -> None:  # another thread's write, after the function read
        writer = threading.Thread(target=cache.observe, args=(WRITE, _write(ORDERS, "o-1"), True))
        writer.start()
        writer.join()

    function: Function  # made below, with this as what it also does

    def also() -> None:
        if function.runs == 1:
            consumer_writes()

    function = Function(cache, also=also)
    assert _ask(cache, function) == "run 1"
    assert _ask(cache, function) == "run 2"  # the first answer may hold the state before that write
    assert _ask(cache, function) == "run 2"


def test_a_write_from_another_process_over_moto_http_drops_the_answers_it_changes():
    from local import moto_server

    cache, served = ReadCache(clock=FakeTime().clock), []
    function = Function(cache)
    _ask(cache, function)

    def moto(environ, start_response):  # moto's app must still receive the body the cache looked at
        served.append(environ["wsgi.input"].read())
        start_response("200 OK", [])
        return [b"{}"]

    body = _write(ORDERS, "o-1")
    moto_server.add_observer(cache.observe)
    try:
        moto_server.serialized(moto)({"HTTP_X_AMZ_TARGET": WRITE, "CONTENT_LENGTH": str(len(body)),
                                      "wsgi.input": io.BytesIO(body), "PATH_INFO": "/", "REQUEST_METHOD": "POST"},
                                     lambda *_: None)
    finally:
        moto_server.remove_observer(cache.observe)
    assert served == [body]
    assert _ask(cache, function) == "run 2"


def test_an_answer_is_given_again_for_a_second_only():
    time = FakeTime()
    cache = ReadCache(clock=time.clock)
    function = Function(cache)
    assert _ask(cache, function) == "run 1"
    time.sleep(READ_CACHE_SECONDS * 0.9)
    assert _ask(cache, function) == "run 1"
    time.sleep(READ_CACHE_SECONDS * 0.1)  # a second after the function started, whatever moto saw
    assert _ask(cache, function) == "run 2"


@pytest.mark.parametrize("request_made, body, answered", [
    # a GET that writes: given again, the write would be skipped
    ("DynamoDB_20120810.PutItem", json.dumps({"TableName": "audit", "Item": {"pk": {"S": "x"}}}).encode(), True),
    ("AmazonSQS.SendMessage", b'{"QueueUrl": "q", "MessageBody": "m"}', True),
    (GET, _get(ORDERS, "o-9"), False),  # a request moto here did not serve: nothing would say when it changes
], ids=["writes", "sends", "served-elsewhere"])
def test_a_get_that_does_more_than_read_here_is_never_given_again(request_made, body, answered):
    cache = ReadCache(clock=FakeTime().clock)
    function = Function(cache, also=lambda: cache.observe(request_made, body, answered))
    assert [_ask(cache, function) for _ in range(2)] == ["run 1", "run 2"]


def test_a_failed_or_throttled_answer_is_not_given_again():
    cache = ReadCache(clock=FakeTime().clock)
    statuses = iter([500, 429, 200])

    def function():
        return {"statusCode": next(statuses), "headers": {}, "body": ""}

    assert [cache.answer("k", function)[0]["statusCode"] for _ in range(3)] == [500, 429, 200]


def test_what_a_read_depends_on():
    values = {":pk": {"S": "USER#u-1"}, ":e": {"S": "EVENT#"}}
    assert item_reads("Query", {"TableName": "t", "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
                                "ExpressionAttributeValues": values}) == [(b'"t"', (b'"USER#u-1"',))]
    # an item leaves an index's query on a write that need not name the index's key: any write to the table
    assert item_reads("Query", {"TableName": "t", "IndexName": "gsi1", "KeyConditionExpression": "gsi1pk = :pk",
                                "ExpressionAttributeValues": values}) == [(b'"t"', ())]
    assert item_reads("Scan", {"TableName": "t"}) == [(b'"t"', ())]
    assert item_reads("BatchGetItem", {"RequestItems": {"t": {"Keys": [{"pk": {"S": "a"}}, {"pk": {"N": "1"}}]}}}) \
        == [(b'"t"', (b'"a"',)), (b'"t"', (b'"1"',))]
    # a value JSON might write escaped is not matched on: the table's every write counts
    assert item_reads("GetItem", {"TableName": "t", "Key": {"pk": {"S": 'say "hi"'}}}) == [(b'"t"', ())]


def test_reads_and_writes_through_the_in_process_moto_are_seen(aws):
    """Real boto3 requests, as the runtime's functions make them: the cache reads what moto is asked."""
    from moto.core.botocore_stubber import BotocoreStubber

    from local import moto_server
    from shopstream import aws as clients

    moto_server._serialize_in_process_calls(BotocoreStubber)
    dynamodb = clients.client("dynamodb")
    key = {"pk": {"S": "ORDER#o-1"}, "sk": {"S": "STATE"}}
    dynamodb.put_item(TableName=ORDERS, Item={**key, "status": {"S": "PENDING"}})
    cache, runs = ReadCache(clock=FakeTime().clock), []

    def function():
        runs.append(dynamodb.get_item(TableName=ORDERS, Key=key)["Item"]["status"]["S"])
        return {"statusCode": 200, "headers": {}, "body": runs[-1]}

    moto_server.add_observer(cache.observe)
    try:
        assert [cache.answer("k", function)[0]["body"] for _ in range(2)] == ["PENDING", "PENDING"]
        other = {"pk": {"S": "ORDER#o-2"}, "sk": {"S": "STATE"}}
        writer = threading.Thread(target=lambda: dynamodb.put_item(TableName=ORDERS, Item={
            **other, "status": {"S": "PENDING"}}))
        writer.start()
        writer.join()
        assert cache.answer("k", function)[0]["body"] == "PENDING" and len(runs) == 1
        dynamodb.update_item(TableName=ORDERS, Key=key, UpdateExpression="SET #s = :s",
                             ExpressionAttributeNames={"#s": "status"},
                             ExpressionAttributeValues={":s": {"S": "CONFIRMED"}})
        assert cache.answer("k", function)[0]["body"] == "CONFIRMED" and len(runs) == 2
    finally:
        moto_server.remove_observer(cache.observe)


# --- through the gateway -----------------------------------------------------------------------------------------
@pytest.fixture
def gateway():
    """The gateway on a free port, its token the caller's name; ``answers`` lists what its function ran for."""
    from local.gateway import Gateway

    cache, answers = ReadCache(clock=FakeTime().clock), []

    def invoke(service, event):
        user = event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"]
        answers.append(user)
        return {"statusCode": 200, "body": json.dumps({"user": user}),
                "headers": {"X-Correlation-Id": f"run-{len(answers)}", "traceresponse": "00-span-01"}}

    served = Gateway(host="127.0.0.1", port=0, invoke=invoke, verify=lambda token: {"sub": token},
                     health=lambda: (200, {}), reads=cache)
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield SimpleNamespace(port=served.port, answers=answers)
    served.server.shutdown()
    served.server.server_close()


def _call(port: int, caller: str, path: str = "/orders/o-1", headers: dict | None = None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {caller}", **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}


def test_one_callers_answer_never_goes_to_another(gateway):
    first = [_call(gateway.port, "alice")[0] for _ in range(2)]
    second = [_call(gateway.port, "bob")[0] for _ in range(2)]
    assert first == [{"user": "alice"}] * 2 and second == [{"user": "bob"}] * 2
    assert gateway.answers == ["alice", "bob"]  # each caller's second read was given again
    _call(gateway.port, "alice", "/orders/o-2")
    assert gateway.answers == ["alice", "bob", "alice"]


def test_an_answer_given_again_has_its_own_correlation_id_and_no_span(gateway):
    answers = [_call(gateway.port, "alice")[1] for _ in range(3)]
    assert answers[0]["x-correlation-id"] == "run-1" and answers[0]["traceresponse"] == "00-span-01"
    ids = [headers["x-correlation-id"] for headers in answers]
    assert len(set(ids)) == 3 and all("traceresponse" not in headers for headers in answers[1:])
    assert gateway.answers == ["alice"]
    # a client's own id is part of the request: answered with it, its answer given only for it
    chosen = [_call(gateway.port, "alice", headers={"X-Correlation-Id": "mine"})[1]["x-correlation-id"]
              for _ in range(2)]
    assert chosen == ["run-2", "run-2"] and gateway.answers == ["alice", "alice"]


# --- scheduling --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method, ahead", [("GET", False), ("POST", True), ("DELETE", True)])
def test_only_requests_that_change_something_go_ahead_of_the_consumers(method, ahead):
    from local.http_events import http_event
    from local.moto_server import LOCK
    from local.runtime import LocalRuntime
    from local.stack import LocalStack

    runtime = LocalRuntime(LocalStack(external_bootstrap="127.0.0.1:1"))  # never started: no broker, no queue
    consumers_held: list[bool] = []

    def order_api(event, context):
        consumers_held.append(not LOCK._no_foreground.is_set())
        return {"statusCode": 200}

    runtime.apis = {"order": order_api}
    runtime._api_settings["order"] = naming.function_settings("order")
    runtime.invoke_api("order", http_event(method, "/orders/o-1"))
    assert consumers_held == [ahead]


def test_the_gateway_answers_without_waiting_for_the_clients_acknowledgement(gateway, monkeypatch):
    """A response leaves in two writes (headers, then body): with Nagle's algorithm on, the body waited for the
    client's delayed ACK of the headers, ~40 ms on every answer of a kept-alive connection. The gateway's
    connections send at once (TCP_NODELAY)."""
    import http.client
    import socket
    from http.server import BaseHTTPRequestHandler

    from local.gateway import Gateway

    served = Gateway(host="127.0.0.1", port=0, invoke=lambda service, event: {"statusCode": 200, "body": "{}"},
                     verify=lambda token: {"sub": token}, health=lambda: (200, {}))
    seen: list[int] = []
    handler = served.server.RequestHandlerClass
    assert isinstance(handler, type) and issubclass(handler, BaseHTTPRequestHandler)  # the gateway's own class
    setup = handler.setup

    def noted(self):
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(handler, "setup", noted)
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        connection.request("GET", "/orders/o-1", headers={"Authorization": "Bearer alice"})
        assert connection.getresponse().status == 200
        connection.close()
    finally:
        served.server.shutdown()
        served.server.server_close()
    assert seen and all(seen)
