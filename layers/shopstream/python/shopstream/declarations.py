"""Where an event is declared: on its model, in its topic's module (shopstream.events.<topic>).

A model becomes an event version of the catalog by its topic's decorator::

    order_event = TopicEvents("order-events", key="orderId")

    @order_event                                # OrderConfirmed v1
    class OrderConfirmed(WireModel): ...

    @order_event.version(2, of="OrderCreated")  # OrderCreated v2
    class OrderCreatedV2(OrderCreated): ...

That is the one place an event is declared. ``make generate`` reads the declarations into the catalog's table
(shopstream/event_table.py) and the events package's index (shopstream/events/_index.py), so the catalog knows every
event without importing a model (a cold start builds only the models its function uses; docs/decisions.md,
2026-11-29). This module imports nothing of the project: the models, the envelope and the catalog all stand on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

Model = TypeVar("Model", bound=type)


@dataclass(frozen=True)
class Declaration:
    name: str  # the envelope's eventType
    version: str  # its eventVersion: v1, v2, ...
    topic: str
    key_field: str  # the data field (camelCase, as on the wire) whose value is the record's key
    model_module: str  # shopstream.events.<topic>
    model_name: str


_DECLARED: dict[type, Declaration] = {}


class TopicEvents:
    """The decorator a topic's module declares its events with, for one record key (a topic may use two)."""

    def __init__(self, topic: str, *, key: str) -> None:
        self.topic = topic
        self.key = key

    def __call__(self, model: Model) -> Model:
        """Version 1 of the event named as the model."""
        return self._declare(model, model.__name__, 1)

    def version(self, number: int, *, of: str) -> Callable[[Model], Model]:
        """Version ``number`` of the event ``of`` (its classes: ``OrderCreatedV1``, ``OrderCreatedV2``, ...)."""
        return lambda model: self._declare(model, of, number)

    def _declare(self, model: Model, name: str, number: int) -> Model:
        if model in _DECLARED:
            raise TypeError(f"{model.__name__} is declared twice")
        _DECLARED[model] = Declaration(name, f"v{number}", self.topic, self.key, model.__module__, model.__name__)
        return model


def declaration_of(model: type) -> Declaration:
    """The event version a model is declared as: KeyError for any other model (a subclass, a namesake)."""
    declared = _DECLARED.get(model)
    if declared is None:
        raise KeyError(f"{model.__name__} is not an event version of the catalog")
    return declared


def declared() -> tuple[Declaration, ...]:
    """Every declaration of the modules imported so far, in the order they were made."""
    return tuple(_DECLARED.values())
