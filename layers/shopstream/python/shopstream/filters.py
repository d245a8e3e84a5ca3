"""Event source mapping filters for a handler that takes only some of its topic's events.

Lambda filters Kafka records on ``value`` only, and drops records a filter does not match.
A plain "eventType is one of X" filter would silently drop poison records (not JSON, no
eventType), which must reach the function to be dead-lettered. So the filters drop only
what is known and unwanted, and let everything else through:

1. JSON with an eventType that is not one of the topic's other known types
2. JSON without an eventType
3. a value that is not a JSON object (a plain string)
"""

from __future__ import annotations

from typing import Any

from shopstream import catalog


def unwanted_event_types(handler: catalog.HandlerSpec) -> list[str]:
    on_topic = [e.name for e in catalog.EVENTS if e.topic == handler.topic]
    return sorted(set(on_topic) - set(handler.event_types))


def esm_filter_patterns(handler: catalog.HandlerSpec) -> list[dict[str, Any]]:
    unwanted = unwanted_event_types(handler)
    if not unwanted:
        return []
    return [
        {"value": {"eventType": [{"anything-but": unwanted}]}},
        {"value": {"eventType": [{"exists": False}]}},
        {"value": [{"prefix": ""}]},
    ]


def passes(patterns: list[dict[str, Any]], value: Any) -> bool:
    """How the mapping applies these patterns to a decoded value (used by the local runner)."""
    if not patterns:
        return True
    if not isinstance(value, dict):
        return True  # pattern 3
    if "eventType" not in value:
        return True  # pattern 2
    return value["eventType"] not in patterns[0]["value"]["eventType"][0]["anything-but"]
