"""Typed payloads (the ``data`` of the envelope) of every event type and version: a module per topic
(``shopstream.events.order`` holds the order-events), and what several topics share in
``shopstream.events.common``.

``from shopstream.events import OrderCreated`` loads the order-events module only: a function loads the
models of the topics it uses, not the whole catalog (a cold start builds no model it does not use;
docs/decisions.md, 2026-11-29). An event is declared on its model, in its topic's module
(shopstream.declarations); ``make generate`` derives from the declarations the catalog's table and this
package's index (_index.py), so the catalog knows every event without importing a model (``model_of``).

Compatibility rule: a later change to an existing version's model may only add optional fields.
Anything else is a new version with its own model (see docs/events.md).

An event type with several versions has a class that says what every version says (handlers match
it: ``case OrderCreated():`` takes v1 and v2) and one subclass per version (``OrderCreatedV1``,
``OrderCreatedV2``), each declared as its version. Personal fields are marked with
``personal(kind)`` (shopstream.personal); from v2 on they travel sealed for the customer.
"""

from __future__ import annotations

import copy
import importlib
from typing import TYPE_CHECKING, Any

from shopstream.events._index import NAMES

if TYPE_CHECKING:  # what type checkers see: every name, as if defined here
    from shopstream.catalog import EventSpec
    from shopstream.envelope import WireModel
    from shopstream.events._index import *  # noqa: F403

_MODULE_OF = {name: module for module, names in NAMES.items() for name in names}


def module_of(name: str) -> str:
    """The module that defines an event model (or a shared type): ``shopstream.events.<topic>``."""
    return f"{__name__}.{_MODULE_OF[name]}"


def model_of(spec: EventSpec) -> type[WireModel]:
    """The event version's pydantic model, imported on first use (its topic's module only). Every record a consumer
    parses asks: after the first, the name is this module's own attribute (``__getattr__`` keeps it)."""
    found = globals().get(spec.model_name)
    model: type[WireModel] = found if found is not None else __getattr__(spec.model_name)
    return model


def example_of(spec: EventSpec) -> dict[str, Any]:
    """The event version's example ``data`` (camelCase), as its model gives it (events.common.example): a copy."""
    extra: Any = model_of(spec).model_config.get("json_schema_extra")
    example: dict[str, Any] = extra["examples"][0]
    return copy.deepcopy(example)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_of(name)), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
