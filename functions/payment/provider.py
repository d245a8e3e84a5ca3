"""Payment provider adapter. The bundled simulator follows Stripe's test payment methods:

pm_card_visa succeeds; pm_card_chargeDeclined -> card_declined; pm_card_insufficientFunds ->
insufficient_funds. Charges are idempotent by key (as with Stripe's Idempotency-Key): a retry
after a lost response returns the first result and never charges twice. Its ledger lives in
the payment table (``PROVIDER#<key>``), standing in for the provider's own records.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from shopstream import dynamo
from shopstream.transaction import UnitOfWork, try_commit

from .settings import settings

DECLINES = {"pm_card_chargeDeclined": "card_declined", "pm_card_insufficientFunds": "insufficient_funds"}


class ProviderTimeout(Exception):
    """No answer from the provider; the charge may or may not have happened. Retry with the same key."""


@dataclass(frozen=True)
class ProviderResult:
    succeeded: bool
    reference: str
    decline_code: str | None = None


class PaymentProvider(Protocol):
    def charge(self, *, idempotency_key: str, amount: int, currency: str, method: str) -> ProviderResult: ...

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> ProviderResult: ...


class SimulatedProvider:
    def __init__(self, fault_rate: float | None = None):
        self.fault_rate = fault_rate
        self.timeouts_to_inject = 0  # tests: the next N calls time out *after* recording the charge
        self.calls = 0

    def _fault(self, key: str) -> bool:
        if self.timeouts_to_inject > 0:
            self.timeouts_to_inject -= 1
            return True
        rate = settings().payment_simulator_fault_rate if self.fault_rate is None else self.fault_rate
        # Deterministic per key and attempt, so a run can be replayed exactly.
        digest = hashlib.sha256(f"{key}:{self.calls}".encode()).digest()[0] / 255
        return digest < rate

    def _once(self, key: str, result: ProviderResult, amount: int) -> ProviderResult:
        """The first result recorded under ``key`` (recording ``result`` and the amount moved if there is none
        yet: the ledger says how much money moved, as the provider's own records would)."""
        self.calls += 1
        latency = settings().payment_simulator_latency_ms
        if latency:
            time.sleep(latency / 1000)  # the provider's round trip: a wait, not CPU
        uow = UnitOfWork()
        uow.put({"pk": f"PROVIDER#{key}", "sk": "LEDGER", "succeeded": result.succeeded,
                 "reference": result.reference, "declineCode": result.decline_code,
                 "amount": amount if result.succeeded else 0},
                condition="attribute_not_exists(pk)")
        if not try_commit(uow):  # recorded before (a retry): answer what was answered then
            existing = dynamo.get(f"PROVIDER#{key}", "LEDGER")
            assert existing is not None, key
            result = ProviderResult(existing["succeeded"], existing["reference"], existing.get("declineCode"))
        if self._fault(key):
            raise ProviderTimeout(f"provider did not answer for {key}")
        return result

    def charge(self, *, idempotency_key: str, amount: int, currency: str, method: str) -> ProviderResult:
        decline = DECLINES.get(method)
        reference = f"ch_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"
        return self._once(idempotency_key, ProviderResult(decline is None, reference, decline), amount)

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> ProviderResult:
        reference = f"re_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"
        return self._once(idempotency_key, ProviderResult(True, reference), amount)


provider: PaymentProvider = SimulatedProvider()
