"""OAuth token storage and refresh against the stand-ins' real token endpoints and a real PostgreSQL.

Refresh tokens rotate at Xero and FreshBooks: each works once. These tests check that the newest one
is always what the database holds (encrypted), that concurrent refreshes spend it once, and that
`invoiceflow connect` exchanges a code and stores what it got.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from typer.testing import CliRunner

from accounting.errors import Transient
from accounting.tokens import (
    ReconnectRequired,
    TokenGrant,
    TokenStore,
    authorization_url,
    oauth_app,
    parse_redirect,
    save_connection,
    token_cipher,
)
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingConnection
from standins.accounting.freshbooks import TOKEN_PATH as FRESHBOOKS_TOKEN_PATH
from standins.accounting.freshbooks import FreshBooksState, create_freshbooks_app
from standins.accounting.qbo import TOKEN_PATH as QBO_TOKEN_PATH
from standins.accounting.qbo import QboState, create_qbo_app
from standins.accounting.xero import PREFIX, TOKEN_PATH, XeroState, create_xero_app
from standins.server import ServedApp, serve

MakeSettings = Callable[..., Settings]


@pytest.fixture
def xero() -> Iterator[tuple[XeroState, ServedApp]]:
    state = XeroState(tenant_id=f"tenant-{uuid.uuid4().hex[:8]}")
    app, _ = create_xero_app(state)
    with serve(app) as served:
        yield state, served


def xero_settings(
    make_settings: MakeSettings, served: ServedApp, tenant: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "accounting_provider": "xero",
        "xero_base_url": served.base_url + PREFIX,
        "xero_token_url": served.base_url + TOKEN_PATH,
        "xero_tenant_id": tenant,
        "xero_client_id": "xero-client",
        "xero_client_secret": "xero-secret",
        "accounting_timeout_s": 5.0,
    }
    values.update(overrides)
    return make_settings(**values)


def store_for(settings: Settings, tenant: str, provider: str = "xero") -> TokenStore:
    return TokenStore(
        database_url=settings.require_database_url(),
        cipher=token_cipher(settings),
        app=oauth_app(settings, provider),
        tenant_id=tenant,
        timeout_s=5.0,
    )


def connect(
    settings: Settings, tenant: str, access: str, refresh: str, expires_in: timedelta, provider: str = "xero"
) -> None:
    grant = TokenGrant(access, refresh, datetime.now(UTC) + expires_in)
    save_connection(settings.require_database_url(), token_cipher(settings), provider, tenant, grant)


def raw_row(settings: Settings, tenant: str) -> tuple[bytes, bytes, str]:
    """The columns as stored, read without the application's models, plus the whole row as text."""
    url = settings.require_database_url().replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        access, refresh, text = conn.execute(
            "select access_token, refresh_token, row_to_json(c)::text from accounting_connections c "
            "where provider = 'xero' and tenant_id = %s",
            (tenant,),
        ).fetchone()
    return bytes(access), bytes(refresh), text


def stored_tokens(settings: Settings, tenant: str) -> tuple[str, str, int]:
    cipher = token_cipher(settings)
    with session_scope(settings.require_database_url()) as session:
        row = session.query(AccountingConnection).filter_by(provider="xero", tenant_id=tenant).one()
        return (
            cipher.decrypt(row.access_token).decode(),
            cipher.decrypt(row.refresh_token).decode(),
            row.generation,
        )


async def test_token_due_to_expire_is_refreshed_and_the_rotated_one_saved_encrypted(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    state.oauth.add_refresh_token("rt-first")
    connect(settings, state.tenant_id, "xero-token", "rt-first", timedelta(minutes=2))  # inside the margin
    store = store_for(settings, state.tenant_id)

    token = await store.access_token()

    assert token != "xero-token" and token.startswith("xero-at-")
    assert state.oauth.token_calls() == 1
    sent = state.oauth.requests[0]
    assert (sent["grant_type"], sent["refresh_token"]) == ("refresh_token", "rt-first")
    access, refresh, generation = stored_tokens(settings, state.tenant_id)
    assert access == token and refresh in state.oauth.refresh_tokens and refresh != "rt-first"
    assert state.oauth.refresh_tokens == {refresh}  # the only live one is the one we kept
    assert generation == 1
    raw_access, raw_refresh, whole_row = raw_row(settings, state.tenant_id)
    for secret in (token, refresh):
        assert secret.encode() not in raw_access + raw_refresh
        assert secret not in whole_row
    # Cached in memory until it is due: no second refresh, no database read needed.
    assert await store.access_token() == token and state.oauth.token_calls() == 1


async def test_two_processes_refreshing_at_once_spend_the_refresh_token_once(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]
) -> None:
    """Two workers (two stores, two threads, two database sessions) find the token expired together.
    The second waits for the first's row lock, sees the refreshed row and does not refresh: one call to
    the token endpoint, and the newest refresh token is the one stored. Without the lock the second
    would spend the already rotated token and get invalid_grant."""
    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    state.oauth.add_refresh_token("rt-shared")
    state.oauth.delay_s = 0.5  # the first refresh holds the lock while the second arrives
    connect(settings, state.tenant_id, "xero-token", "rt-shared", timedelta(seconds=-1))
    first, second = store_for(settings, state.tenant_id), store_for(settings, state.tenant_id)

    tokens = await asyncio.gather(first.access_token(), second.access_token())

    assert state.oauth.token_calls() == 1
    assert tokens[0] == tokens[1]
    access, refresh, generation = stored_tokens(settings, state.tenant_id)
    assert (access, generation) == (tokens[0], 1)
    assert state.oauth.refresh_tokens == {refresh}


async def test_a_401_refreshes_once_even_when_many_calls_saw_it(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]
) -> None:
    """Reactive refresh: several tasks were refused the same token; the first refreshes, the others
    find a different token stored and use it."""
    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    state.oauth.add_refresh_token("rt-401")
    connect(settings, state.tenant_id, "xero-token", "rt-401", timedelta(hours=1))
    stores = [store_for(settings, state.tenant_id) for _ in range(3)]
    refused = await stores[0].access_token()

    await asyncio.gather(*(store.refresh_after_rejection(refused) for store in stores))

    assert state.oauth.token_calls() == 1
    new_tokens = {await store.access_token() for store in stores}
    assert len(new_tokens) == 1 and refused not in new_tokens


async def test_a_spent_refresh_token_asks_for_a_reconnect(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    connect(settings, state.tenant_id, "xero-token", "rt-unknown", timedelta(seconds=-1))
    with pytest.raises(ReconnectRequired, match="invoiceflow connect xero"):
        await store_for(settings, state.tenant_id).access_token()
    assert state.oauth.requests[0]["refresh_token"] == "rt-unknown"


async def test_token_endpoint_down_is_transient(make_settings: MakeSettings) -> None:
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    settings = make_settings(
        accounting_provider="xero",
        xero_tenant_id=tenant,
        xero_client_id="c",
        xero_client_secret="s",
        xero_token_url="http://127.0.0.1:9/identity/connect/token",  # nothing listens on the discard port
    )
    connect(settings, tenant, "old", "rt", timedelta(seconds=-1))
    with pytest.raises(Transient, match="unreachable"):
        await store_for(settings, tenant).access_token()


async def test_qbo_and_freshbooks_token_endpoints_rotate(make_settings: MakeSettings) -> None:
    """QBO: form body + Basic credentials; FreshBooks: JSON body with the credentials and redirect_uri."""
    for provider, state, create, path in (
        ("qbo", QboState(realm_id=f"realm-{uuid.uuid4().hex[:6]}"), create_qbo_app, QBO_TOKEN_PATH),
        (
            "freshbooks",
            FreshBooksState(account_id=f"acct-{uuid.uuid4().hex[:6]}"),
            create_freshbooks_app,
            FRESHBOOKS_TOKEN_PATH,
        ),
    ):
        app, _ = create(state)  # type: ignore[operator]
        tenant = getattr(state, "realm_id", None) or state.account_id  # type: ignore[attr-defined]
        with serve(app) as served:
            settings = make_settings(
                **{
                    "accounting_provider": provider,
                    f"{provider}_token_url": served.base_url + path,
                    f"{provider}_client_id": f"{provider}-client",
                    f"{provider}_client_secret": f"{provider}-secret",
                }
            )
            state.oauth.add_refresh_token(f"{provider}-rt-0")
            connect(settings, tenant, "old", f"{provider}-rt-0", timedelta(seconds=-1), provider=provider)
            store = store_for(settings, tenant, provider)
            token = await store.access_token()
            assert token.startswith(f"{provider}-at-")
            await store.refresh_after_rejection(token)
            assert state.oauth.token_calls() == 2
            sent = state.oauth.requests[1]
            if provider == "freshbooks":
                assert sent["client_id"] == "freshbooks-client" and sent["redirect_uri"].endswith("/callback")
            else:
                assert "client_id" not in sent  # in the Basic header
            assert len(state.oauth.refresh_tokens) == 1


def test_authorization_url_and_pasted_redirects(make_settings: MakeSettings) -> None:
    settings = make_settings(
        xero_client_id="app-1", xero_client_secret="s", public_url="https://billing.example.com"
    )
    url = authorization_url(oauth_app(settings, "xero"), "st4te")
    assert url.startswith(
        "https://login.xero.com/identity/connect/authorize?response_type=code&client_id=app-1"
    )
    assert "redirect_uri=https%3A%2F%2Fbilling.example.com%2Faccounting%2Foauth%2Fcallback" in url
    assert "scope=offline_access%20accounting.transactions" in url and "state=st4te" in url
    pasted = "https://billing.example.com/accounting/oauth/callback?code=abc&state=st4te&realmId=9130"
    assert parse_redirect(pasted, "st4te") == {"code": "abc", "state": "st4te", "realmId": "9130"}
    assert parse_redirect("  abc  ", "st4te") == {"code": "abc"}
    with pytest.raises(ValueError, match="state does not match"):
        parse_redirect(pasted, "other")
    with pytest.raises(Exception, match="access_denied"):
        parse_redirect("https://x/cb?error=access_denied&state=st4te", "st4te")


def test_connect_command_exchanges_the_code_and_stores_the_tokens(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`invoiceflow connect xero`: prints the consent URL, takes the pasted code, exchanges it at the
    token endpoint (authorization_code grant with our redirect URI) and stores the tokens encrypted."""
    from invoiceflow import cli

    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    code = state.oauth.issue_code(settings.public_url.rstrip("/") + "/accounting/oauth/callback")
    result = CliRunner().invoke(cli.app, ["connect", "xero"], input=f"{code}\n")
    assert result.exit_code == 0, result.output
    assert "https://login.xero.com/identity/connect/authorize?" in result.output
    assert f"connected xero organisation {state.tenant_id}" in result.output
    sent = state.oauth.requests[-1]
    assert (sent["grant_type"], sent["code"]) == ("authorization_code", code)
    access, refresh, _ = stored_tokens(settings, state.tenant_id)
    assert state.oauth.refresh_tokens == {refresh}
    assert access.startswith("xero-at-") and access not in result.output and refresh not in result.output

    again = CliRunner().invoke(cli.app, ["connect", "xero"], input=f"{code}\n")  # a code works once
    assert again.exit_code == 1 and "invalid_grant" in again.output


def test_concurrent_refreshes_from_threads_lose_nothing(
    make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]
) -> None:
    """The same race on separate event loops in separate threads (as in two worker processes)."""
    state, served = xero
    settings = xero_settings(make_settings, served, state.tenant_id)
    state.oauth.add_refresh_token("rt-threads")
    state.oauth.delay_s = 0.3
    connect(settings, state.tenant_id, "xero-token", "rt-threads", timedelta(seconds=-1))
    results: list[str] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(asyncio.run(store_for(settings, state.tenant_id).access_token()))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 4 and len(set(results)) == 1
    assert state.oauth.token_calls() == 1
    _, refresh, _ = stored_tokens(settings, state.tenant_id)
    assert state.oauth.refresh_tokens == {refresh}
