"""The cart service's scheduled function (EventBridge rule)."""

from __future__ import annotations

from shopstream import coldstart

from . import logic


@coldstart.entry_point
def sweep_abandoned_carts(event, context):
    return {"abandoned": logic.sweep_abandoned()}
