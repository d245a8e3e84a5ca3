"""Locally signed JWTs standing in for Cognito; the gateway checks them as the JWT authorizer would.

API Gateway's HTTP API JWT authorizer refuses a token unless: its header's ``kid`` names the key that
signed it, ``iss`` is the configured issuer, ``aud`` (or, only when there is no ``aud``, ``client_id``)
is one of the configured audiences, ``exp`` is after now, and ``nbf`` and ``iat``, when present, are
not after now. ``verify`` refuses the same. One difference stays: the key is a local HMAC secret
(HS256), where API Gateway takes only RSA keys from the issuer's JWKS.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import secrets
import time
from pathlib import Path
from typing import Any

import jwt

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
    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                              "exp": now + int(hours * 3600),
                              "token_use": "access"}
    if admin:
        claims["cognito:groups"] = ["admin"]
    key = secret(path)
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": key_id(key)})


_VERIFIED_KEPT = 4096  # tokens remembered; past that the memo starts again (a run sees a handful of users)
_verified: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}  # (key id, token) -> (exp, claims)
_secrets: dict[Path, tuple[tuple[int, ...], str]] = {}  # path -> (the file's identity and times, secret)


def _current_secret(path: Path) -> str:
    """The secret as the file holds it now, read again only when the file has changed (a status poll
    must not pay a file read; a secret made again while the API runs still counts at once)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return secret(path)
    version = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)  # a file made again: another inode
    seen = _secrets.get(path)
    if seen is not None and seen[0] == version:
        return seen[1]
    key = secret(path)
    _secrets[path] = (version, key)
    return key


def verify(token: str, path: Path = SECRET_FILE) -> dict[str, Any]:
    """Claims as the HTTP API JWT authorizer passes them (arrays flattened to "[a b]"); raises
    ``jwt.InvalidTokenError`` for any token the authorizer would answer 401.

    A token verified before under the same key is answered from memory until its ``exp``: its signature,
    issuer, audience, ``nbf`` and ``iat`` cannot have changed, and only ``exp`` depends on the time. A
    client polling its order every 100 ms spent a fifth of a millisecond per read on the same token."""
    key = _current_secret(path)
    kid = key_id(key)
    known = _verified.get((kid, token))
    if known is not None:
        if known[0] > time.time():  # PyJWT's rule without leeway: expired once int(exp) <= now
            return copy.deepcopy(known[1])
        raise jwt.ExpiredSignatureError("Signature has expired")
    claims = _decode(token, key, kid)
    if len(_verified) >= _VERIFIED_KEPT:
        _verified.clear()
    _verified[(kid, token)] = (int(claims["exp"]), claims)
    return copy.deepcopy(claims)


def _decode(token: str, key: str, kid: str) -> dict[str, Any]:
    if jwt.get_unverified_header(token).get("kid") != kid:
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
    parser = argparse.ArgumentParser(description="print a bearer token for the local API")
    parser.add_argument("--user", required=True)
    parser.add_argument("--admin", action="store_true")
    args = parser.parse_args()
    print(issue(args.user, admin=args.admin))


if __name__ == "__main__":
    main()
