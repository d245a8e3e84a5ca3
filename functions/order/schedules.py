"""The order service's scheduled function (EventBridge rule)."""

from __future__ import annotations

from . import logic


def sweep_saga_timeouts(event, context):
    return {"cancelled": logic.sweep_timeouts()}
