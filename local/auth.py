"""Locally signed JWTs standing in for Cognito; the gateway checks them as the JWT authorizer would."""

from __future__ import annotations

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


def issue(user_id: str, *, admin: bool = False, hours: float = 12, path: Path = SECRET_FILE) -> str:
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"sub": user_id, "iss": ISSUER, "aud": AUDIENCE, "iat": now,
                              "exp": now + int(hours * 3600),
                              "token_use": "access"}
    if admin:
        claims["cognito:groups"] = ["admin"]
    return jwt.encode(claims, secret(path), algorithm="HS256")


def verify(token: str, path: Path = SECRET_FILE) -> dict[str, Any]:
    """Claims as the HTTP API JWT authorizer passes them (arrays flattened to "[a b]")."""
    import jwt

    claims = jwt.decode(token, secret(path), algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
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
