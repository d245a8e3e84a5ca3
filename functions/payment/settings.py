"""The payment service's own settings, from the environment (``SHOPSTREAM_<NAME>``), read on first use."""

from __future__ import annotations

from shopstream.config import EnvSettings, service_settings


class PaymentSettings(EnvSettings):

    # Share of the simulated provider's calls that time out after recording what they did (tests, demos).
    payment_simulator_fault_rate: float = 0.0
    # How long the simulated provider takes to answer (benchmarks: a real provider takes ~300 ms).
    payment_simulator_latency_ms: int = 0


def settings() -> PaymentSettings:
    return service_settings(PaymentSettings)
