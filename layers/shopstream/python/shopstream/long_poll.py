"""Long-polls: a read that answers once what the client waits for holds, or when its time is up.

``GET /orders/{orderId}?waitFor=CONFIRMED,CANCELLED&timeoutSeconds=20`` (functions/order/api.py) is one. On
AWS the function waits: it reads again at a backoff (``INTERVALS``: 100 ms growing to 500 ms) until the
answer is settled or the deadline, which is the client's ``timeoutSeconds`` or the function's own remaining
time less ``ANSWER_MARGIN_SECONDS``, whichever comes first (``budget``). The answer carries
``OUTCOME_HEADER``: ``reached``, ``unreachable`` or ``timeout``. Locally the gateway waits instead
(local/gateway.py: every API request there runs under one lock), with this same loop and backoff.

The loop is pure: the read, the clock and the sleep are given (tests pass fakes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Literal, TypeVar

WAIT_FOR_PARAMETER = "waitFor"
TIMEOUT_PARAMETER = "timeoutSeconds"
OUTCOME_HEADER = "X-Wait-Outcome"
Outcome = Literal["reached", "unreachable", "timeout"]
OUTCOMES: tuple[Outcome, ...] = ("reached", "unreachable", "timeout")

# API Gateway's HTTP API gives an integration at most 30 seconds, not raisable (CDK takes 29, its default).
# The longest wait plus the margin to answer fits the function's timeout, which is under the integration's.
INTEGRATION_TIMEOUT_SECONDS = 29
LONG_POLL_FUNCTION_TIMEOUT_SECONDS = 28  # an API function with a long-poll route (stacks/service/api.py)
MAX_TIMEOUT_SECONDS = 25
DEFAULT_TIMEOUT_SECONDS = 20
ANSWER_MARGIN_SECONDS = 2.0  # of the function's remaining time, kept to read once more and answer

FIRST_INTERVAL_SECONDS = 0.1
INTERVAL_GROWTH = 1.5
MAX_INTERVAL_SECONDS = 0.5

T = TypeVar("T")


def intervals() -> Iterator[float]:
    """The waits between reads: 0.1, 0.15, 0.225, 0.34, then 0.5 s for good (~2.5 reads a second)."""
    interval = FIRST_INTERVAL_SECONDS
    while True:
        yield interval
        interval = min(interval * INTERVAL_GROWTH, MAX_INTERVAL_SECONDS)


def budget(timeout_seconds: float, remaining_millis: int, margin_seconds: float = ANSWER_MARGIN_SECONDS) -> float:
    """How long the function may wait: the client's timeout, cut to its own remaining time less the margin."""
    return max(0.0, min(float(timeout_seconds), remaining_millis / 1000 - margin_seconds))


def requested_seconds(raw: str | None) -> int | None:
    """``timeoutSeconds`` as the API takes it (absent: the default), or None if the API would refuse it."""
    if raw is None:
        return DEFAULT_TIMEOUT_SECONDS
    try:
        seconds = int(raw)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= MAX_TIMEOUT_SECONDS else None


def wait(read: Callable[[], T], settled: Callable[[T], bool], *, seconds: float,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], object] = time.sleep,
         first: T | None = None, pauses: Iterable[float] | None = None) -> T:
    """Read (``first`` stands for the first read when given) until ``settled`` or ``seconds`` have passed, with
    the ``pauses`` between reads (by default ``intervals()``); the last value read. The last read is made at
    the deadline, so a timeout answers with the state then."""
    deadline = clock() + seconds
    value = read() if first is None else first
    waits = iter(pauses) if pauses is not None else intervals()
    while not settled(value):
        left = deadline - clock()
        if left <= 0:
            break
        sleep(min(next(waits), left))
        value = read()
    return value
