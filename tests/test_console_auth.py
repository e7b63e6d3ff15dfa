"""Console users, sessions and roles over HTTP (the app in-process, real PostgreSQL and Temporal): sign in,
CSRF, throttling, idle timeout, per-user API tokens and their roles, and who did what on the timeline."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from api.main import create_app
from core.settings import Settings
from persistence import users
from persistence.db import session_scope
from persistence.user_models import UserAuditEvent
from tests.support import customer_body, eventually
from worker import build_worker

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(settings: Settings, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@firm.example.com"
    with session_scope(settings.require_database_url()) as session:
        users.create_user(session, email, role, PASSWORD, actor="test")
    return email


@asynccontextmanager
async def browser(settings: Settings, temporal) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    """A cookie-keeping client without the bearer header: what a browser sends."""
    app = create_app(settings, temporal)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://invoiceflow.test"
        ) as client,
    ):
        yield client


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/app/login")
    token = CSRF.search(form.text).group(1)  # type: ignore[union-attr]
    return await client.post(
        "/app/login",
        data={"email": email, "password": password, "csrf_token": token, "next": "/app/invoices"},
    )


def csrf_of(html: str) -> str:
    return CSRF.search(html).group(1)  # type: ignore[union-attr]


async def test_sign_in_session_cookie_and_csrf(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    email = make_user(settings, "finance")
    async with browser(settings, temporal_env.client) as client:
        assert (await client.get("/app")).headers["location"] == "/app/login?next=/app"
        answer = await sign_in(client, email)
        assert answer.status_code == 303 and answer.headers["location"] == "/app/invoices"
        cookie = answer.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
        page = await client.get("/app/customers")
        assert page.status_code == 200 and email in page.text
        # A form post without the CSRF token, or with a wrong one, is refused and changes nothing.
        body = {"name": "No CSRF Ltd", "emails": "ap@nocsrf.example.com"}
        assert (await client.post("/app/customers", data=body)).status_code == 403
        assert (await client.post("/app/customers", data={**body, "csrf_token": "x" * 32})).status_code == 403
        assert "No CSRF Ltd" not in (await client.get("/app/customers")).text
        # The session reads the JSON API (the aging page) but never writes through it.
        assert (await client.get("/reports/aging")).status_code == 200
        assert (await client.post("/customers", json=customer_body())).status_code == 401
        # Sign out: the session no longer works.
        done = await client.post("/app/logout", data={"csrf_token": csrf_of(page.text)})
        assert done.status_code == 303
        assert (await client.get("/app")).status_code == 303


async def test_secure_cookie_behind_https(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, public_url="https://billing.example.com")
    email = make_user(settings, "viewer")
    async with browser(settings, temporal_env.client) as client:
        answer = await sign_in(client, email)
        assert "Secure" in answer.headers["set-cookie"]


async def test_five_wrong_passwords_throttle_the_account(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    email = make_user(settings, "finance")
    async with browser(settings, temporal_env.client) as client:
        for _ in range(5):
            assert (await sign_in(client, email, "wrong password!")).status_code == 401
        refused = await sign_in(client, email)  # the right password, too soon
        assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
        assert "invoiceflow_session" not in refused.headers.get("set-cookie", "")
    other = make_user(settings, "finance")  # another account from the same address still signs in
    async with browser(settings, temporal_env.client) as client:
        assert (await sign_in(client, other)).status_code == 303


async def test_idle_timeout_and_password_reset_end_sessions(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, session_idle_minutes=1)
    email = make_user(settings, "viewer")
    async with browser(settings, temporal_env.client) as client:
        await sign_in(client, email)
        assert (await client.get("/app")).status_code == 200
        with session_scope(settings.require_database_url()) as session:
            users.reset_password(session, email, "a brand new password", actor="test")
        assert (await client.get("/app")).status_code == 303
    async with browser(settings, temporal_env.client) as client:
        await sign_in(client, email, "a brand new password")
        assert (await client.get("/app")).status_code == 200
        real = time.time
        try:
            time.time = lambda: real() + 61  # itsdangerous reads the clock through time.time
            assert (await client.get("/app")).status_code == 303
        finally:
            time.time = real


async def test_api_tokens_roles_and_who_did_it(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    finance, viewer = make_user(settings, "finance"), make_user(settings, "viewer")
    with session_scope(settings.require_database_url()) as session:
        _, finance_token = users.create_token(session, finance, "books script", None, actor="test")
        _, viewer_token = users.create_token(session, viewer, "dashboard", None, actor="test")
        with pytest.raises(users.UserError):
            users.create_token(session, viewer, "sneaky", "admin", actor="test")
    app = create_app(settings, temporal_env.client)
    async with (
        build_worker(temporal_env.client, settings),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://invoiceflow.test") as http,
    ):
        as_finance = {"Authorization": f"Bearer {finance_token}"}
        as_viewer = {"Authorization": f"Bearer {viewer_token}"}
        customer = (await http.post("/customers", json=customer_body(), headers=as_finance)).json()
        assert (await http.get(f"/customers/{customer['id']}", headers=as_viewer)).status_code == 200
        forged = await http.post("/customers", json=customer_body(), headers=as_viewer)
        assert forged.status_code == 403 and "finance role" in forged.json()["detail"]
        rules = await http.put(
            "/approval-rules", content="rules: []", headers={**as_finance, "Content-Type": "application/yaml"}
        )
        assert rules.status_code == 403  # approval rules are the admin's
        invoice = (
            await http.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Audit", "unit_price": "100.00"}],
                },
                headers=as_finance,
            )
        ).json()

        async def issued():  # type: ignore[no-untyped-def]
            body = (await http.get(f"/invoices/{invoice['id']}", headers=as_viewer)).json()
            return body if body["status"] == "open" else None

        await eventually(issued, what="issued")
        paid = await http.post(
            f"/invoices/{invoice['id']}/payments", json={"amount": "40.00"}, headers=as_finance
        )
        assert paid.status_code == 201
        timeline = (await http.get(f"/invoices/{invoice['id']}", headers=as_viewer)).json()["timeline"]
        assert f"{finance} (finance)" in [e["actor"] for e in timeline if e["kind"].startswith("payment")]
        # The installation token still works, as the admin "operator".
        legacy = await http.get("/customers", headers={"Authorization": f"Bearer {settings.api_token}"})
        assert legacy.status_code == 200
        # Revoked: refused at once.
        with session_scope(settings.require_database_url()) as session:
            [token] = users.list_tokens(session, viewer)
            users.revoke_token(session, token.id, actor="test")
        assert (await http.get("/customers", headers=as_viewer)).status_code == 401
    with session_scope(settings.require_database_url()) as session:
        actions = set(session.scalars(select(UserAuditEvent.action).where(UserAuditEvent.subject == viewer)))
    assert {"user.created", "token.created", "token.revoked"} <= actions


def test_users_and_tokens_from_the_command_line(make_settings) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    settings = make_settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    env["INVOICEFLOW_DATABASE_URL"] = settings.require_database_url()
    email = f"cli-{uuid.uuid4().hex[:6]}@firm.example.com"

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "invoiceflow.cli", *args],
            input=stdin,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert cli("users", "create", email, "--role", "viewer", stdin="short\n").returncode == 1  # too short
    made = cli("users", "create", email, "--role", "viewer", stdin=f"{PASSWORD}\n")
    assert made.returncode == 0 and f"created {email} (viewer)" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr
    assert cli("users", "create", email, stdin=f"{PASSWORD}\n").returncode == 1  # exists already
    assert cli("users", "set-role", email, "auditor").returncode == 1
    assert cli("users", "set-role", email, "finance").returncode == 0
    token = cli("tokens", "create", email, "--name", "bank import")
    assert token.returncode == 0 and token.stdout.strip().startswith("ifk_")
    with session_scope(settings.require_database_url()) as session:
        assert users.principal_for_token(session, token.stdout.strip()) == users.Principal(
            email=email, role="finance", user_id=users.require_user(session, email).id
        )
        assert users.verify_password(session, email, PASSWORD) is not None
    assert cli("users", "reset-password", email, stdin="another long password\n").returncode == 0
    assert cli("users", "disable", email).returncode == 0
    listed = cli("users", "list").stdout
    assert f"{email}\tfinance\tdisabled" in listed
    with session_scope(settings.require_database_url()) as session:
        assert users.verify_password(session, email, "another long password") is None  # disabled
        assert users.principal_for_token(session, token.stdout.strip()) is None  # with its user


async def test_no_open_redirects(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    email = make_user(settings, "finance")
    async with browser(settings, temporal_env.client) as client:
        form = await client.get("/app/login")
        answer = await client.post(
            "/app/login",
            data={
                "email": email,
                "password": PASSWORD,
                "csrf_token": csrf_of(form.text),
                "next": "//evil.example",
            },
        )
        assert answer.headers["location"] == "/app"
        token = csrf_of((await client.get("/app")).text)
        missing = uuid.uuid4()
        for back in ("https://evil.example/x", "//evil.example", "/app/\\evil"):
            refused = await client.post(
                f"/app/invoices/{missing}/approve", data={"csrf_token": token, "back": back}
            )
            assert refused.status_code == 303 and refused.headers["location"] == f"/app/invoices/{missing}"
        inbox = await client.post(
            f"/app/invoices/{missing}/approve", data={"csrf_token": token, "back": "/app/approvals"}
        )
        assert inbox.headers["location"] == "/app/approvals"
        shown = await client.get("/app/approvals")
        assert f"invoice {missing} does not exist" in shown.text  # the refusal, in the route's words
