"""Personal data: the markers the catalog carries, and sealing for a customer whose key erasure destroys."""

from __future__ import annotations

import copy
import json

import pytest

from local import naming
from shopstream import catalog, personal
from shopstream.config import override_settings
from shopstream.events import model_of
from shopstream.schemas import all_schemas, personal_fields, personal_problems
from shopstream.transaction import UnitOfWork
from tools import generate

# Fields that hold a customer's e-mail address, name or postal address, wherever an event carries them.
# A new field with one of these names must be marked (or listed here as not personal, with the reason).
PERSONAL_NAMES = {"email": "email", "name": "name", "address": "address", "shippingAddress": "address"}
NOT_PERSONAL = {("ProductCreated", "name"), ("ProductUpdated", "name")}  # a product's name


@pytest.fixture
def keys(aws):
    """The user service's settings (it creates and destroys keys) with the customer key store."""
    settings = naming.function_settings("user")
    assert settings.customer_keys_table == naming.CUSTOMER_KEYS_TABLE
    with override_settings(settings):
        yield
    personal.forget()


def _create(user_id: str) -> bytes:
    uow = UnitOfWork()
    public = personal.create_key(uow, user_id)
    uow.commit()
    return public


def _destroy(user_id: str) -> None:
    uow = UnitOfWork()
    personal.destroy_key(uow, user_id)
    uow.commit()


def test_every_personal_field_of_every_event_is_marked():
    for spec in catalog.EVENTS:
        schema = model_of(spec).model_json_schema(by_alias=True)
        marked = personal.personal_fields(model_of(spec))
        for field in schema.get("properties", {}):
            if field in PERSONAL_NAMES and (spec.name, field) not in NOT_PERSONAL:
                assert marked.get(field) == PERSONAL_NAMES[field], (spec.name, spec.version, field)
        assert set(marked) <= set(PERSONAL_NAMES), (spec.name, marked)


def test_the_newest_version_of_every_event_carries_personal_fields_only_sealed():
    schemas = all_schemas()
    found = {}
    for spec in catalog.EVENTS:
        fields = personal_fields(schemas[f"{spec.name}.{spec.version}.json"])
        if spec == catalog.latest(spec.name):
            assert all(sealed for _, sealed in fields.values()), (spec.name, fields)
        found[(spec.name, spec.version)] = fields
    # the markers the generator reads are where the models put them
    assert found[("UserRegistered", "v1")] == {"$.data.email": ("email", False), "$.data.name": ("name", False)}
    assert found[("UserRegistered", "v2")] == {"$.data.email": ("email", True), "$.data.name": ("name", True)}
    assert found[("OrderCreated", "v2")] == {"$.data.shippingAddress": ("address", True)}
    assert found[("ShippingCreated", "v2")] == {}  # minimised: no consumer needs the address
    assert found[("UserErased", "v1")] == {}


def test_the_gate_refuses_a_field_losing_its_mark_and_a_newest_version_in_clear():
    committed = generate.committed_schemas()
    assert personal_problems(committed, all_schemas()) == []
    unmarked = copy.deepcopy(all_schemas())
    del unmarked["UserRegistered.v1.json"]["$defs"]["UserRegisteredV1"]["properties"]["email"]["x-personal"]
    assert personal_problems(committed, unmarked) == [
        "UserRegistered.v1.json: $.data.email was marked personal (email) and no longer is"]
    clear = copy.deepcopy(all_schemas())
    clear["OrderCreated.v2.json"]["$defs"]["OrderCreatedV2"]["properties"]["shippingAddress"] = {
        "$ref": "#/$defs/Address", "x-personal": "address"}
    clear["OrderCreated.v2.json"]["$defs"]["Address"] = committed["OrderCreated.v1.json"]["$defs"]["Address"]
    assert personal_problems(committed, clear) == [
        "OrderCreated.v2.json: $.data.shippingAddress (address) is in clear in the newest version; "
        "seal it in a new version"]


def test_a_sealed_value_opens_only_as_what_it_was_sealed_as(keys):
    _create("u-1")
    sealed = personal.seal("u-1", "address", {"line1": "1 Main St", "city": "Dublin"})
    wire = json.dumps(sealed.to_wire())
    assert "Main St" not in wire and "Dublin" not in wire
    assert personal.unseal(sealed, "address") == {"line1": "1 Main St", "city": "Dublin"}
    assert personal.reveal(json.loads(wire), "address") == {"line1": "1 Main St", "city": "Dublin"}
    with pytest.raises(ValueError):
        personal.unseal(sealed, "email")
    # the customer and the kind are authenticated: relabelling a value does not open it
    _create("u-2")
    with pytest.raises(personal.Unreadable):
        personal.unseal(sealed.model_copy(update={"kid": "u-2"}), "address")


def test_destroying_the_key_makes_every_sealed_copy_unreadable_even_with_the_key_cached(keys):
    _create("u-1")
    email = personal.seal("u-1", "email", "ada@example.com")
    assert personal.reveal(email, "email") == "ada@example.com"  # the unwrapped key is now cached
    _destroy("u-1")
    for opening in (lambda: personal.unseal(email, "email"), lambda: personal.seal("u-1", "email", "x")):
        with pytest.raises(personal.Unreadable):
            opening()
    # a key made later under the same id does not open what the old one sealed
    _create("u-1")
    with pytest.raises(personal.Unreadable):
        personal.unseal(email, "email")


def test_only_one_key_per_customer_and_kms_binds_it_to_the_customer(keys):
    from shopstream import aws
    from shopstream.transaction import ConditionFailed

    _create("u-1")
    with pytest.raises(ConditionFailed):
        _create("u-1")
    item = aws.client("dynamodb").get_item(TableName=naming.CUSTOMER_KEYS_TABLE, Key={"userId": {"S": "u-1"}})["Item"]
    assert set(item) == {"userId", "publicKey", "wrappedKey", "createdAt"}  # the private half only wrapped
    kms = aws.client("kms")
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=item["wrappedKey"]["B"], EncryptionContext={"customerId": "u-2"})


def test_what_a_service_keeps_is_sealed_and_nothing_once_the_customer_is_erased(keys):
    _create("u-1")
    kept = personal.keep("ada@example.com", "u-1", "email")  # a v1 value, in clear: sealed on arrival
    assert personal.is_sealed(kept) and personal.reveal(kept, "email") == "ada@example.com"
    assert personal.keep(kept, "u-1", "email") == kept  # already sealed: as it is
    assert personal.keep(None, "u-1", "email") is None
    _destroy("u-1")
    assert personal.keep("ada@example.com", "u-1", "email") is None
    assert personal.reveal("ada@example.com", "email") == "ada@example.com"  # clear values read as they are
