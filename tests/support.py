"""What tests share beyond local.samples (events and records built from the catalog): the strongest reader of
personal data, a fake clock, the check that a lookup found something, who a request is made as."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, TypedDict, TypeVar

from shopstream import catalog, personal

T = TypeVar("T")


def present(value: T | None) -> T:
    """``value``, which the test expects a lookup to have found (an AssertionError if it is None): what an optional
    result is read as where the test reads it in place."""
    assert value is not None, "the lookup found nothing"
    return value


class Who(TypedDict):
    """Who a request to the local runtime is made as: the ``user`` and ``admin`` keywords of its clients."""

    user: str
    admin: bool


def topics_by_name() -> dict[str, catalog.Topic]:
    return {t.name: t for t in catalog.TOPICS}


# --- the strongest reader of personal data (erasure tests) -----------------------------------------------
_B64 = re.compile(r"^[A-Za-z0-9+/_-]{16,}={0,2}$")


def readable_texts(value: Any, *, open_sealed: bool = True, depth: int = 0) -> Iterator[str]:
    """Every text reachable from ``value``: JSON and base64 decoded, sealed values opened where a key exists."""
    if depth > 14:
        return
    if isinstance(value, bytes | bytearray):
        try:
            text = bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return
        yield from readable_texts(text, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, str):
        yield value
        for inner in _decoded_forms(value.strip()):
            yield from readable_texts(inner, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, dict):
        if open_sealed and personal.is_sealed(value):
            try:
                opened = json.dumps(personal.unseal(value, value["kind"]), ensure_ascii=False)
            except personal.Unreadable:
                opened = None  # the key is gone: nothing readable
            yield from readable_texts(opened, open_sealed=open_sealed, depth=depth + 1)
        for inner in value.values():
            yield from readable_texts(inner, open_sealed=open_sealed, depth=depth + 1)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from readable_texts(inner, open_sealed=open_sealed, depth=depth + 1)


def _decoded_forms(text: str) -> list[Any]:
    """What a text holds beyond itself: its JSON, its JSON Lines (an archive object), or its base64's bytes."""
    if text[:1] in ("{", "["):
        try:
            return [json.loads(text)]
        except ValueError:  # JSON Lines, or not JSON
            lines = text.splitlines()
            return lines if len(lines) > 1 else []
    if _B64.match(text):
        try:
            return [base64.b64decode(text + "=" * (-len(text) % 4),
                                     altchars=b"-_" if "-" in text or "_" in text else None)]
        except (binascii.Error, ValueError):
            return []
    return []


def readable_traces(sources: dict[str, Any], needles: tuple[str, ...], *, open_sealed: bool = True) -> list[str]:
    """``where: needle`` for every needle readable in each source (case-insensitive). Sealed values are opened
    with the settings in force (a reader with the key store and kms:Decrypt)."""
    found = []
    for where, value in sources.items():
        for text in readable_texts(value, open_sealed=open_sealed):
            folded = text.casefold()
            found += [f"{where}: {needle!r}" for needle in needles if needle.casefold() in folded]
    return sorted(set(found))


class FakeTime:
    """A clock that only sleeps move (long-polls' tests): ``on_sleep`` runs at each sleep with the number of
    sleeps so far (the world moving meanwhile)."""

    def __init__(self, on_sleep: Callable[[int], object] | None = None):
        self.now, self.slept, self.on_sleep = 1000.0, list[float](), on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.slept))
