"""What a service's logic receives from the consumer runtime (shopstream/consumer.py): a validated
event, and the exception that rejects one for good. Kept apart so that logic (which the API function
loads too) does not load the runtime."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from shopstream.envelope import EventEnvelope

DataT = TypeVar("DataT", bound=BaseModel)


class PoisonRecord(Exception):
    """A record that no retry can fix. Raise it from a handler for a business-level reject."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(frozen=True)
class InboundEvent(Generic[DataT]):
    """A validated event: ``data`` is the catalog's model for its (eventType, eventVersion), so
    handlers dispatch on its type (``match event.data: case OrderCreated(): ...``)."""

    envelope: EventEnvelope
    data: DataT
    topic: str
    partition: int
    offset: int

    @property
    def event_type(self) -> str:
        return self.envelope.event_type


@dataclass(frozen=True)
class Handled(Generic[DataT]):
    """An event its handler applied in this batch, and what the handler returned for it (None for most): what a
    consumer's ``after_batch`` gets (shopstream.consumer), e.g. the analytics' counts, written once per batch."""

    event: InboundEvent[DataT]
    outcome: object = None
