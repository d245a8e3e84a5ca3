"""Locally signed JWTs standing in for Cognito; the gateway checks them as the JWT authorizer would.

API Gateway's HTTP API JWT authorizer refuses a token unless: its header's ``kid`` names the key that
signed it, ``iss`` is the configured issuer, ``aud`` (or, only when there is no ``aud``, ``client_id``)
is one of the configured audiences, ``exp`` is after now, and ``nbf`` and ``iat``, when present, are
not after now. ``verify`` refuses the same. One difference stays: the key is a local HMAC secret
(HS256), where API Gateway takes only RSA keys from the issuer's JWKS.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

ISSUER = "https://shopstream.local/issuer"
AUDIENCE = "shopstream-local"
SECRET_FILE = Path(".local") / "jwt-secret"


def secret(path: Path = SECRET_FILE) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def key_id(key: str) -> str:
    """The key's ``kid``, as a JWKS would list it: a token signed with another secret names another key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def issue(user_id: str, *, admin: bool = False, hours: float = 12, path: Path = SECRET_FILE) -> str:
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                              "exp": now + int(hours * 3600),
                              "token_use": "access"}
    if admin:
        claims["cognito:groups"] = ["admin"]
    key = secret(path)
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": key_id(key)})


def verify(token: str, path: Path = SECRET_FILE) -> dict[str, Any]:
    """Claims as the HTTP API JWT authorizer passes them (arrays flattened to "[a b]"); raises
    ``jwt.InvalidTokenError`` for any token the authorizer would answer 401."""
    import jwt

    key = secret(path)
    if jwt.get_unverified_header(token).get("kid") != key_id(key):
        raise jwt.InvalidTokenError("the token's kid is not the signing key's")
    # PyJWT checks exp, and nbf and iat when present, without leeway; the audience is checked below,
    # because the authorizer falls back to client_id (a Cognito access token's) when there is no aud.
    claims = jwt.decode(token, key, algorithms=["HS256"], issuer=ISSUER,
                        options={"require": ["exp", "iss"], "verify_aud": False})
    if "aud" in claims:
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if AUDIENCE not in audiences:
            raise jwt.InvalidAudienceError("aud is not this API's audience")
    elif claims.get("client_id") != AUDIENCE:
        raise jwt.InvalidAudienceError("neither aud nor client_id is this API's audience")
    return {k: f"[{' '.join(v)}]" if isinstance(v, list) else v for k, v in claims.items()}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="print a bearer token for the local API")
    parser.add_argument("--user", required=True)
    parser.add_argument("--admin", action="store_true")
    args = parser.parse_args()
    print(issue(args.user, admin=args.admin))


if __name__ == "__main__":
    main()
