"""The events of user-events.

UserRegistered and UserUpdated have two versions: a class with what every version says (handlers match
it) and one subclass per version, which the catalog registers; v2 carries the personal fields sealed
for the customer (shopstream.personal). UserErased carries no personal data."""

from __future__ import annotations

from shopstream.declarations import TopicEvents
from shopstream.envelope import WireModel
from shopstream.events.common import Id, Text, Version, example, sealed_example
from shopstream.personal import Sealed, personal

user_event = TopicEvents("user-events", key="userId")


class UserRegistered(WireModel):
    """A customer registered (every version). The address and name are in the version's class."""

    user_id: Id
    version: Version = 1


@user_event.version(1, of="UserRegistered")
class UserRegisteredV1(UserRegistered):
    """v1: address and name in clear. No longer produced (v2 replaced it); still accepted."""

    model_config = example({"userId": "u-1", "email": "ada@example.com", "name": "Ada"})

    email: str = personal("email", min_length=3, max_length=254)
    name: str = personal("name", min_length=1, max_length=200)


@user_event.version(2, of="UserRegistered")
class UserRegisteredV2(UserRegistered):
    """v2: address and name sealed for the customer."""

    model_config = example({"userId": "u-1", "email": sealed_example("email"), "name": sealed_example("name")})

    email: Sealed = personal("email")
    name: Sealed = personal("name")


class UserUpdated(WireModel):
    """A customer changed their profile (every version); only the fields that changed are set."""

    user_id: Id
    version: Version


@user_event.version(1, of="UserUpdated")
class UserUpdatedV1(UserUpdated):
    """v1: in clear. No longer produced (v2 replaced it); still accepted."""

    model_config = example({"userId": "u-1", "name": "Ada L.", "version": 2})

    email: str | None = personal("email", default=None, min_length=3, max_length=254)
    name: str | None = personal("name", default=None, min_length=1, max_length=200)


@user_event.version(2, of="UserUpdated")
class UserUpdatedV2(UserUpdated):
    """v2: sealed for the customer."""

    model_config = example({"userId": "u-1", "name": sealed_example("name"), "version": 2})

    email: Sealed | None = personal("email", default=None)
    name: Sealed | None = personal("name", default=None)


@user_event
class UserDeactivated(WireModel):
    model_config = example({"userId": "u-1", "version": 3})

    user_id: Id
    reason: Text | None = None
    version: Version


@user_event
class UserErased(WireModel):
    """The customer's personal data was erased at their (or an admin's) request: their key is destroyed,
    so every sealed copy of their data is unreadable, and each service drops or pseudonymises what it
    keeps of them. Carries no personal data; ``version`` is the erased profile's."""

    model_config = example({"userId": "u-1", "version": 4})

    user_id: Id
    version: Version
