"""A small HTTP client for the API (demo, e2e tests, benchmarks; the black-box suite against any deployment)."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol, TypedDict

from confluent_kafka import Consumer

from local import auth
from shopstream import long_poll


class TokenSource(Protocol):
    """Who a test user is to the API: a bearer token, and the user id the API will see (its subject)."""

    def token(self, user: str, admin: bool) -> str: ...

    def user_id(self, user: str) -> str: ...


class LocalTokens:
    """Tokens signed with the local stack's secret (local/auth.py): the user id is the name given."""

    def __init__(self, secret_path: Path = auth.SECRET_FILE):
        self.secret_path = secret_path

    def token(self, user: str, admin: bool) -> str:
        return auth.issue(user, admin=admin, path=self.secret_path)

    def user_id(self, user: str) -> str:
        return user


class Caller(TypedDict):
    """Who makes a call, as ``ApiClient.call`` takes it: ``client.call("GET", path, **caller)``."""

    user: str
    admin: bool


class ApiClient:
    def __init__(self, base_url: str, secret_path: Path = auth.SECRET_FILE, *, tokens: TokenSource | None = None):
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens or LocalTokens(secret_path)
        self._tokens: dict[tuple[str, bool], str] = {}

    def token(self, user: str, admin: bool = False) -> str:
        key = (user, admin)
        if key not in self._tokens:
            self._tokens[key] = self.tokens.token(user, admin)
        return self._tokens[key]

    def user_id(self, user: str) -> str:
        """The id the API knows ``user`` by (the token's subject)."""
        return self.tokens.user_id(user)

    def call(self, method: str, path: str, *, user: str | None = None, admin: bool = False, body: Any = None,
             headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.base_url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json", **(headers or {})})
        if user:
            request.add_header("Authorization", f"Bearer {self.token(user, admin)}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw, status, got = response.read(), response.status, dict(response.headers)
        except urllib.error.HTTPError as error:
            raw, status, got = error.read(), error.code, dict(error.headers)
        return status, json.loads(raw) if raw else None, got

    def await_order(self, order_id: str, user: str, *statuses: str, admin: bool = False,
                    timeout: float = 60) -> tuple[dict[str, Any], str]:
        """The order once it is in one of ``statuses`` or can no longer come to one, and the outcome (reached,
        unreachable; timeout if ``timeout`` passed first): long-polls (GET /orders/{id}?waitFor=), the next one
        asked when one answers timeout. Throttled or failed asks (429, 5xx) are asked again a second later."""
        deadline = time.monotonic() + timeout
        while True:
            seconds = max(0, min(long_poll.MAX_TIMEOUT_SECONDS, math.ceil(deadline - time.monotonic())))
            status, body, headers = self.call(
                "GET", f"/orders/{order_id}?{long_poll.WAIT_FOR_PARAMETER}={','.join(statuses)}"
                       f"&{long_poll.TIMEOUT_PARAMETER}={seconds}", user=user, admin=admin)
            if (status == 429 or status >= 500) and time.monotonic() + 1 < deadline:
                time.sleep(1)
                continue
            if status != 200:
                raise RuntimeError(f"waiting on order {order_id}: {status} {body}")
            outcome = next(v for k, v in headers.items() if k.lower() == long_poll.OUTCOME_HEADER.lower())
            if outcome != "timeout" or time.monotonic() >= deadline:
                return body, outcome

    def wait_until(self, predicate, timeout: float = 60, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError("condition not met in time")
            time.sleep(interval)

    def healthy(self) -> bool:
        try:
            return self.call("GET", "/health")[0] == 200
        except OSError:
            return False


def partition_numbers(consumer: Any, topic_name: str) -> list[int]:
    """The topic's partitions as the cluster has them: an environment's count may differ from the catalog's
    (cdk.json `partitions`; a local runtime creates dev's)."""
    metadata = consumer.list_topics(topic_name, timeout=10).topics[topic_name]
    return sorted(metadata.partitions)


class OrderWatcher:
    """Sees orders settle by reading order-events on the broker (their OrderConfirmed or
    OrderCancelled), so that waiting for many orders adds no load to the API."""

    TERMINAL = frozenset({"OrderConfirmed", "OrderCancelled"})

    def __init__(self, bootstrap: str):
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watch-{time.time_ns()}",
                                  "auto.offset.reset": "latest", "session.timeout.ms": 6000,
                                  "fetch.wait.max.ms": 10})
        self.assigned = threading.Event()
        self.consumer.subscribe(["order-events"], on_assign=lambda *_: self.assigned.set())
        self.settled_at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="order-watcher", daemon=True)
        self.thread.start()
        self.assigned.wait(30)

    def _run(self) -> None:
        while not self.stopping.is_set():
            for message in self.consumer.consume(500, 0.05):
                if message.error() is not None:
                    continue
                body = json.loads(message.value() or b"{}")
                if body.get("eventType") in self.TERMINAL:
                    with self.lock:
                        self.settled_at.setdefault(body["data"]["orderId"], time.monotonic())

    def settled(self, order_ids: set[str]) -> set[str]:
        with self.lock:
            return order_ids & self.settled_at.keys()

    def wait_for(self, order_ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.settled(order_ids)) < len(order_ids):
            time.sleep(0.005)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.consumer.close()
