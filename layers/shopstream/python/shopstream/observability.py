"""Powertools Logger, Metrics and Tracer, created on first use.

The Tracer (and aws_xray_sdk behind it) is only imported when tracing is enabled, which
keeps it out of the cold start of functions and local processes that do not trace.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics

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


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true") and bool(
        os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and os.environ.get("_X_AMZN_TRACE_ID")
    )


@cache
def tracer() -> Any | None:
    if not tracing_enabled():
        return None
    from aws_lambda_powertools import Tracer

    return Tracer()
