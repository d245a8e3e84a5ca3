"""The order service's scheduled function (EventBridge rule)."""

from __future__ import annotations

from shopstream import coldstart

from . import logic


@coldstart.entry_point
def sweep_saga_timeouts(event, context):
    return {"cancelled": logic.sweep_timeouts()}
