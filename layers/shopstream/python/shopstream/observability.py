"""Powertools Logger, Metrics and Tracer, created on first use.

The Tracer is only made when tracing is enabled (its class comes with Powertools' package; aws_xray_sdk,
which making one imports, does not), which keeps the X-Ray SDK out of the cold start of functions and local
processes that do not trace.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "shopstream"


@cache
def logger() -> Logger:
    return Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "shopstream"))


@cache
def metrics() -> Metrics:
    return Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))


def flush_metrics() -> None:
    """Emit this invocation's metrics (EMF on stdout); nothing when none were recorded.

    With POWERTOOLS_METRICS_DISABLED, Powertools neither prints nor clears, yet prints anyway
    once a metric holds 100 values; clearing here keeps disabled metrics silent and bounded.
    """
    current = metrics()
    if not current.metric_set:
        return
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        current.clear_metrics()
    else:
        current.flush_metrics()


class _Sums:
    """Metric values added during one batch, summed per metric (one EMF value each when the batch ends)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: dict[str, tuple[MetricUnit | str, float]] = {}

    def add(self, name: str, unit: MetricUnit | str, value: float) -> None:
        with self.lock:
            previous = self.values.get(name, (unit, 0.0))[1]
            self.values[name] = (unit, previous + value)


_batch_sums: ContextVar[_Sums | None] = ContextVar("shopstream_batch_metric_sums", default=None)
_metrics_lock = threading.Lock()


def add_metric(name: str, unit: MetricUnit | str, value: float) -> None:
    """Add to this invocation's metrics, from any thread. Powertools' Metrics is not thread-safe (its add_metric
    reads, creates and stores a metric's entry without a lock, and flushes at exactly 100 values, a count two
    threads can step past), and a batch's records run on threads (shopstream/batch.py). Inside a batch
    (``metrics_per_batch``) the values are summed and added once when it ends; elsewhere under a lock."""
    sums = _batch_sums.get()
    if sums is not None:
        sums.add(name, unit, value)
        return
    with _metrics_lock:
        metrics().add_metric(name=name, unit=unit, value=value)


@contextmanager
def metrics_per_batch() -> Iterator[None]:
    """What ``add_metric`` is given inside, from any of the batch's threads, summed per metric and added at the end."""
    sums = _Sums()
    token = _batch_sums.set(sums)
    try:
        yield
    finally:
        _batch_sums.reset(token)
        with _metrics_lock:
            for name, (unit, value) in sums.values.items():
                metrics().add_metric(name=name, unit=unit, value=value)


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true") and bool(
        os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("_X_AMZN_TRACE_ID")
    )


@cache
def tracer() -> Any | None:
    if not tracing_enabled():
        return None
    return Tracer()
