"""The console's session: a signed cookie (itsdangerous, keyed by ``INVOICEFLOW_SECRET_KEY``), HttpOnly,
SameSite=Lax, Secure when served over https.

The cookie is signed again on every request, so its signature time is the last activity and
``max_age`` is the idle timeout; ``issued`` bounds the whole session. It names the user and their
``session_epoch``: a password reset, a role change or disabling the user bumps the epoch and every
session signed before stops working. It also carries the CSRF token that every form posts back.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.settings import Settings

COOKIE = "invoiceflow_session"
PRE_COOKIE = "invoiceflow_login"  # before sign-in: the login form's CSRF token (double submit)
FLASH_COOKIE = "invoiceflow_flash"


@dataclass
class SessionData:
    user_id: uuid.UUID
    epoch: int
    csrf: str
    issued: float


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key, salt=f"invoiceflow.console.{salt}")


def secure(request: Request, settings: Settings) -> bool:
    return request.url.scheme == "https" or settings.public_url.startswith("https://")


def read(request: Request, settings: Settings) -> SessionData | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(settings, "session").loads(raw, max_age=settings.session_idle_minutes * 60)
        session = SessionData(
            user_id=uuid.UUID(data["u"]), epoch=int(data["e"]), csrf=str(data["c"]), issued=float(data["i"])
        )
    except (BadSignature, KeyError, ValueError, TypeError):
        return None
    if time.time() - session.issued > settings.session_max_hours * 3600:
        return None
    return session


def new(user_id: uuid.UUID, epoch: int) -> SessionData:
    return SessionData(user_id=user_id, epoch=epoch, csrf=secrets.token_urlsafe(24), issued=time.time())


def write(response: Response, request: Request, settings: Settings, session: SessionData) -> None:
    value = _serializer(settings, "session").dumps(
        {"u": str(session.user_id), "e": session.epoch, "c": session.csrf, "i": session.issued}
    )
    response.set_cookie(
        COOKIE,
        value,
        max_age=settings.session_max_hours * 3600,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure(request, settings),
    )


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def csrf_matches(expected: str, given: object) -> bool:
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def login_token(request: Request) -> str:
    """The pre-session CSRF token of the login form (the cookie's value, or a new one)."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def set_login_token(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        PRE_COOKIE,
        token,
        max_age=3600,
        path="/app",
        httponly=True,
        samesite="strict",
        secure=secure(request, settings),
    )


def set_flash(response: Response, request: Request, settings: Settings, kind: str, message: str) -> None:
    value = _serializer(settings, "flash").dumps({"k": kind, "m": message[:2000]})
    response.set_cookie(
        FLASH_COOKIE,
        value,
        max_age=120,
        path="/app",
        httponly=True,
        samesite="lax",
        secure=secure(request, settings),
    )


def read_flash(request: Request, settings: Settings) -> tuple[str, str] | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(settings, "flash").loads(raw, max_age=120)
        return str(data["k"]), str(data["m"])
    except (BadSignature, KeyError, TypeError):
        return None
