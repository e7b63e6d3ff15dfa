"""Signing in and out of the console, the current user of a request, and the guard every form post
passes (CSRF token, role).

Failed sign-ins are counted in PostgreSQL per account and per client address; past the limit a correct
password is refused too until the window has passed, and the page says so without telling whether the
account exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from api.console import session as cookies
from api.console.rendering import render_page
from core.settings import Settings
from persistence import users
from persistence.db import session_scope
from persistence.user_models import User
from persistence.users import allowed

router = APIRouter(prefix="/app", include_in_schema=False)


class LoginRequired(Exception):
    """No (valid) session: the handler sends the browser to the login form and back afterwards."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


@dataclass
class Current:
    """The signed-in user of this request, and the session to re-sign on the response."""

    principal: users.Principal
    session: cookies.SessionData


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _load(request: Request) -> Current | None:
    settings = _settings(request)
    data = cookies.read(request, settings)
    if data is None:
        return None
    with session_scope(settings.require_database_url()) as session:
        user = session.get(User, data.user_id)
        if user is None or user.disabled or user.session_epoch != data.epoch:
            return None
        principal = users.Principal(email=user.email, role=user.role, user_id=user.id)
    return Current(principal=principal, session=data)


def session_principal(request: Request) -> users.Principal | None:
    current = getattr(request.state, "console", None) or _load(request)
    return current.principal if current else None


def current(request: Request) -> Current:
    """Dependency of every console page: the user, or a redirect to the login form."""
    found = _load(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    request.state.console = found
    return found


async def guard(request: Request, needed: str = "finance") -> tuple[Current, FormData]:
    """A state-changing form post: signed in, the session's CSRF token, and the role (else 403)."""
    who = current(request)
    form = await request.form()
    if not cookies.csrf_matches(who.session.csrf, form.get("csrf_token")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="missing or wrong CSRF token; reload the page")
    if not allowed(who.principal.role, needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"this needs the {needed} role; you are {who.principal.role}"
        )
    return who, form


def finish(request: Request, response: Response) -> Response:
    """Re-sign the session on the response (its signature time is the idle clock)."""
    found: Current | None = getattr(request.state, "console", None)
    if found is not None:
        cookies.write(response, request, _settings(request), found.session)
    return response


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    found: Current | None = getattr(request.state, "console", None)
    flash = cookies.read_flash(request, _settings(request))
    html = render_page(
        template,
        request=request,
        user=found.principal if found else None,
        csrf=found.session.csrf if found else "",
        flash=flash,
        **context,
    )
    response = HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
    if flash is not None:
        response.delete_cookie(cookies.FLASH_COOKIE, path="/app")
    finish(request, response)
    return response


def redirect(request: Request, url: str, flash: tuple[str, str] | None = None) -> Response:
    response = RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)
    if flash is not None:
        cookies.set_flash(response, request, _settings(request), *flash)
    return finish(request, response)


def _safe_next(value: str | None) -> str:
    # Only a path of this site: never //host or a scheme (an open redirect would help phishing).
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app"


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_form(
    request: Request, *, next_path: str, error: str = "", email: str = "", code: int = 200
) -> Response:
    token = cookies.login_token(request)
    response = page(
        request,
        "login.html",
        status_code=code,
        next_path=next_path,
        error=error,
        email=email,
        login_csrf=token,
    )
    cookies.set_login_token(response, request, _settings(request), token)
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str | None = None) -> Response:  # noqa: A002
    return _login_form(request, next_path=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    settings = _settings(request)
    form = await request.form()
    email = str(form.get("email") or "").strip()[:190]
    password = str(form.get("password") or "")
    next_path = _safe_next(str(form.get("next") or ""))
    pre = request.cookies.get(cookies.PRE_COOKIE) or ""
    if not pre or not cookies.csrf_matches(pre, form.get("csrf_token")):
        return _login_form(
            request,
            next_path=next_path,
            email=email,
            code=403,
            error="The form expired or cookies are blocked; please sign in again.",
        )
    now, address = datetime.now(UTC), _address(request)
    rules = users.Throttle(
        per_account=settings.login_max_failures, per_address=settings.login_max_failures_per_address
    )

    def attempt() -> tuple[str, uuid.UUID | None, int]:
        with session_scope(settings.require_database_url()) as session:
            if users.throttled(session, email, address, rules, now):
                return "throttled", None, 0
            user = users.verify_password(session, email, password) if email and password else None
            users.record_attempt(session, email, address, user is not None, now)
            if user is None:
                return "wrong", None, 0
            user.last_login_at = now
            return "ok", user.id, user.session_epoch

    from fastapi.concurrency import run_in_threadpool

    outcome, user_id, epoch = await run_in_threadpool(attempt)
    if outcome == "throttled":
        return _login_form(
            request,
            next_path=next_path,
            email=email,
            code=status.HTTP_429_TOO_MANY_REQUESTS,
            error="Too many failed sign-ins. Wait 15 minutes, or ask an admin to reset your password.",
        )
    if outcome == "wrong" or user_id is None:
        return _login_form(
            request,
            next_path=next_path,
            email=email,
            code=status.HTTP_401_UNAUTHORIZED,
            error="Wrong email or password.",
        )
    data = cookies.new(user_id, epoch)  # a fresh session (and CSRF token) on every sign-in
    request.state.console = Current(
        principal=users.Principal(email=email, role="", user_id=user_id), session=data
    )
    response = redirect(request, next_path)
    response.delete_cookie(cookies.PRE_COOKIE, path="/app")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await guard(request, needed="viewer")
    request.state.console = None
    response = RedirectResponse("/app/login", status_code=status.HTTP_303_SEE_OTHER)
    cookies.clear(response)
    cookies.set_flash(response, request, _settings(request), "ok", "You are signed out.")
    return response


def login_redirect(request: Request, exc: LoginRequired) -> Response:
    if request.method != "GET":
        # A post from an expired session: nothing was done; say so on the login page.
        response = RedirectResponse("/app/login", status_code=status.HTTP_303_SEE_OTHER)
        cookies.set_flash(
            response, request, _settings(request), "error", "Your session ended; nothing was changed."
        )
        return response
    return RedirectResponse(f"/app/login?next={quote(exc.next_path, safe='/')}", status_code=303)
