"""The audit service's scheduled function (EventBridge rule)."""

from __future__ import annotations

from typing import Any

from shopstream import coldstart

from . import logic


@coldstart.entry_point
def close_windows(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"closed": logic.close_windows()}
