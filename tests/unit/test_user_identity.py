"""Erasure deletes the customer's sign-in identity (Cognito on AWS), which holds their e-mail address."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws


@pytest.fixture
def pool(monkeypatch):
    with mock_aws():
        cognito = boto3.client("cognito-idp")
        # As stacks/platform.py makes it: people sign in with their e-mail address (username attributes).
        pool_id = cognito.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
        monkeypatch.setenv("SHOPSTREAM_USER_POOL_ID", pool_id)
        yield cognito, pool_id


def test_the_identity_whose_subject_is_erased_is_deleted_once(pool):
    from user import identity

    cognito, pool_id = pool
    created = cognito.admin_create_user(UserPoolId=pool_id, Username="ada@example.com",
                                        UserAttributes=[{"Name": "email", "Value": "ada@example.com"}])["User"]
    subject = next(a["Value"] for a in created["Attributes"] if a["Name"] == "sub")
    other = cognito.admin_create_user(UserPoolId=pool_id, Username="grace@example.com")["User"]["Username"]
    assert identity.delete(subject) is True
    assert identity.delete(subject) is False  # a repeated erasure: nothing left to delete
    assert [u["Username"] for u in cognito.list_users(UserPoolId=pool_id)["Users"]] == [other]


def test_an_id_that_names_an_email_address_deletes_no_ones_identity(pool):
    """Cognito takes an e-mail address for the identity that has it (an alias): an admin erasing an id that
    is an address (no profile has such an id) must not delete that person's identity."""
    from user import identity

    cognito, pool_id = pool
    cognito.admin_create_user(UserPoolId=pool_id, Username="ada@example.com",
                              UserAttributes=[{"Name": "email", "Value": "ada@example.com"}])
    assert identity.delete("ada@example.com") is False
    assert len(cognito.list_users(UserPoolId=pool_id)["Users"]) == 1


def test_without_a_user_pool_there_is_nothing_to_delete(monkeypatch):
    from user import identity

    monkeypatch.delenv("SHOPSTREAM_USER_POOL_ID", raising=False)
    assert identity.delete("anyone") is False  # locally: tokens are signed by local/auth.py
