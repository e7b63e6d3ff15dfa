"""User administration and authentication against the database: passwords (argon2), API tokens (SHA-256
of a high-entropy secret, so a fast hash is enough and a lookup is one index probe), login throttling.

argon2-cffi is the reference binding of the Password Hashing Competition winner; its ``PasswordHasher``
picks safe parameters and tells us when a stored hash should be upgraded (``check_needs_rehash``).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from persistence.user_models import ROLES, ApiToken, LoginAttempt, User, UserAuditEvent

TOKEN_PREFIX = "ifk_"
MIN_PASSWORD = 12
_hasher = PasswordHasher()
# Verifying against this when the account does not exist keeps the answer's timing the same.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserError(ValueError):
    """A refused user operation (unknown user, bad role, weak password); the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is acting: the timeline records ``actor``; ``role`` decides what is allowed."""

    email: str
    role: str
    user_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        return "operator" if self.user_id is None else f"{self.email} ({self.role})"

    def can_act(self) -> bool:
        return self.role in ("admin", "finance")


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    if "@" not in value or len(value) > 190 or value.startswith("@") or value.endswith("@"):
        raise UserError(f"{email!r} is not an email address")
    return value


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise UserError("the password is longer than 1024 characters")
    return password


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def audit(session: Session, actor: str, action: str, subject: str, **data: str) -> None:
    session.add(UserAuditEvent(actor=actor, action=action, subject=subject, data=data))


def get_by_email(session: Session, email: str) -> User | None:
    return session.scalars(select(User).where(User.email == email.strip().lower())).one_or_none()


def require_user(session: Session, email: str) -> User:
    user = get_by_email(session, email)
    if user is None:
        raise UserError(f"no user {email!r}")
    return user


def create_user(session: Session, email: str, role: str, password: str, *, actor: str) -> User:
    email = normalize_email(email)
    check_role(role)
    check_password(password)
    if get_by_email(session, email) is not None:
        raise UserError(f"user {email} exists already")
    user = User(email=email, role=role, password_hash=_hasher.hash(password), disabled=False, session_epoch=0)
    session.add(user)
    audit(session, actor, "user.created", email, role=role)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def set_role(session: Session, email: str, role: str, *, actor: str) -> User:
    user = require_user(session, email)
    check_role(role)
    old, user.role = user.role, role
    user.session_epoch += 1
    for token in user.tokens:  # a token never outranks its user
        if token.revoked_at is None and ROLES.index(token.role) < ROLES.index(role):
            token.role = role
    audit(session, actor, "user.role_changed", user.email, old=old, new=role)
    return user


def set_disabled(session: Session, email: str, disabled: bool, *, actor: str) -> User:
    user = require_user(session, email)
    user.disabled = disabled
    user.session_epoch += 1
    audit(session, actor, "user.disabled" if disabled else "user.enabled", user.email)
    return user


def reset_password(session: Session, email: str, password: str, *, actor: str) -> User:
    user = require_user(session, email)
    user.password_hash = _hasher.hash(check_password(password))
    user.session_epoch += 1
    audit(session, actor, "user.password_reset", user.email)
    return user


def verify_password(session: Session, email: str, password: str) -> User | None:
    """The active user with this email and password, else None (same work either way)."""
    user = get_by_email(session, email)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


# ---------------------------------------------------------------- throttling


@dataclass(frozen=True)
class Throttle:
    per_account: int = 5
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


def throttled(session: Session, email: str, address: str, rules: Throttle, now: datetime) -> bool:
    """Too many failures for this account, or from this address, within the window."""
    since = now - rules.window

    def failures(*where: object) -> int:
        stmt = (
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.succeeded.is_(False), LoginAttempt.at > since, *where)
        )
        return int(session.scalar(stmt) or 0)

    return (
        failures(LoginAttempt.email == email.strip().lower()) >= rules.per_account
        or failures(LoginAttempt.address == address) >= rules.per_address
    )


def record_attempt(session: Session, email: str, address: str, succeeded: bool, now: datetime) -> None:
    session.add(
        LoginAttempt(email=email.strip().lower()[:190], address=address[:64], succeeded=succeeded, at=now)
    )
    if succeeded:
        audit(session, email.strip().lower(), "user.signed_in", email.strip().lower(), address=address)


# ---------------------------------------------------------------- API tokens


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(
    session: Session, email: str, name: str, role: str | None, *, actor: str
) -> tuple[ApiToken, str]:
    """A new token and its secret (returned once, never stored)."""
    user = require_user(session, email)
    if user.disabled:
        raise UserError(f"user {user.email} is disabled")
    role = check_role(role or user.role)
    if ROLES.index(role) < ROLES.index(user.role):
        raise UserError(f"a token cannot have more rights than its user ({user.role})")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        name=name.strip()[:120] or "token",
        role=role,
        prefix=secret[:10],
        token_hash=_digest(secret),
    )
    session.add(token)
    audit(session, actor, "token.created", user.email, name=token.name, role=role, prefix=token.prefix)
    session.flush()
    return token, secret


def list_tokens(session: Session, email: str | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).join(User).order_by(User.email, ApiToken.created_at)
    if email is not None:
        stmt = stmt.where(User.email == email.strip().lower())
    return list(session.scalars(stmt))


def revoke_token(
    session: Session, token_id: uuid.UUID, *, actor: str, owner: uuid.UUID | None = None
) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None or (owner is not None and token.user_id != owner):
        raise UserError(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = datetime.now(UTC)
        audit(session, actor, "token.revoked", token.user.email, name=token.name, prefix=token.prefix)
    return token


def principal_for_token(session: Session, secret: str) -> Principal | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = session.scalars(select(ApiToken).where(ApiToken.token_hash == _digest(secret))).one_or_none()
    if token is None or token.revoked_at is not None or token.user.disabled:
        return None
    now = datetime.now(UTC)
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now  # at most once a minute: a busy script does not write on every call
    return Principal(email=token.user.email, role=token.role, user_id=token.user_id)


def allowed(role: str, needed: str) -> bool:
    """A role may do what a lower one may: viewer < finance < admin."""
    rank = {"viewer": 0, "finance": 1, "admin": 2}
    return rank.get(role, -1) >= rank[needed]
