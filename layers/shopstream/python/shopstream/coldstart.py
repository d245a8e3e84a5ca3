"""A function's cold start without cyclic garbage collection.

Importing boto3, Powertools, pydantic and the service, building the models and the first clients
allocates hundreds of thousands of objects that live as long as the execution environment; the
collector walks them again and again meanwhile (tens of milliseconds of an init, measured in
bench/results.md, section 1). On Lambda, collection is paused from the moment a service package is
imported until the end of the first invocation; then it resumes, and what init built is frozen
(``gc.freeze``: never walked again). Anywhere else (tests, the local runtime, tools) nothing changes.
"""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

_paused = False


def pause() -> None:
    """Called where a function's code starts loading (each service package)."""
    global _paused
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and gc.isenabled() and not _paused:
        gc.disable()
        _paused = True


def resume() -> None:
    """Called when an invocation ends: the first one resumes collection; later ones cost a check."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()


def entry_point(function: F) -> F:
    """A Lambda handler of its own (a schedule, the relay): collection resumes when its first call ends."""
    @functools.wraps(function)
    def handle(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        finally:
            resume()
    return handle  # type: ignore[return-value]  # same signature: functools.wraps
