"""User profiles: the caller registers their own profile (userId = token subject).

Each customer gets a key at registration (shopstream.personal: a KMS data key, kept only wrapped in
the customer key store). Their e-mail address and name are sealed with it wherever they are stored or
sent. Erasure deletes that key in the same transaction that turns the profile into a tombstone and
emits UserErased: from then on no copy of their data can be read, and every service drops what it
keeps of them. The sign-in identity (Cognito), which holds the e-mail address in clear, is deleted on
UserErased by this service's own handler (identity-erasure), retried until it is done.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shopstream import personal
from shopstream.events import UserDeactivated, UserErased, UserRegisteredV2, UserUpdatedV2
from shopstream.inbound import InboundEvent, PoisonRecord
from shopstream.observability import logger
from shopstream.request import Caller, Conflict, commit
from shopstream.transaction import UnitOfWork, retry_on_conflict

from . import identity, store
from .models import ErasureAccepted, RegisterUser, UpdateUser, UserProfile

SERVICE = "user"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def register(caller: Caller, body: RegisterUser) -> UserProfile:
    existing = store.get(caller.user_id)
    if existing is not None and caller.repeat_of_bound_request:
        return _as_registered(existing)  # this very request registered it (its Idempotency-Key's binding)
    if existing is not None and existing["status"] == store.ERASED:
        raise Conflict("this account was erased; its id cannot be registered again")
    uow = UnitOfWork()
    recipient = personal.create_key(uow, caller.user_id)
    email = personal.seal(caller.user_id, "email", body.email, recipient=recipient)
    name = personal.seal(caller.user_id, "name", body.name, recipient=recipient)
    profile = UserProfile(user_id=caller.user_id, status="ACTIVE", version=1, created_at=_now())
    store.create(uow, {**profile.to_wire(), "email": email.to_wire(), "name": name.to_wire()})
    uow.emit(caller.command("UserRegistered", UserRegisteredV2(user_id=profile.user_id, email=email, name=name,
                                                               version=1), SERVICE))
    try:
        commit(uow, status=201, conflict="this user is already registered")
    except Conflict:
        if not caller.repeat_of_bound_request:
            raise
        registered = store.get(caller.user_id)  # the same request, sent twice at once, committed first
        assert registered is not None
        return _as_registered(registered)
    return profile  # without the personal fields (see UserProfile)


def _as_registered(item: dict[str, Any]) -> UserProfile:
    """The stored profile as POST /users answers it: without the personal fields (see UserProfile)."""
    return UserProfile.model_validate({k: v for k, v in item.items() if k not in ("email", "name")})


def _profile(item: dict[str, Any]) -> UserProfile:
    """The stored profile with its personal fields opened (the customer's own, or an admin's, read)."""
    return UserProfile.model_validate({**item, "email": personal.reveal(item.get("email"), "email"),
                                       "name": personal.reveal(item.get("name"), "name")})


def _owned(caller: Caller, user_id: str) -> dict[str, Any]:
    item = store.get(user_id)
    caller.require_owner(item["userId"] if item else None, "user not found")
    assert item is not None
    return item


def get(caller: Caller, user_id: str) -> UserProfile:
    return _profile(_owned(caller, user_id))


def update(caller: Caller, user_id: str, body: UpdateUser) -> UserProfile:
    current = _owned(caller, user_id)
    if current["status"] != "ACTIVE":
        raise Conflict(f"the user is {current['status'].lower()}")
    recipient = personal.public_key(user_id)
    email = personal.seal(user_id, "email", body.email, recipient=recipient) if body.email is not None else None
    name = personal.seal(user_id, "name", body.name, recipient=recipient) if body.name is not None else None
    changes = {k: v.to_wire() for k, v in (("email", email), ("name", name)) if v is not None}
    version = current["version"] + 1
    uow = UnitOfWork()
    store.update(uow, user_id, changes, current["version"])
    uow.emit(caller.command("UserUpdated", UserUpdatedV2(user_id=user_id, email=email, name=name, version=version),
                            SERVICE))
    commit(uow, status=200, conflict="the profile changed meanwhile; retry")
    return _profile({**current, **changes, "version": version})


def deactivate(caller: Caller, user_id: str) -> UserProfile:
    current = _owned(caller, user_id)
    if current["status"] != "ACTIVE":
        raise Conflict(f"the user is already {current['status'].lower()}")
    uow = UnitOfWork()
    store.update(uow, user_id, {"status": "DEACTIVATED"}, current["version"])
    uow.emit(caller.command("UserDeactivated", UserDeactivated(user_id=user_id, reason="requested",
                                                               version=current["version"] + 1), SERVICE))
    commit(uow, status=200, conflict="the profile changed meanwhile; retry")
    return _profile({**current, "status": "DEACTIVATED", "version": current["version"] + 1})


def erase(caller: Caller, user_id: str) -> ErasureAccepted:
    """Erase the customer (themself or an admin asks), whether or not they ever registered a profile: one
    transaction turns the profile into a tombstone (writes one, for a customer who only signed up), deletes
    their key and emits UserErased (with the audit record of the call). Asking again changes nothing and
    answers the same. A profile changed or registered meanwhile is read again: erasure is not refused."""
    # The id is the token's subject, so its owner is itself: no profile needs to exist to say who may ask.
    caller.require_owner(user_id, "user not found")

    def attempt() -> ErasureAccepted:
        current = store.get(user_id)
        if current is not None and current["status"] == store.ERASED:
            return ErasureAccepted(user_id=user_id, status=store.ERASED, erased_at=current["erasedAt"])
        at = _now()
        uow = UnitOfWork()
        if current is None:  # signed up (a token, an identity) but never registered a profile
            store.create_tombstone(uow, user_id, at)
            version = 1
        else:
            store.erase(uow, user_id, current["version"], at)
            version = current["version"] + 1
        personal.destroy_key(uow, user_id)  # without a profile there is no key: the delete deletes nothing
        uow.emit(caller.command("UserErased", UserErased(user_id=user_id, version=version), SERVICE))
        commit(uow, status=202)  # ConditionFailed: changed or registered meanwhile, read again
        logger().info("customer erased", extra={"userId": user_id})
        return ErasureAccepted(user_id=user_id, status=store.ERASED, erased_at=at)

    accepted = retry_on_conflict(attempt, what=f"erasure of {user_id}")
    assert accepted is not None
    _delete_identity_now(user_id)
    return accepted


def _delete_identity_now(user_id: str) -> None:
    """Delete the sign-in identity at once if the identity provider answers (on every request, so a repeat
    completes it too). Only the fast path: the erasure is committed, and its UserErased makes
    ``on_user_erased`` delete the identity, retried until it succeeds; a failure here is logged, not answered."""
    try:
        identity.delete(user_id)
    except Exception as error:  # whatever failed in another system, the event finishes it
        logger().warning("sign-in identity not deleted by the request; UserErased's handler will",
                         extra={"userId": user_id, "error": type(error).__name__})


def on_user_erased(event: InboundEvent) -> None:
    """UserErased (handler identity-erasure): delete the customer's sign-in identity, which holds their e-mail
    address in clear. A failure of the identity provider raises: the record is reported failed and retried,
    and after the mapping's retries kept by its on-failure destination for a redrive. Deleting again finds
    nothing to delete: a redelivery or a replay changes nothing."""
    match event.data:
        case UserErased(user_id=user_id):
            identity.delete(user_id)
        case other:
            raise PoisonRecord("unexpected_event", type(other).__name__)
