"""What an Idempotency-Key was first used for, kept as long as what the key created.

A creating route derives its new resource's id from the caller and the key (``Caller.derived_id``), so a
key names that resource for as long as it exists, long after Powertools' 24-hour record of the response.
The key's *binding*, ``IDEMPOTENCY_KEY#<digest of caller and key>`` / ``BINDING`` in the service's table, is
written in the transaction that creates the resource (``shopstream.request.commit``) and never expires. It
holds the request the key was used for: its route (method and concrete path) and its body's keyed
fingerprint. Another request under the key is refused at any age; the same request again finds what the
key created (shopstream.api, docs/decisions.md 2026-12-04).

The fingerprint is an HMAC-SHA-256 (KMS GenerateMac, with a key the API functions may use but nobody can
read) of the body's SHA-256: neither the binding nor Powertools' record holds a plain hash of a body, which
anyone could check a guessed e-mail address or postal address against.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from shopstream import aws, dynamo
from shopstream.config import get_settings
from shopstream.dynamo import Key
from shopstream.transaction import UnitOfWork

HEADER = "Idempotency-Key"
MAC_ALGORITHM: Final = "HMAC_SHA_256"


@dataclass(frozen=True)
class Binding:
    route: str  # "POST /inventory/p_1/adjustments": the method and the concrete path
    fingerprint: str  # fingerprint(body)


def key_digest(caller_id: str, key: str) -> str:
    """The caller's key as one value: the binding's key, and what a created resource's id derives from."""
    return hashlib.sha256(f"{caller_id}\n{key}".encode()).hexdigest()


def fingerprint(body: str) -> str:
    """The body's keyed fingerprint (hex). GenerateMac takes at most 4096 bytes: it gets the body's SHA-256."""
    digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).digest()
    answer = aws.client("kms").generate_mac(KeyId=get_settings().request_fingerprint_key, Message=digest,
                                            MacAlgorithm=MAC_ALGORITHM)
    return bytes(answer["Mac"]).hex()


def _key(caller_id: str, key: str) -> Key:
    return {"pk": f"IDEMPOTENCY_KEY#{key_digest(caller_id, key)}", "sk": "BINDING"}


def read(caller_id: str, key: str) -> Binding | None:
    """The request the caller's key is bound to (a consistent read), None if it is bound to none yet."""
    item = dynamo.get(**_key(caller_id, key))
    return Binding(route=item["route"], fingerprint=item["fingerprint"]) if item else None


def bind(uow: UnitOfWork, caller_id: str, key: str, binding: Binding) -> None:
    """Bind the key in ``uow`` (the transaction that creates what it names); the transaction fails if the
    key was bound meanwhile."""
    uow.put({**_key(caller_id, key), "route": binding.route, "fingerprint": binding.fingerprint,
             "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds")},
            condition="attribute_not_exists(pk)")


def refusal(route: str) -> str:
    """Why a request under a key bound to another one is refused (422)."""
    return f"this {HEADER} was used for another request ({route})"
