"""The local gateway refuses the JWTs API Gateway's HTTP API JWT authorizer refuses (401), and passes
the claims of the others to the function: kid, iss, aud (or client_id without aud), exp required and
after now, nbf and iat not after now."""

from __future__ import annotations

import http.client
import json
import threading
import time
from functools import partial

import jwt
import pytest

from local import auth
from local.gateway import Gateway


@pytest.fixture(scope="module")
def secret_path(tmp_path_factory):
    return tmp_path_factory.mktemp("auth") / "jwt-secret"


@pytest.fixture(scope="module")
def gateway(secret_path):
    """The gateway on a free port; the user service's API function answers with the claims it got."""
    def invoke(service, event):
        return {"statusCode": 200, "body": json.dumps(event["requestContext"]["authorizer"]["jwt"]["claims"])}

    server = Gateway(host="127.0.0.1", port=0, invoke=invoke, verify=partial(auth.verify, path=secret_path),
                     health=lambda: (200, {}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    thread.join(timeout=5)


def get_user(gateway: Gateway, authorization: str | None) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
    try:
        connection.request("GET", "/users/u1", headers={"Authorization": authorization} if authorization else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def signed(secret_path, *, drop: tuple[str, ...] = (), headers: dict | None = None, **claims) -> str:
    """A token signed with the local secret: the claims ``auth.issue`` makes, changed as given."""
    now = int(time.time())
    key = auth.secret(secret_path)
    payload = {"sub": "u1", "iss": auth.ISSUER, "aud": auth.AUDIENCE, "iat": now, "exp": now + 600,
               "token_use": "access", **claims}
    for name in drop:
        payload.pop(name)
    header = {"kid": auth.key_id(key)} if headers is None else headers
    return jwt.encode(payload, key, algorithm="HS256", headers=header)


def test_a_token_of_auth_issue_passes_with_its_claims(gateway, secret_path):
    status, claims = get_user(gateway, f"Bearer {auth.issue('u1', admin=True, path=secret_path)}")
    assert status == 200 and isinstance(claims, dict)
    assert claims["sub"] == "u1" and claims["cognito:groups"] == "[admin]"  # flattened, as the authorizer does


def test_a_token_without_exp_is_refused(gateway, secret_path):
    assert get_user(gateway, f"Bearer {signed(secret_path, drop=('exp',))}") == (401, {"message": "Unauthorized"})


def test_an_expired_token_is_refused(gateway, secret_path):
    past = int(time.time()) - 1
    assert get_user(gateway, f"Bearer {signed(secret_path, exp=past)}")[0] == 401


@pytest.mark.parametrize("claims", [
    {"nbf": int(time.time()) + 600},  # not before: later
    {"iat": int(time.time()) + 600},  # issued: later
    {"iss": "https://somebody.else/issuer"},
    {"aud": "another-api"},
    {"aud": ["another-api", "yet-another"]},
    {"aud": "another-api", "client_id": auth.AUDIENCE},  # with aud present, client_id is not looked at
], ids=["nbf-later", "iat-later", "foreign-iss", "foreign-aud", "foreign-aud-list", "aud-before-client_id"])
def test_a_token_the_authorizer_refuses_for_a_claim_is_refused(gateway, secret_path, claims):
    assert get_user(gateway, f"Bearer {signed(secret_path, **claims)}")[0] == 401


@pytest.mark.parametrize("drop", [("iss",), ("aud",)])
def test_a_token_without_issuer_or_audience_is_refused(gateway, secret_path, drop):
    assert get_user(gateway, f"Bearer {signed(secret_path, drop=drop)}")[0] == 401


def test_client_id_stands_for_aud_when_there_is_no_aud(gateway, secret_path):
    # A Cognito access token carries client_id and no aud; the authorizer matches client_id then.
    token = signed(secret_path, drop=("aud",), client_id=auth.AUDIENCE)
    assert get_user(gateway, f"Bearer {token}")[0] == 200
    assert get_user(gateway, f"Bearer {signed(secret_path, drop=('aud',), client_id='another')}")[0] == 401


@pytest.mark.parametrize("headers", [{}, {"kid": "another-key"}], ids=["no-kid", "foreign-kid"])
def test_a_token_whose_kid_is_not_the_signing_key_is_refused(gateway, secret_path, headers):
    assert get_user(gateway, f"Bearer {signed(secret_path, headers=headers)}")[0] == 401


def test_a_token_signed_with_another_key_or_none_is_refused(gateway, secret_path, tmp_path):
    other = auth.issue("u1", path=tmp_path / "other-secret")
    assert get_user(gateway, f"Bearer {other}")[0] == 401
    unsigned = jwt.encode(jwt.decode(signed(secret_path), options={"verify_signature": False}), "",  # "": no key
                          algorithm="none", headers={"kid": auth.key_id(auth.secret(secret_path))})
    assert get_user(gateway, f"Bearer {unsigned}")[0] == 401


def test_the_token_is_taken_with_or_without_bearer_as_the_identity_source_allows(gateway, secret_path):
    token = auth.issue("u1", path=secret_path)
    assert get_user(gateway, token)[0] == 200
    assert get_user(gateway, None)[0] == 401
    assert get_user(gateway, "Bearer ")[0] == 401


def test_a_token_verified_before_is_refused_once_it_expires(secret_path):
    """Verified tokens are remembered (a status poll does not check the same signature again), but only until
    their exp: the memo answers as PyJWT would, expired once exp <= now."""
    exp = int(time.time()) + 1
    token = signed(secret_path, exp=exp)
    assert auth.verify(token, secret_path)["sub"] == "u1"
    assert auth.verify(token, secret_path)["sub"] == "u1"  # from the memo
    time.sleep(max(exp - time.time(), 0) + 0.01)
    with pytest.raises(jwt.ExpiredSignatureError):
        auth.verify(token, secret_path)


def test_a_token_verified_before_is_refused_once_the_secret_is_made_again(tmp_path):
    path = tmp_path / "jwt-secret"
    token = auth.issue("u1", path=path)
    assert auth.verify(token, path)["sub"] == "u1"
    path.write_text("another secret, of another length than 64 hex digits")
    with pytest.raises(jwt.InvalidTokenError):
        auth.verify(token, path)
    assert auth.verify(auth.issue("u1", path=path), path)["sub"] == "u1"


def test_the_claims_a_request_gets_are_its_own(secret_path):
    token = auth.issue("u1", path=secret_path)
    auth.verify(token, secret_path)["sub"] = "somebody else"
    assert auth.verify(token, secret_path)["sub"] == "u1"
