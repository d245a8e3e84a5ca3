"""Where the black-box suite runs: a `make local` it starts, an API already running (``API_URL``), or a deployed
environment (``ENV``), found by its stacks' outputs, with test users made in its user pool and removed after.

    make e2e                  against a `make local` started for the run (also part of `make test`)
    make e2e API_URL=http://127.0.0.1:8000    against a running `make local` (tokens from its .local/jwt-secret)
    make e2e ENV=dev          against the dev environment (AWS credentials; skipped without them)
"""

from __future__ import annotations

import contextlib
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.client import ApiClient
from shopstream import names

ENV_VARIABLE, API_URL_VARIABLE = "SHOPSTREAM_E2E_ENV", "SHOPSTREAM_E2E_API_URL"
ADMIN_GROUP = "admin"  # stacks/platform.py's group, which the API's admin routes want


@dataclass
class Deployment:
    """An API to drive as a client would, how to get a token for a named test user, and what the run made."""

    name: str
    client: ApiClient
    customers: list[str] = field(default_factory=list)  # test users that registered a profile (erased at the end)
    products: list[str] = field(default_factory=list)  # products the run created (discontinued at the end)
    finish: list[Callable[[], None]] = field(default_factory=list)

    def clean_up(self) -> None:
        """Erase the customers the run registered (their data becomes unreadable, their identity goes), withdraw
        its products, then whatever the target itself set up (test users in the pool)."""
        for user in self.customers:
            self.client.call("POST", f"/users/{self.client.user_id(user)}/erasure", user=user)
        for product in self.products:
            self.client.call("POST", f"/products/{product}/discontinue", user="e2e-admin", admin=True)
        for step in reversed(self.finish):
            step()


# --- a deployed environment ---------------------------------------------------------------------------------
def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


class CognitoUsers:
    """Test users in the environment's user pool, made with the admin API (a random password each, never
    shown), signed in through the operators' app client (admin password flow: only callers with AWS
    credentials can use it), and deleted by ``delete_all``. ``user`` is a name local to the run."""

    def __init__(self, cognito: Any, *, pool_id: str, client_id: str, run_id: str):
        self.cognito, self.pool_id, self.client_id, self.run_id = cognito, pool_id, client_id, run_id
        self.subjects: dict[str, str] = {}
        self.passwords: dict[str, str] = {}

    def _username(self, user: str) -> str:
        return f"e2e-{self.run_id}-{user}@example.invalid"  # .invalid: no mail is ever sent there

    def _ensure(self, user: str, admin: bool) -> None:
        if user in self.subjects:
            return
        username, password = self._username(user), f"E2e!{secrets.token_urlsafe(18)}"
        created = self.cognito.admin_create_user(
            UserPoolId=self.pool_id, Username=username, MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": username}, {"Name": "email_verified", "Value": "true"}])
        self.cognito.admin_set_user_password(UserPoolId=self.pool_id, Username=username, Password=password,
                                             Permanent=True)
        if admin:
            self.cognito.admin_add_user_to_group(UserPoolId=self.pool_id, Username=username, GroupName=ADMIN_GROUP)
        self.passwords[user] = password
        self.subjects[user] = next(a["Value"] for a in created["User"]["Attributes"] if a["Name"] == "sub")

    def token(self, user: str, admin: bool) -> str:
        self._ensure(user, admin)
        answer = self.cognito.admin_initiate_auth(
            UserPoolId=self.pool_id, ClientId=self.client_id, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": self._username(user), "PASSWORD": self.passwords[user]})
        return str(answer["AuthenticationResult"]["AccessToken"])

    def user_id(self, user: str) -> str:
        self._ensure(user, False)
        return self.subjects[user]

    def delete_all(self) -> None:
        for user in self.subjects:
            # Gone already: the user service deletes the identity of a customer the run erased.
            with contextlib.suppress(self.cognito.exceptions.UserNotFoundException):
                self.cognito.admin_delete_user(UserPoolId=self.pool_id, Username=self._username(user))


def aws_deployment(environment: str, *, session: Any = None) -> Deployment:
    """The deployed environment: its API URL and user pool from the platform stack's outputs."""
    import boto3

    session = session or boto3.session.Session()
    outputs = stack_outputs(session.client("cloudformation"), f"{names.prefix(environment)}-platform")
    run = uuid.uuid4().hex[:8]
    users = CognitoUsers(session.client("cognito-idp"), pool_id=outputs["UserPoolId"],
                         client_id=outputs["OperatorsClientId"], run_id=run)
    deployment = Deployment(environment, ApiClient(outputs["ApiUrl"], tokens=users))
    deployment.finish.append(users.delete_all)
    return deployment


def has_aws_credentials() -> bool:
    import boto3

    return boto3.session.Session().get_credentials() is not None


# --- a local stack --------------------------------------------------------------------------------------------
def running_local(api_url: str, secret_path: Path) -> Deployment:
    return Deployment("local", ApiClient(api_url, secret_path=secret_path))


@contextmanager
def started_local(workdir: Path) -> Iterator[Deployment]:
    from local.child import local_process

    with local_process(workdir, healthy_within=120) as local:
        yield Deployment("local", local.client)
