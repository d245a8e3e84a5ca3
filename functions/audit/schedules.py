"""The audit service's scheduled function (EventBridge rule)."""

from __future__ import annotations

from typing import Any

from . import logic


def close_windows(event: dict[str, Any], context: Any) -> dict[str, int]:
    return {"closed": logic.close_windows()}
