"""Accounts: registration, password login, and administration."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from services.auth import crud
from services.auth.context import AuthContext
from services.auth.models import ROLE_ADMIN, ROLE_MEMBER, User
from services.auth.passwords import check_policy, hash_password, needs_rehash, verify_password
from services.auth.registration import check_may_register
from services.auth.sessions import TokenPair, start_session
from services.auth.setup_codes import claim_setup_code
from services.common.db import session_scope
from services.common.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)

MAX_EMAIL_LENGTH = 254


def normalize_email(raw: str) -> str:
    if len(raw) > MAX_EMAIL_LENGTH:
        raise InvalidInput("invalid_email", "That email address is too long.")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidInput("invalid_email", "That does not look like an email address.") from exc
    return result.normalized.lower()


def register(ctx: AuthContext, *, email: str, password: str, setup_code: str = "") -> User:
    """A member account, or the first administrator when `setup_code` is the instance's
    one-time code (then the registration policy does not apply: it makes the one who sets
    the policy)."""
    email = normalize_email(email)
    if not setup_code:
        check_may_register(ctx.settings, email)
    check_policy(password, email=email)
    password_hash = hash_password(password)
    try:
        with session_scope(ctx.engine) as db:
            if crud.get_user_by_email(db, email=email) is not None:
                raise Conflict("email_taken", "An account with this email already exists.")
            role = ROLE_ADMIN if setup_code else ROLE_MEMBER
            user = crud.create_user(db, email=email, password_hash=password_hash, role=role)
            # Claimed in the same transaction as the account: both land, or neither does.
            if setup_code and not claim_setup_code(db, code=setup_code, user_id=user.id):
                raise PermissionDenied(
                    "invalid_setup_code",
                    "That setup code is not valid or has already been used. Run "
                    "`python -m services.auth.setup_codes` on the server for a new one.",
                )
    except IntegrityError as exc:  # lost a race with a concurrent registration
        raise Conflict("email_taken", "An account with this email already exists.") from exc
    if setup_code:
        ctx.settings.setup_code_file.unlink(missing_ok=True)
    return user


def login(ctx: AuthContext, *, email: str, password: str) -> TokenPair:
    """Tokens for the right password. A miss answers the same whether or not the account
    exists, at the same cost; no account is ever locked (the gateway slows the source down
    instead: services/gateway/sign_in_throttle.py)."""
    invalid = Unauthenticated("invalid_credentials", "The email or password is not correct.")
    try:
        email = normalize_email(email)
    except InvalidInput:
        verify_password(None, password)  # same cost as a real miss
        raise invalid from None
    with session_scope(ctx.engine) as db:
        user = crud.get_user_by_email(db, email=email)
        ok = verify_password(user.password_hash if user else None, password)
        if user is None or not ok:
            raise invalid
        if user.disabled:
            raise PermissionDenied("account_disabled", "This account has been disabled.")
        if user.password_hash and needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
            db.add(user)
        return start_session(ctx, db, user)


def get_user(ctx: AuthContext, *, user_id: str) -> User:
    with session_scope(ctx.engine) as db:
        user = crud.get_user(db, user_id=user_id)
        if user is None:
            raise NotFound("user_not_found", "No such user.")
        return user


def _require_admin(db: Session, caller_id: str) -> None:
    caller = crud.get_user(db, user_id=caller_id)
    if caller is None or caller.disabled or caller.role != ROLE_ADMIN:
        raise PermissionDenied("admin_required", "Only an administrator can do this.")


def list_users(
    ctx: AuthContext, *, caller_id: str, limit: int, offset: int
) -> tuple[list[User], int]:
    with session_scope(ctx.engine) as db:
        _require_admin(db, caller_id)
        return crud.list_users(db, limit=max(1, min(limit or 50, 200)), offset=max(0, offset))


def set_disabled(ctx: AuthContext, *, caller_id: str, user_id: str, disabled: bool) -> User:
    with session_scope(ctx.engine) as db:
        _require_admin(db, caller_id)
        if caller_id == user_id and disabled:
            raise InvalidInput("cannot_disable_self", "You cannot disable your own account.")
        user = crud.get_user(db, user_id=user_id)
        if user is None:
            raise NotFound("user_not_found", "No such user.")
        user.disabled = disabled
        db.add(user)
        if disabled:
            crud.revoke_user_sessions(db, user_id=user.id, reason="user_disabled")
    if disabled:
        ctx.revocations.publish(user_id=user_id, reason="user_disabled")
    return user
