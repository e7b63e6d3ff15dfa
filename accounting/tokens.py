"""Stored OAuth tokens of the accounting providers: encrypted storage, the organisations connected, and
refresh under a row lock (the OAuth protocol itself is ``accounting.oauth``).

Why it is built this way:

- **Encrypted at rest.** A refresh token is lasting write access to a company's books, so the database
  only ever holds Fernet ciphertext (AES-128-CBC + HMAC-SHA256). The key is ``INVOICEFLOW_TOKEN_KEY``
  (comma-separated Fernet keys, the first encrypts: rotate by putting a new key first) or, unset, a key
  derived from ``INVOICEFLOW_SECRET_KEY`` with HKDF. The derived key always stays as a last decryption
  key, so setting ``TOKEN_KEY`` later loses nothing: the next refresh re-encrypts with it.
- **Rotating refresh tokens.** Xero and FreshBooks replace the refresh token on every refresh (QBO on
  some), and the old one is dead at once (``invalid_grant``). Two workers refreshing together would
  both spend the same token; one gets ``invalid_grant`` or, worse, the slower commit overwrites the
  newer token with a dead one, and the organisation must be reconnected by hand. So a refresh runs
  under ``SELECT ... FOR UPDATE`` on the connection row, re-reads the row after the lock and skips the
  refresh when another process already did it; the provider's answer is committed in the same
  transaction, with nothing else between the HTTP response and the commit.
- **Proactive and reactive.** A token is refreshed shortly before ``expires_at`` (``refresh_margin``),
  and again when the provider answers 401 anyway (revoked early, clock skew): the caller passes the
  token that was refused, and a refresh happens only while that token is still the stored one.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingConnection

if TYPE_CHECKING:  # imported where used, so importing the API or the worker does not need it
    from cryptography.fernet import MultiFernet


from accounting.errors import ConnectionProblem, NotConnected, ReconnectRequired  # noqa: F401
from accounting.oauth import (  # noqa: F401 (re-exported)
    _TENANT_SETTING,
    HKDF_INFO,
    M2M_PROVIDERS,
    PROVIDERS,
    OAuthApp,
    TokenGrant,
    _check_provider,
    _decrypt,
    authorization_url,
    exchange_code,
    new_state,
    oauth_app,
    parse_redirect,
    redirect_uri,
    request_tokens,
    token_cipher,
)

REFRESH_MARGIN = timedelta(minutes=5)


# --- storage ---------------------------------------------------------------------------------------


def save_connection(
    database_url: str, cipher: MultiFernet, provider: str, tenant_id: str, grant: TokenGrant
) -> None:
    """Store (or replace, on reconnect) the tokens of one organisation."""
    _check_provider(provider)
    values = {
        "provider": provider,
        "tenant_id": tenant_id,
        "access_token": cipher.encrypt(grant.access_token.encode()),
        "refresh_token": cipher.encrypt(grant.refresh_token.encode()),
        "expires_at": grant.expires_at,
        "scope": grant.scope,
        "generation": 0,
        "refreshed_at": datetime.now(UTC),
    }
    stmt = insert(AccountingConnection).values(**values)
    stmt = stmt.on_conflict_do_update(
        constraint="uq_accounting_connections_provider_tenant",
        set_={
            "access_token": stmt.excluded.access_token,
            "refresh_token": stmt.excluded.refresh_token,
            "expires_at": stmt.excluded.expires_at,
            "scope": stmt.excluded.scope,
            "refreshed_at": stmt.excluded.refreshed_at,
            "generation": AccountingConnection.generation + 1,
        },
    )
    with session_scope(database_url) as session:
        session.execute(stmt)


def connected_tenants(database_url: str, provider: str) -> list[str]:
    with session_scope(database_url) as session:
        return list(
            session.scalars(
                select(AccountingConnection.tenant_id)
                .where(AccountingConnection.provider == provider)
                .order_by(AccountingConnection.id)
            )
        )


def configured_tenant(settings: Settings, provider: str) -> str | None:
    """``INVOICEFLOW_XERO_TENANT_ID`` / ``_QBO_REALM_ID`` / ``_FRESHBOOKS_ACCOUNT_ID``."""
    value = getattr(settings, _TENANT_SETTING[_check_provider(provider)])
    return str(value) if value else None


def resolve_tenant(settings: Settings, provider: str | None = None) -> str:
    """The organisation to sync with: its setting, else the only one connected (QBO's realm id arrives
    with the consent redirect, so an operator need not copy it into settings)."""
    provider = _check_provider(provider or settings.accounting_provider)
    configured = configured_tenant(settings, provider)
    if configured:
        return configured
    if provider in M2M_PROVIDERS:
        raise NotConnected(
            f"{provider}: set INVOICEFLOW_{_TENANT_SETTING[provider].upper()}", provider=provider
        )
    tenants = connected_tenants(settings.require_database_url(), provider)
    if len(tenants) == 1:
        return tenants[0]
    setting = "INVOICEFLOW_" + _TENANT_SETTING[provider].upper()
    if not tenants:
        raise NotConnected(
            f"{provider} is not connected: run `invoiceflow connect {provider}`", provider=provider
        )
    raise ConnectionProblem(
        f"{len(tenants)} {provider} organisations are connected: set {setting}", provider=provider
    )


# Which access tokens the current activity (asyncio task) was handed, so a 401 can name the one refused.
_handed_out: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "accounting_tokens", default=None
)


@contextmanager
def tokens_used() -> Iterator[list[str]]:
    """``with tokens_used() as used: ...`` collects the access tokens handed out inside the block."""
    used: list[str] = []
    reset = _handed_out.set(used)
    try:
        yield used
    finally:
        _handed_out.reset(reset)


@dataclass(frozen=True)
class _Access:
    token: str = field(repr=False)
    expires_at: datetime


class TokenStore:
    """The ``TokenProvider`` of one organisation's connector: the stored access token, refreshed when
    due. One per organisation per process; the in-memory copy saves a database read per API call."""

    def __init__(
        self,
        *,
        database_url: str,
        cipher: MultiFernet,
        app: OAuthApp,
        tenant_id: str,
        refresh_margin: timedelta = REFRESH_MARGIN,
        timeout_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.database_url = database_url
        self.cipher = cipher
        self.app = app
        self.provider = app.provider
        self.tenant_id = tenant_id
        self.refresh_margin = refresh_margin
        self.timeout_s = timeout_s
        self._clock = clock
        self._current: _Access | None = None

    async def access_token(self) -> str:
        current = self._current
        if current is None or self._due(current.expires_at):
            current = self._current = await asyncio.to_thread(self._fresh, None)
        used = _handed_out.get()
        if used is not None:
            used.append(current.token)
        return current.token

    async def refresh_after_rejection(self, rejected: str | None) -> None:
        """The provider answered 401 to ``rejected``: refresh unless someone already replaced it.
        ``None`` (the refused token is unknown) refreshes whatever is stored."""
        self._current = None
        self._current = await asyncio.to_thread(self._fresh, rejected, force=rejected is None)

    def _due(self, expires_at: datetime) -> bool:
        return expires_at - self._clock() <= self.refresh_margin

    def _needs_refresh(self, access: str, expires_at: datetime, rejected: str | None, force: bool) -> bool:
        if force or (rejected is not None and access == rejected):
            return True
        return self._due(expires_at)

    def _query(self) -> Any:
        return select(AccountingConnection).where(
            AccountingConnection.provider == self.provider, AccountingConnection.tenant_id == self.tenant_id
        )

    def _fresh(self, rejected: str | None, *, force: bool = False) -> _Access:
        """The stored token if still good (no lock), else a refresh under the row lock."""
        if not force:
            with session_scope(self.database_url) as session:
                row = session.scalars(self._query()).one_or_none()
                if row is None:
                    raise self._not_connected()
                access = _decrypt(self.cipher, row.access_token, self.provider)
                if not self._needs_refresh(access, row.expires_at, rejected, False):
                    return _Access(access, row.expires_at)
        return self._refresh_locked(rejected, force=force)

    def _refresh_locked(self, rejected: str | None, *, force: bool) -> _Access:
        with session_scope(self.database_url) as session:
            row = session.scalars(self._query().with_for_update()).one_or_none()
            if row is None:
                raise self._not_connected()
            access = _decrypt(self.cipher, row.access_token, self.provider)
            # Re-read after the lock: whoever held it before us may have refreshed already, and then
            # our refresh token is spent. (A forced refresh cannot tell, so callers name the refused
            # token whenever they know it.)
            if not self._needs_refresh(access, row.expires_at, rejected, force):
                return _Access(access, row.expires_at)
            old_refresh = _decrypt(self.cipher, row.refresh_token, self.provider)
            form = {"grant_type": "refresh_token", "refresh_token": old_refresh}
            if self.app.credentials_in == "json":
                form["redirect_uri"] = self.app.redirect_uri  # FreshBooks wants it on refresh too
            grant = request_tokens(self.app, form, timeout_s=self.timeout_s, now=self._clock())
            row.access_token = self.cipher.encrypt(grant.access_token.encode())
            row.refresh_token = self.cipher.encrypt((grant.refresh_token or old_refresh).encode())
            row.expires_at = grant.expires_at
            row.scope = grant.scope or row.scope
            row.generation += 1
            row.refreshed_at = self._clock()
            return _Access(grant.access_token, grant.expires_at)

    def _not_connected(self) -> NotConnected:
        return NotConnected(
            f"{self.provider} organisation {self.tenant_id} is not connected: run `invoiceflow connect "
            f"{self.provider}`",
            provider=self.provider,
        )
