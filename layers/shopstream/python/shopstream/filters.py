"""Event source mapping filters for the Kafka mappings: none, on purpose.

A filter may drop only records that are known and unwanted, never a poison record (which must reach
the function to be dead-lettered with its bytes). What AWS documents of Lambda's Kafka filtering does
not let any filter promise that:

- "Kafka messages must be UTF-8 encoded strings, either plain strings or in JSON format. [...] If your
  messages use another encoding [...] or if the message format doesn't match the FilterCriteria format,
  Lambda processes metadata filters only" (https://docs.aws.amazon.com/lambda/latest/dg/kafka-filtering.html).
  A Kafka mapping filters on ``value`` alone, so a filter holds no metadata filter: whether such a record
  then passes or is dropped is not stated. Non-UTF-8 bytes are in that case whatever the pattern.
- Which values count as "valid JSON" and which as a "plain string" is not stated either: ``42``,
  ``[1, 2]``, ``null``, ``true`` or ``"text"`` are JSON texts but not objects, so a pattern on
  ``value.eventType`` may not apply to them at all.
- ``{"prefix": ""}`` (the old catch-all for plain strings) is in no list of operators; and
  "Lambda drops messages that don't match all fields included in the filter"
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).

So the mappings carry no ``FilterCriteria``, and Lambda hands every record to the function. A filter
drops nothing. The consumer runtime skips, cheaply, the known event types of the topic that the handler
does not take (``unwanted_event_types``: by the ``eventType`` header without parsing the value, or by a
valid envelope's type) and dead-letters everything else it cannot apply (shopstream/consumer.py).
"""

from __future__ import annotations

from typing import Any

from shopstream import catalog


def unwanted_event_types(handler: catalog.HandlerSpec) -> list[str]:
    """The topic's known event types the handler does not take: the only records it skips."""
    on_topic = [e.name for e in catalog.EVENTS if e.topic == handler.topic]
    return sorted(set(on_topic) - set(handler.event_types))


def esm_filter_patterns(handler: catalog.HandlerSpec) -> list[dict[str, Any]]:
    """The mapping's filter patterns: none (see the module's docstring)."""
    return []


def passes(patterns: list[dict[str, Any]], value: bytes | None) -> bool:
    """Whether the mapping hands a record with these raw value bytes to the function (the local runner
    applies it). Without filter criteria Lambda sends every record: JSON of any kind, plain text, bytes
    that are not UTF-8, no value at all. With patterns, what Lambda does to a value that is not a JSON
    object is undocumented, so there is nothing to imitate: refused rather than guessed."""
    if patterns:
        raise ValueError("Kafka mappings carry no filters: Lambda's handling of values that are not JSON "
                         "objects is undocumented (shopstream/filters.py)")
    return True
