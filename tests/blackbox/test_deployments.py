"""The suite's AWS path without an account: the platform stack's outputs and the user pool are moto's, so what
`make e2e ENV=<env>` does before and after the saga (find the API and the pool, make test users and their
tokens, remove them) is exercised here; the saga itself runs against `make local` (test_saga.py)."""

from __future__ import annotations

import json

import boto3
import jwt
import pytest
from moto import mock_aws

from tests.blackbox import deployments


@pytest.fixture
def environment(monkeypatch):
    """A `dev` environment as far as the suite can see: the platform stack's outputs, a user pool with the admin
    group and the operators' client (admin password flow), as stacks/platform.py makes them."""
    for name, value in {"AWS_ACCESS_KEY_ID": "e2e", "AWS_SECRET_ACCESS_KEY": "e2e", "AWS_DEFAULT_REGION": "eu-west-1",
                        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        cognito = boto3.client("cognito-idp")
        pool = cognito.create_user_pool(PoolName="users", UsernameAttributes=["email"])["UserPool"]["Id"]
        cognito.create_group(UserPoolId=pool, GroupName=deployments.ADMIN_GROUP)
        client = cognito.create_user_pool_client(UserPoolId=pool, ClientName="operators",
                                                 ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH"])
        client_id = client["UserPoolClient"]["ClientId"]
        outputs = {"ApiUrl": "https://api.example.invalid", "UserPoolId": pool, "OperatorsClientId": client_id}
        template = {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        boto3.client("cloudformation").create_stack(StackName="shopstream-dev-platform",
                                                    TemplateBody=json.dumps(template))
        yield cognito, pool, outputs


def test_the_deployment_is_found_by_its_platform_stacks_outputs(environment):
    _, _, outputs = environment
    deployment = deployments.aws_deployment("dev")
    assert deployment.client.base_url == outputs["ApiUrl"] and deployment.name == "dev"


def test_test_users_get_tokens_the_api_accepts_and_are_removed_at_the_end(environment):
    cognito, pool, outputs = environment
    deployment = deployments.aws_deployment("dev")
    client = deployment.client
    customer = jwt.decode(client.token("ada"), options={"verify_signature": False})
    admin = jwt.decode(client.token("ops", admin=True), options={"verify_signature": False})
    # what the API's JWT authorizer and the services look at: the subject, the app client, the admin group
    assert customer["sub"] == client.user_id("ada") != client.user_id("ops") == admin["sub"]
    assert customer["client_id"] == admin["client_id"] == outputs["OperatorsClientId"]
    assert "cognito:groups" not in customer and deployments.ADMIN_GROUP in admin["cognito:groups"]
    emails = [next(a["Value"] for a in u["Attributes"] if a["Name"] == "email")
              for u in cognito.list_users(UserPoolId=pool)["Users"]]
    assert len(emails) == 2 and all(e.endswith("@example.invalid") for e in emails)  # .invalid: never delivered
    deployment.finish[-1]()  # what clean_up does last, after erasing the run's customers through the API
    assert cognito.list_users(UserPoolId=pool)["Users"] == []


def test_a_user_erased_through_the_api_is_not_an_error_when_the_run_removes_its_users(environment):
    cognito, pool, _ = environment
    deployment = deployments.aws_deployment("dev")
    deployment.client.user_id("ada")
    [user] = cognito.list_users(UserPoolId=pool)["Users"]
    cognito.admin_delete_user(UserPoolId=pool, Username=user["Username"])  # as the user service's erasure does
    deployment.finish[-1]()


def test_without_credentials_the_aws_path_is_skipped_not_failed(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert deployments.has_aws_credentials() is False
