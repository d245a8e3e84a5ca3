"""moto's in-process state, copied once and put back as often as needed.

The seeded simulation provisions every table, queue, bucket and key once per process and starts each
seed from a copy of that state (local/simulation.py, ProvisionedWorld): provisioning through the API
cost a fifth of a seed, a copy of the freshly provisioned backends costs a few milliseconds.

Everything a service can observe through the API is as the snapshot left it: items, stream records,
messages, objects, notification and lifecycle configurations, keys. Identifiers moto drew at random
while provisioning (KMS key ids, stream labels) stay those of the snapshot.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from moto import __version__ as moto_version

WRITTEN_FOR = "5.2.5"  # the layout of BackendDict and of SQS queues this relies on (local/moto_patches.py pins it)
# moto's internals are imported where used, after the version check: another moto is refused with that message,
# not an ImportError of a name that moved (as in local/moto_patches.py).


class Snapshot:
    """Every moto backend in use when it was taken, deep-copied."""

    def __init__(self) -> None:
        from moto.core.base_backend import BackendDict, backend_lock

        if moto_version != WRITTEN_FOR:
            raise RuntimeError(f"local/moto_snapshot.py was written for moto {WRITTEN_FOR}, not {moto_version}")
        with backend_lock:
            self._backends = {backends: _copied(dict(backends)) for backends in _in_use(BackendDict)}

    def restore(self) -> None:
        """Every backend as it was when the snapshot was taken; backends first used since are emptied."""
        from moto.core.base_backend import BackendDict, backend_lock
        from moto.core.model_instances import reset_model_data

        in_use = _in_use(BackendDict)
        with backend_lock:
            for backends in list(in_use):
                if backends not in self._backends:
                    for account in backends.values():
                        account.reset()
                    backends.clear()
                    in_use.remove(backends)
            # moto keeps every model instance it ever made for its dashboard: let the last run's go
            reset_model_data()
            for backends, taken in self._backends.items():
                backends.clear()
                backends.update(_copied(taken))
                if backends not in in_use:
                    in_use.append(backends)


def _in_use(backend_dict: Any) -> list[Any]:
    """moto's list of the backends in use (BackendDict._instances: what its reset empties)."""
    instances: list[Any] = backend_dict._instances
    return instances


def _copied(accounts: dict[str, Any]) -> dict[str, Any]:
    """A deep copy; an SQS queue's lock (a Condition, which cannot be copied) becomes a fresh one."""
    memo: dict[int, Any] = {}
    for account in accounts.values():
        for backend in account.values():
            for queue in getattr(backend, "queues", {}).values():
                lock = getattr(queue, "_messages_lock", None)
                if isinstance(lock, threading.Condition):
                    memo[id(lock)] = threading.Condition()
    return copy.deepcopy(accounts, memo)
