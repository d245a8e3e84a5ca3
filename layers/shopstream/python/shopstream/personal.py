"""Personal data: marked in the catalog, sealed for one customer, unreadable once that customer's key is gone.

Marking. A personal field of an event model is declared with ``personal("email" | "name" | "address")``:
its JSON Schema carries ``"x-personal": "<kind>"``, which schemas/, docs/events.md and the tests read.

Sealing (crypto-shredding). Every customer has one key pair:

- the private half is a KMS data key: 32 bytes from ``GenerateDataKey`` under the customer-data key
  (encryption context ``{"customerId": <userId>}``), used as an X25519 private key. It is stored only
  wrapped (KMS's ciphertext), in the customer key store, one item per customer;
- the public half is stored next to it, in clear.

A value is sealed for a customer with their public half (X25519 with a fresh ephemeral key, HKDF-SHA256,
AES-256-GCM; the customer, the kind of value and the algorithm are authenticated). Sealing needs no KMS
permission, only a read of the store; opening needs ``kms:Decrypt`` with the customer-data key, which
only the functions that must read a personal field are given. Erasure deletes the customer's item from
the store: from then on every sealed copy of their data (topics, the S3 archive, dead-letter queues,
tables, backups) is unreadable, and none of them has to change.

Opening always reads the store first, so nothing is opened after erasure, even by a warm function
that still holds the unwrapped key in its cache (which only saves KMS calls).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, Field

from shopstream import aws
from shopstream.config import get_settings
from shopstream.dynamo import from_attributes
from shopstream.envelope import WireModel

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from shopstream.transaction import UnitOfWork

# cryptography (~7 ms on a consumer's init, ~11 ms on an API's) is imported where keys are made and values sealed
# or opened: every function but the relay loads this module (event models mark personal fields with it), and only
# those with a personal-* or customer-keys need (catalog) seal or open anything.

PERSONAL = "x-personal"  # the JSON Schema keyword that marks a personal field
PersonalKind = Literal["email", "name", "address"]
PERSONAL_KINDS: tuple[str, ...] = get_args(PersonalKind)
ALGORITHM: Literal["X25519-HKDF-SHA256-A256GCM"] = "X25519-HKDF-SHA256-A256GCM"
CONTEXT_KEY = "customerId"  # the KMS encryption context of a customer's key (IAM conditions name it)
_B64 = r"^[A-Za-z0-9_-]+$"


def personal(kind: PersonalKind, **field: Any) -> Any:
    """A personal field of an event model: ``email: Sealed = personal("email")``."""
    if kind not in PERSONAL_KINDS:
        raise ValueError(f"unknown kind of personal data {kind!r}")
    return Field(json_schema_extra={PERSONAL: kind}, **field)


def personal_fields(model: type[BaseModel]) -> dict[str, str]:
    """Field name (wire alias) -> kind, for the fields of ``model`` marked personal."""
    found = {}
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and PERSONAL in extra:
            found[info.alias or name] = str(extra[PERSONAL])
    return found


class Sealed(WireModel):
    """A personal value sealed for one customer: readable only while the customer's key exists."""

    kid: str = Field(min_length=1, max_length=128, description="the customer whose key sealed it (userId)")
    kind: PersonalKind
    alg: Literal["X25519-HKDF-SHA256-A256GCM"] = ALGORITHM
    epk: str = Field(min_length=43, max_length=43, pattern=_B64, description="ephemeral X25519 public key")
    iv: str = Field(min_length=16, max_length=16, pattern=_B64)
    ct: str = Field(min_length=22, max_length=4096, pattern=_B64, description="AES-GCM ciphertext and tag")


class Unreadable(Exception):
    """The customer's key does not exist (erased, or never created): the value cannot be opened."""


def is_sealed(value: Any) -> bool:
    return isinstance(value, Sealed) or (isinstance(value, dict) and {"kid", "epk", "iv", "ct"} <= value.keys())


# --- the key store (one item per customer, in the table the user service writes) -----------------
def _table() -> str:
    table = get_settings().customer_keys_table
    if not table:
        raise RuntimeError("no customer key store configured (SHOPSTREAM_CUSTOMER_KEYS_TABLE)")
    return table


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CustomerKey:
    """A customer's key item as just read with other items in one call (``key_location``); ``item``
    None: they have no key (erased, or never created). Handing it to the functions below saves
    their own read of the store; it is still read before every use."""

    user_id: str
    item: dict[str, Any] | None


def key_location(user_id: str) -> tuple[str, dict[str, Any]]:
    """The table and key of the customer's key item, to read it in a batch (``dynamo.batch_read``)."""
    return _table(), {"userId": user_id}


def customer_key(user_id: str, found: dict[str, list[dict[str, Any]]]) -> CustomerKey:
    """The customer's key among the items of a batch read that asked for ``key_location(user_id)``."""
    return CustomerKey(user_id, next((i for i in found.get(_table(), []) if i.get("userId") == user_id), None))


def still_current(uow: UnitOfWork, key: CustomerKey) -> None:
    """A condition of ``uow``: the customer still has the key that was read (not erased meanwhile)."""
    if key.item is None:
        raise Unreadable(f"no key for customer {key.user_id}")
    uow.check({"userId": key.user_id}, condition="wrappedKey = :wrapped", values={":wrapped": key.item["wrappedKey"]},
              table=_table())


def _key_item(user_id: str, key: CustomerKey | None = None) -> dict[str, Any] | None:
    if key is not None and key.user_id == user_id:
        return key.item
    found = aws.client("dynamodb").get_item(TableName=_table(), Key={"userId": {"S": user_id}},
                                            ConsistentRead=True)
    return from_attributes(found["Item"]) if "Item" in found else None


def create_key(uow: UnitOfWork, user_id: str) -> bytes:
    """A new key pair for the customer, stored with ``uow`` (refused if they have one); its public half."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    generated = aws.client("kms").generate_data_key(
        KeyId=get_settings().customer_data_key, NumberOfBytes=32, EncryptionContext={CONTEXT_KEY: user_id})
    public = X25519PrivateKey.from_private_bytes(generated["Plaintext"]).public_key().public_bytes_raw()
    uow.put({"userId": user_id, "publicKey": _b64(public), "wrappedKey": generated["CiphertextBlob"],
             "createdAt": datetime.now(UTC).isoformat(timespec="milliseconds")},
            condition="attribute_not_exists(userId)", table=_table())
    return public


def destroy_key(uow: UnitOfWork, user_id: str) -> None:
    """Delete the customer's key with ``uow``: everything sealed for them becomes unreadable."""
    uow.delete({"userId": user_id}, table=_table())
    forget(user_id)


def public_key(user_id: str, key: CustomerKey | None = None) -> bytes:
    item = _key_item(user_id, key)
    if item is None:
        raise Unreadable(f"no key for customer {user_id}")
    return _unb64(str(item["publicKey"]))


# Unwrapped private keys by their wrapped form (never by customer: a key that was deleted and a new
# one are different entries). Only saves KMS calls: the store is read before every use.
_CACHE_SECONDS = 300.0
_CACHE_SIZE = 256
_cache: OrderedDict[bytes, tuple[float, X25519PrivateKey]] = OrderedDict()
_cache_lock = threading.Lock()


def _private_key(user_id: str, key: CustomerKey | None = None) -> X25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    item = _key_item(user_id, key)
    if item is None:
        raise Unreadable(f"no key for customer {user_id}")
    wrapped = bytes(item["wrappedKey"])
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(wrapped)
        if cached is not None and cached[0] > now:
            _cache.move_to_end(wrapped)
            return cached[1]
    plaintext = aws.client("kms").decrypt(CiphertextBlob=wrapped, KeyId=get_settings().customer_data_key,
                                          EncryptionContext={CONTEXT_KEY: user_id})["Plaintext"]
    private = X25519PrivateKey.from_private_bytes(plaintext)
    with _cache_lock:
        _cache[wrapped] = (now + _CACHE_SECONDS, private)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return private


def forget(user_id: str | None = None) -> None:
    """Drop cached keys (all of them: entries are not indexed by customer)."""
    with _cache_lock:
        _cache.clear()


# --- sealing and opening ------------------------------------------------------------------------
def _aad(kid: str, kind: str) -> bytes:
    return json.dumps([ALGORITHM, kid, kind], separators=(",", ":")).encode()


def _aes_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=SHA256(), length=32, salt=ephemeral + recipient, info=b"shopstream/sealed/v1").derive(shared)


def seal(user_id: str, kind: PersonalKind, value: Any, *, recipient: bytes | None = None) -> Sealed:
    """``value`` (JSON-able) sealed for the customer; ``recipient``: their public key if already read."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    recipient = recipient if recipient is not None else public_key(user_id)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    iv = os.urandom(12)
    plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    ciphertext = AESGCM(_aes_key(shared, ephemeral_public, recipient)).encrypt(iv, plaintext, _aad(user_id, kind))
    return Sealed(kid=user_id, kind=kind, epk=_b64(ephemeral_public), iv=_b64(iv), ct=_b64(ciphertext))


def unseal(sealed: Sealed | dict[str, Any], kind: PersonalKind, key: CustomerKey | None = None) -> Any:
    """The clear value; Unreadable once the customer's key is gone. ``key``: the customer's key item,
    if the caller just read it (else it is read here)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    box = sealed if isinstance(sealed, Sealed) else Sealed.model_validate(sealed)
    if box.kind != kind:
        raise ValueError(f"a sealed {box.kind} read as {kind}")
    private = _private_key(box.kid, key)
    ephemeral = _unb64(box.epk)
    recipient = private.public_key().public_bytes_raw()
    shared = private.exchange(X25519PublicKey.from_public_bytes(ephemeral))
    try:
        plaintext = AESGCM(_aes_key(shared, ephemeral, recipient)).decrypt(
            _unb64(box.iv), _unb64(box.ct), _aad(box.kid, box.kind))
    except InvalidTag as exc:  # sealed for another key of this customer id (erased, then a new one)
        raise Unreadable(f"not sealed with the current key of customer {box.kid}") from exc
    return json.loads(plaintext)


def reveal(value: Any, kind: PersonalKind, key: CustomerKey | None = None) -> Any:
    """A personal value as a reader needs it: clear values (v1 events) as they are, sealed ones opened.
    None stays None; Unreadable when it was sealed for a customer whose key is gone."""
    if isinstance(value, BaseModel) and not isinstance(value, Sealed):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return unseal(value, kind, key) if is_sealed(value) else value


def keep(value: Any, user_id: str, kind: PersonalKind, key: CustomerKey | None = None) -> dict[str, Any] | None:
    """What a service stores of a personal value: always its sealed form. A clear value (a v1 event)
    is sealed on arrival for the customer; None if there is no value, or no key to seal it with (the
    customer was erased: nothing of theirs is kept)."""
    if value is None:
        return None
    if isinstance(value, Sealed):
        return value.to_wire()
    if is_sealed(value):
        return dict(value)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True)
    try:
        return seal(user_id, kind, value, recipient=public_key(user_id, key)).to_wire()
    except Unreadable:
        return None
