"""Pages of a listing: at most ``limit`` items, and an opaque cursor to the rest.

A Lambda function's response is at most 6 MB (API Gateway answers 5xx beyond it), so no route returns
an unbounded list: each list route takes ``limit`` (bounded; its maximum times its largest item stays
well under 6 MB, worked out where the bound is declared) and ``cursor``, and answers ``nextCursor``
while there may be more.

A cursor is where DynamoDB stopped (its LastEvaluatedKey) without the partition key, as base64url JSON.
Reading one back is strict: exactly the key attributes the listing pages by, strings within DynamoDB's
key sizes; the partition comes from the request, never from the cursor. A forged cursor can at most
skip within the caller's own listing, and a malformed or foreign one is a 422 naming the parameter,
never a DynamoDB error (500).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from shopstream.request import Unprocessable

# A cursor holds at most three key values of at most 1,024 bytes (2,048 for a partition key of the
# table): ~4.2 KB of JSON, ~5.6 KB in base64.
MAX_CURSOR_LENGTH = 6000
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
CURSOR_DESCRIPTION = ("Where the previous page stopped: its nextCursor, as it was given. Absent: the first page. "
                      "A cursor that this listing did not issue is a 422")
LIMIT_DESCRIPTION = "At most this many items in the page"
_cursor_text = re.compile(CURSOR_PATTERN)
# DynamoDB's key sizes: a partition key at most 2,048 bytes, a sort key at most 1,024.
_MAX_KEY_BYTES = {"pk": 2048, "gsi1pk": 2048}
_MAX_SORT_KEY_BYTES = 1024


class InvalidCursor(Unprocessable):
    def __init__(self, why: str):
        super().__init__(f"invalid request: query.cursor: {why}")


def cursor_after(last_key: Mapping[str, Any] | None, partition: str) -> str | None:
    """The cursor to the page after one that stopped at ``last_key`` (None: it was the last page)."""
    if not last_key:
        return None
    position = {name: value for name, value in last_key.items() if name != partition}
    text = json.dumps(position, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def start_key(cursor: str | None, partition: Mapping[str, str], fields: tuple[str, ...]) -> dict[str, str] | None:
    """DynamoDB's ExclusiveStartKey for ``cursor``: its ``fields`` (exactly those) and the request's
    ``partition``. Raises InvalidCursor for anything this listing could not have issued."""
    if cursor is None:
        return None
    if len(cursor) > MAX_CURSOR_LENGTH or not _cursor_text.match(cursor):
        raise InvalidCursor("not a cursor")
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidCursor("not a cursor") from None
    if not isinstance(position, dict) or set(position) != set(fields):
        raise InvalidCursor("not issued by this listing")
    for name, value in position.items():
        if not isinstance(value, str) or not 0 < _utf8_length(value) <= _MAX_KEY_BYTES.get(name, _MAX_SORT_KEY_BYTES):
            raise InvalidCursor("not issued by this listing")
    return {**position, **partition}


def _utf8_length(value: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: never in a key DynamoDB returned
        return -1


def first_within(items: list[dict[str, Any]], budget: int) -> tuple[list[dict[str, Any]], int]:
    """The first of ``items`` whose JSON (compact, ASCII) fits in ``budget`` bytes, at least one; and how
    many were left out. For a list that is not paged but must stay bounded (the open alerts)."""
    kept: list[dict[str, Any]] = []
    size = 0
    for item in items:
        size += len(json.dumps(item, separators=(",", ":"), default=str))
        if kept and size > budget:
            break
        kept.append(item)
    return kept, len(items) - len(kept)
