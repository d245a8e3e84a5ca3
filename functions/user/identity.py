"""The customer's sign-in identity (Cognito on AWS): it holds their e-mail address, so erasure deletes it."""

from __future__ import annotations

from shopstream import aws

from .settings import settings


def delete(user_id: str) -> bool:
    """Delete the sign-in identity whose subject is ``user_id``; True if there was one. Idempotent."""
    pool = settings().user_pool_id
    if not pool:
        return False  # no identity store (local): tokens are signed by local/auth.py
    if "@" in user_id:
        # Cognito would take it for an alias, the e-mail address of whoever has it: no subject has an "@"
        # (an admin may erase an id without a profile, so any id the API accepts can get here).
        return False
    cognito = aws.client("cognito-idp")
    try:
        # The pool signs in with e-mail addresses (username attributes), so the subject is the username.
        cognito.admin_delete_user(UserPoolId=pool, Username=user_id)
    except cognito.exceptions.UserNotFoundException:
        return False
    return True
