"""User profiles: the caller registers their own profile (userId = token subject)."""

from __future__ import annotations

from datetime import UTC, datetime

from shopstream.events import UserDeactivated, UserRegistered, UserUpdated
from shopstream.request import Caller, Conflict, commit
from shopstream.transaction import UnitOfWork

from . import store
from .models import RegisterUser, UpdateUser, UserProfile

SERVICE = "user"


def register(caller: Caller, body: RegisterUser) -> UserProfile:
    profile = UserProfile(user_id=caller.user_id, email=body.email, name=body.name, status="ACTIVE", version=1,
                          created_at=datetime.now(UTC).isoformat())
    uow = UnitOfWork()
    store.create(uow, profile.to_wire())
    uow.emit(caller.command("UserRegistered", UserRegistered(user_id=profile.user_id, email=profile.email,
                                                             name=profile.name, version=1), SERVICE))
    commit(uow, status=201, conflict="this user is already registered")
    return profile


def get(caller: Caller, user_id: str) -> UserProfile:
    item = store.get(user_id)
    caller.require_owner(item["userId"] if item else None, "user not found")
    return UserProfile.model_validate(item)


def update(caller: Caller, user_id: str, body: UpdateUser) -> UserProfile:
    current = get(caller, user_id)
    if current.status != "ACTIVE":
        raise Conflict("user is deactivated")
    changes = body.model_dump(by_alias=True, exclude_none=True)
    version = current.version + 1
    uow = UnitOfWork()
    store.update(uow, user_id, changes, current.version)
    uow.emit(caller.command("UserUpdated", UserUpdated(user_id=user_id, email=body.email, name=body.name,
                                                       version=version), SERVICE))
    commit(uow, status=200, conflict="the profile changed meanwhile; retry")
    return current.model_copy(update={**body.model_dump(exclude_none=True), "version": version})


def deactivate(caller: Caller, user_id: str) -> UserProfile:
    current = get(caller, user_id)
    if current.status != "ACTIVE":
        raise Conflict("user is already deactivated")
    uow = UnitOfWork()
    store.update(uow, user_id, {"status": "DEACTIVATED"}, current.version)
    uow.emit(caller.command("UserDeactivated", UserDeactivated(user_id=user_id, reason="requested",
                                                               version=current.version + 1), SERVICE))
    commit(uow, status=200, conflict="the profile changed meanwhile; retry")
    return current.model_copy(update={"status": "DEACTIVATED", "version": current.version + 1})
