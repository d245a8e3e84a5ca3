"""Every function of the catalog running locally: mappings, outbox relays, schedules, the gateway."""

from __future__ import annotations

import gc
import threading
import time
from contextlib import nullcontext
from typing import Any

from confluent_kafka.admin import AdminClient

from local import auth, entry_points, moto_server, naming
from local.console import Console
from local.context import LocalLambdaContext
from local.destinations import GiveUp, failed_batch_destination
from local.gateway import Gateway
from local.mapping import FUNCTION_SLOT, KafkaMapping
from local.read_cache import ReadCache
from local.relay import StreamRelay
from local.stack import LocalStack
from local.streams import StreamReader
from local.traces import SpanStore
from shopstream import aws, catalog, names, tracing, transaction
from shopstream.api import MUTATING
from shopstream.config import Settings, override_settings
from shopstream.publisher import set_publisher
from shopstream.relay import OutboxRelay

RELAY_POLL_SECONDS = 0.1  # after a failed publish
RELAY_IDLE_SECONDS = 2.0  # read every stream at least this often (writes from other processes)
RELAY_RETRY_ATTEMPTS = 10  # locally by count; on AWS the mapping retries for up to 12 hours (stacks/service/)


class LocalRuntime:
    def __init__(self, stack: LocalStack, *, api_port: int = 8000, schedule_seconds: dict[str, float] | None = None):
        self.stack = stack
        self.api_port = api_port
        self.schedule_seconds = schedule_seconds or {}
        self.apis = {s.name: entry_points.api(s.name) for s in catalog.SERVICES if s.routes}
        # One API request at a time in this process. A Lambda execution environment serves one
        # request at a time, and Powertools relies on it: the request being served is kept on the
        # resolver (its route) and on a class shared by every resolver (the event itself), so two
        # requests at once, even to two services, could validate or answer each other's.
        self._api_lock = threading.Lock()
        self._api_settings: dict[str, Settings] = {}
        self.mappings: list[KafkaMapping] = []
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.gateway: Any = None
        self.console: Any = None
        self.relayed = 0
        self.relay_busy_seconds = 0.0
        self.traces: Any = None
        self.reads: Any = None  # the gateway's read cache (local/read_cache.py)

    # --- pieces -----------------------------------------------------------------------------
    def settings(self, service: str, handler: str | None = None) -> Settings:
        settings = naming.function_settings(
            service, handler, bootstrap_servers=self.stack.bootstrap_servers,
            dlq_url=self.stack.queue_urls[naming.dlq(service, handler)] if handler else None)
        # One key of a batch at a time: here every function shares one GIL and moto's one request at a time,
        # so keys side by side wait on nothing they could overlap and only race each other for the same items.
        return settings.model_copy(update={"handler_concurrency_cap": 1}) if handler else settings

    def send_on_failure(self, service: str, handler: str) -> GiveUp:
        return failed_batch_destination(aws.client, service, handler)

    def mapping(self, spec: catalog.ServiceSpec, handler: catalog.HandlerSpec, *, group_id: str | None = None,
                start_offsets: dict[int, int] | None = None) -> KafkaMapping:
        return KafkaMapping(spec.name, handler, entry_points.consumer(spec.name, handler),
                            self.settings(spec.name, handler.name), self.stack.bootstrap_servers,
                            self.send_on_failure(spec.name, handler.name), group_id=group_id,
                            start_offsets=start_offsets)

    def invoke_api(self, service: str, event: dict[str, Any]) -> dict[str, Any]:
        """One API request, under the API lock; a mutating one ahead of the consumers' AWS calls
        (moto_server.ForegroundFirstLock). Reads compete with the consumers as equals: a client polling
        an order's status would otherwise hold back the very saga it waits on (ten clients polling
        every 100 ms keep a request in flight most of the time)."""
        if service not in self._api_settings:  # built once: reading settings costs more than a request
            self._api_settings[service] = self.settings(service)

        method = str(((event.get("requestContext") or {}).get("http") or {}).get("method", "GET")).upper()
        priority = moto_server.LOCK.foreground() if method in MUTATING else nullcontext()
        with self._api_lock, priority, override_settings(self._api_settings[service]):
            return self.apis[service](event, LocalLambdaContext(function_name=f"{service}-api"))

    def _relay_loop(self) -> None:
        """The outbox relays of every service that publishes, as Lambda's stream mappings would run them.

        Instead of polling every stream all the time, a relay reads its stream when its table had a
        commit in this process (transaction listener), when its last batch did not go through, and
        at least every RELAY_IDLE_SECONDS (writes made by other processes, such as tools)."""
        relay = OutboxRelay()
        streams, dynamodb = self.stack.client("dynamodbstreams"), self.stack.client("dynamodb")
        relays = {naming.table(s.name): StreamRelay(
            s.name, StreamReader(streams, dynamodb.describe_table(TableName=naming.table(s.name))["Table"]
                                 ["LatestStreamArn"]), self.settings(s.name),
            retry_attempts=RELAY_RETRY_ATTEMPTS,
            give_up=failed_batch_destination(aws.client, s.name, names.RELAY))
            for s in catalog.SERVICES if s.publishes}
        written: set[str] = set(relays)
        woken = threading.Condition()

        def on_commit(uow: transaction.UnitOfWork) -> None:
            with woken:
                written.add(uow.table_name)
                woken.notify()

        transaction.add_commit_listener(on_commit)
        last_full = time.monotonic()
        try:
            while not self.stopping.is_set():
                with woken:
                    if not written:
                        woken.wait(RELAY_IDLE_SECONDS)
                    due = set(written)
                    written.clear()
                if time.monotonic() - last_full >= RELAY_IDLE_SECONDS:
                    due, last_full = set(relays), time.monotonic()
                started = time.perf_counter()
                with FUNCTION_SLOT:
                    polls = {table: relays[table].poll(relay) for table in due if table in relays}
                self.relayed += sum(read for read, _ in polls.values())
                self.relay_busy_seconds += time.perf_counter() - started
                retry = {table for table, (_, complete) in polls.items() if not complete}
                if retry:  # a failing publish: try again shortly, without spinning
                    self.stopping.wait(RELAY_POLL_SECONDS)
                    with woken:
                        written.update(retry)
        finally:
            transaction.remove_commit_listener(on_commit)

    def _schedule_loop(self, spec: catalog.ServiceSpec, schedule: catalog.ScheduleSpec) -> None:
        every = self.schedule_seconds.get(schedule.name, schedule.every_minutes * 60)
        function = entry_points.schedule(spec.name, schedule)
        while not self.stopping.wait(every):
            with override_settings(self.settings(spec.name)):
                function({"source": "aws.events", "detail-type": "Scheduled Event"},
                         LocalLambdaContext(function_name=f"{spec.name}-{schedule.name}"))

    def health(self) -> tuple[int, dict[str, Any]]:
        checks: dict[str, Any] = {}
        try:
            topics = AdminClient({"bootstrap.servers": self.stack.bootstrap_servers}).list_topics(timeout=2).topics
            checks["kafka"] = all(t.name in topics for t in catalog.TOPICS)
        except Exception as exc:  # reported, not raised
            checks["kafka"] = f"unreachable: {exc}"
        try:
            self.stack.client("dynamodb").describe_table(TableName=naming.table("order"))
            checks["aws"] = True
        except Exception as exc:
            checks["aws"] = f"unreachable: {exc}"
        checks["mappings"] = sum(m.assigned.is_set() for m in self.mappings)
        ready = checks["kafka"] is True and checks["aws"] is True and checks["mappings"] == len(self.mappings)
        return (200 if ready else 503), {"status": "ok" if ready else "starting", "checks": checks}

    # --- lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        for spec in catalog.SERVICES:
            for handler in spec.handlers:
                self.mappings.append(self.mapping(spec, handler).start())
            for schedule in spec.schedules:
                self.threads.append(threading.Thread(target=self._schedule_loop, args=(spec, schedule),
                                                     name=f"schedule-{schedule.name}", daemon=True))
        self.threads.append(threading.Thread(target=self._relay_loop, name="outbox-relays", daemon=True))

        # Every function here records its spans into this process's collector (the console's waterfall).
        self.traces = SpanStore()
        tracing.configure(self.traces.ingest, sample_rate=1.0)
        self.console = Console(bootstrap=self.stack.bootstrap_servers, invoke_api=self.invoke_api,
                               traces=self.traces)

        # Told of every AWS request, it tracks what each cached GET read: only with moto in this process (LocalStack
        # always runs it so), which sees every request, whichever process makes it.
        if getattr(self.stack, "moto", None) is not None:
            self.reads = ReadCache()
            moto_server.add_observer(self.reads.observe)
        self.gateway = Gateway(host="127.0.0.1", port=self.api_port, invoke=self.invoke_api, verify=auth.verify,
                               health=self.health, console=self.console, reads=self.reads)
        self.threads.append(threading.Thread(target=self.gateway.serve_forever, name="gateway", daemon=True))
        # Everything loaded so far (libraries, models, clients) lives as long as the process: out of
        # the collector's sight. moto's tables grow with every order, so collections are made rarer.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        for thread in self.threads:
            thread.start()
        return self

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.health()[0] == 200:
                return
            time.sleep(0.2)
        raise TimeoutError(f"local runtime not ready: {self.health()[1]}")

    def stop(self) -> None:
        self.stopping.set()
        if self.gateway is not None:
            self.gateway.shutdown()
        if self.console is not None:
            self.console.stop()
        if self.reads is not None:
            moto_server.remove_observer(self.reads.observe)
        for mapping in self.mappings:
            mapping.stopping.set()
        for mapping in self.mappings:
            mapping.stop()
        for thread in self.threads:
            thread.join(timeout=5)

        set_publisher(None)  # closes the producer before the broker goes away
        tracing.reset()
