"""Payment provider adapter: authorise, then capture or void; refund what was captured. The bundled simulator
follows Stripe's test payment methods and its manual capture (a PaymentIntent with ``capture_method=manual``):

pm_card_visa is authorised; pm_card_chargeDeclined -> card_declined; pm_card_insufficientFunds ->
insufficient_funds (both declined at the authorisation). An authorisation is captured or voided, once: the
provider refuses to capture a voided one or to void a captured one. Every call is idempotent by its own key
(as with Stripe's Idempotency-Key): a retry after a lost response returns the first result and never moves
money twice. Its ledger lives in the payment table (``PROVIDER#<key>/LEDGER`` per call, and
``PROVIDER#<authorisation reference>/AUTHORISATION`` for what became of each authorisation), standing in for
the provider's own records.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from shopstream import dynamo
from shopstream.transaction import ConditionFailed, UnitOfWork, try_commit

from .settings import settings

DECLINES = {"pm_card_chargeDeclined": "card_declined", "pm_card_insufficientFunds": "insufficient_funds"}
# What an authorisation can become, and from what (the simulator refuses anything else, as a provider would).
AUTHORISATION_MOVES = {"capture": ("AUTHORISED", "CAPTURED"), "void": ("AUTHORISED", "VOIDED")}


class ProviderTimeout(Exception):
    """No answer from the provider; the call may or may not have happened. Retry with the same key."""


@dataclass(frozen=True)
class ProviderResult:
    succeeded: bool
    reference: str
    decline_code: str | None = None


class PaymentProvider(Protocol):
    def authorise(self, *, idempotency_key: str, amount: int, currency: str, method: str) -> ProviderResult: ...

    def capture(self, *, idempotency_key: str, authorisation_reference: str, amount: int) -> ProviderResult: ...

    def void(self, *, idempotency_key: str, authorisation_reference: str) -> ProviderResult: ...

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> ProviderResult: ...


def _reference(prefix: str, idempotency_key: str) -> str:
    return f"{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:16]}"


def _authorisation_key(reference: str) -> dict[str, str]:
    return {"pk": f"PROVIDER#{reference}", "sk": "AUTHORISATION"}


class SimulatedProvider:
    def __init__(self, fault_rate: float | None = None):
        self.fault_rate = fault_rate
        self.timeouts_to_inject = 0  # tests: the next N calls time out *after* recording what they did
        self.calls = 0

    def _fault(self, key: str) -> bool:
        if self.timeouts_to_inject > 0:
            self.timeouts_to_inject -= 1
            return True
        rate = settings().payment_simulator_fault_rate if self.fault_rate is None else self.fault_rate
        # Deterministic per key and attempt, so a run can be replayed exactly.
        digest = hashlib.sha256(f"{key}:{self.calls}".encode()).digest()[0] / 255
        return digest < rate

    def _once(self, key: str, result: ProviderResult, amount: int,
              authorisation: tuple[str, str | None, str] | None = None) -> ProviderResult:
        """The first result recorded under ``key`` (recording ``result`` and the amount if there is none yet: the
        ledger says how much money each call held, took or gave back, as the provider's own records would).

        ``authorisation``: (reference, the status it must be in or None for a new one, the status it moves to)
        for a call that changes an authorisation: moved in the same write as the record. A move the authorisation
        does not allow (not in that status, or less authorised than the amount) is refused, and the refusal is
        what is recorded under the key."""
        self.calls += 1
        latency = settings().payment_simulator_latency_ms
        if latency:
            time.sleep(latency / 1000)  # the provider's round trip: a wait, not CPU
        uow = UnitOfWork()
        self._record(uow, key, result, amount)
        if authorisation is not None and result.succeeded:
            reference, before, after = authorisation
            if before is None:
                uow.put({**_authorisation_key(reference), "status": after, "amount": amount},
                        condition="attribute_not_exists(pk)")
            else:
                uow.update(_authorisation_key(reference), update="SET #status = :after",
                           condition="#status = :before AND #amount >= :amount",
                           names={"#status": "status", "#amount": "amount"},
                           values={":before": before, ":after": after, ":amount": amount})
        try:
            uow.commit()
        except ConditionFailed as failed:
            if 0 not in failed.failed_indexes():  # the authorisation does not allow it: refused
                assert authorisation is not None
                found = dynamo.get(f"PROVIDER#{authorisation[0]}", "AUTHORISATION") or {}
                status = str(found.get("status", "unknown")).lower()
                refusal = "amount_exceeds_authorisation" if status == "authorised" else f"authorisation_{status}"
                refused = UnitOfWork()
                self._record(refused, key, ProviderResult(False, result.reference, refusal), amount)
                if try_commit(refused):
                    result = ProviderResult(False, result.reference, refusal)
                else:
                    result = self._recorded(key)
            else:  # recorded before (a retry): answer what was answered then
                result = self._recorded(key)
        if self._fault(key):
            raise ProviderTimeout(f"provider did not answer for {key}")
        return result

    @staticmethod
    def _record(uow: UnitOfWork, key: str, result: ProviderResult, amount: int) -> None:
        uow.put({"pk": f"PROVIDER#{key}", "sk": "LEDGER", "succeeded": result.succeeded,
                 "reference": result.reference, "declineCode": result.decline_code,
                 "amount": amount if result.succeeded else 0}, condition="attribute_not_exists(pk)")

    @staticmethod
    def _recorded(key: str) -> ProviderResult:
        existing = dynamo.get(f"PROVIDER#{key}", "LEDGER")
        assert existing is not None, key
        return ProviderResult(existing["succeeded"], existing["reference"], existing.get("declineCode"))

    def authorise(self, *, idempotency_key: str, amount: int, currency: str, method: str) -> ProviderResult:
        decline = DECLINES.get(method)
        reference = _reference("pi", idempotency_key)
        return self._once(idempotency_key, ProviderResult(decline is None, reference, decline), amount,
                          (reference, None, "AUTHORISED"))

    def capture(self, *, idempotency_key: str, authorisation_reference: str, amount: int) -> ProviderResult:
        before, after = AUTHORISATION_MOVES["capture"]
        return self._once(idempotency_key, ProviderResult(True, _reference("ch", idempotency_key)), amount,
                          (authorisation_reference, before, after))

    def void(self, *, idempotency_key: str, authorisation_reference: str) -> ProviderResult:
        before, after = AUTHORISATION_MOVES["void"]  # a void moves no money: it releases what was held
        return self._once(idempotency_key, ProviderResult(True, _reference("vo", idempotency_key)), 0,
                          (authorisation_reference, before, after))

    def refund(self, *, idempotency_key: str, charge_reference: str, amount: int) -> ProviderResult:
        return self._once(idempotency_key, ProviderResult(True, _reference("re", idempotency_key)), amount)


provider: PaymentProvider = SimulatedProvider()
