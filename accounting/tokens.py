"""OAuth 2.0 for the accounting providers: consent URL, code exchange, encrypted storage, refresh.

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
import base64
import contextvars
import secrets
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from accounting.base import AccountingConnector
from accounting.errors import AccessDenied, Transient
from accounting.freshbooks import FreshBooksConnector
from accounting.http import HttpSettings
from accounting.qbo import QboConnector
from accounting.shared_limit import configured_limiter
from accounting.xero import XeroConnector
from core.settings import Settings, split_secrets
from persistence.db import session_scope
from persistence.models import AccountingConnection

if TYPE_CHECKING:  # imported where used, so importing the API or the worker does not need it
    from cryptography.fernet import MultiFernet

    from accounting.netsuite_auth import M2MTokenSource

PROVIDERS = ("xero", "qbo", "freshbooks", "netsuite")
M2M_PROVIDERS = ("netsuite",)  # client credentials: nothing to connect or store
REFRESH_MARGIN = timedelta(minutes=5)
HKDF_INFO = b"invoiceflow/accounting-oauth-tokens/v1"


class ConnectionProblem(AccessDenied):
    """Only a person can fix this: configure the provider's app, or (re)connect the organisation."""


class NotConnected(ConnectionProblem):
    """No tokens stored for this organisation yet."""


class ReconnectRequired(ConnectionProblem):
    """The provider refused the refresh token (``invalid_grant``: expired, revoked or already spent)."""


# --- provider facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ProviderOAuth:
    authorize_url: str
    scopes: tuple[str, ...]
    credentials_in: str  # "basic": HTTP Basic header, form body (RFC 6749); "json": both in a JSON body


_OAUTH = {
    "xero": _ProviderOAuth(
        "https://login.xero.com/identity/connect/authorize",
        ("offline_access", "accounting.transactions", "accounting.contacts", "accounting.settings"),
        "basic",
    ),
    "qbo": _ProviderOAuth(
        "https://appcenter.intuit.com/connect/oauth2", ("com.intuit.quickbooks.accounting",), "basic"
    ),
    # FreshBooks' own SDK and docs post JSON with the client credentials in the body.
    "freshbooks": _ProviderOAuth(
        "https://auth.freshbooks.com/oauth/authorize",
        (
            "user:profile:read",
            "user:clients:read",
            "user:clients:write",
            "user:invoices:read",
            "user:invoices:write",
            "user:payments:read",
            "user:payments:write",
        ),
        "json",
    ),
}

_TENANT_SETTING = {
    "xero": "xero_tenant_id",
    "qbo": "qbo_realm_id",
    "freshbooks": "freshbooks_account_id",
    "netsuite": "netsuite_account_id",
}


@dataclass(frozen=True)
class OAuthApp:
    """Our registered app at one provider, as configured in settings."""

    provider: str
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str
    redirect_uri: str
    authorize_url: str
    scopes: tuple[str, ...]
    credentials_in: str


def _check_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise ConnectionProblem(f"unknown accounting provider {provider!r}; one of {', '.join(PROVIDERS)}")
    return provider


def redirect_uri(settings: Settings) -> str:
    return settings.accounting_redirect_uri or settings.public_url.rstrip("/") + "/accounting/oauth/callback"


def oauth_app(settings: Settings, provider: str) -> OAuthApp:
    """The app from ``INVOICEFLOW_<PROVIDER>_CLIENT_ID/_SECRET/_TOKEN_URL``; missing credentials are a
    ``ConnectionProblem`` now rather than a failed refresh half an hour later."""
    _check_provider(provider)
    if provider in M2M_PROVIDERS:
        raise ConnectionProblem(
            f"{provider} uses OAuth 2.0 client credentials: there is nothing to connect; set "
            f"INVOICEFLOW_{provider.upper()}_ACCOUNT_ID, _CLIENT_ID, _CERTIFICATE_ID and _PRIVATE_KEY(_FILE)",
            provider=provider,
        )
    client_id = getattr(settings, f"{provider}_client_id")
    client_secret = getattr(settings, f"{provider}_client_secret")
    if not client_id or not client_secret:
        name = provider.upper()
        raise ConnectionProblem(
            f"{provider}: set INVOICEFLOW_{name}_CLIENT_ID and INVOICEFLOW_{name}_CLIENT_SECRET (the OAuth "
            "app)",
            provider=provider,
        )
    facts = _OAUTH[provider]
    return OAuthApp(
        provider=provider,
        client_id=client_id,
        client_secret=client_secret,
        token_url=getattr(settings, f"{provider}_token_url"),
        redirect_uri=redirect_uri(settings),
        authorize_url=facts.authorize_url,
        scopes=facts.scopes,
        credentials_in=facts.credentials_in,
    )


# --- encryption ------------------------------------------------------------------------------------


def _derived_key(secret_key: str) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def token_cipher(settings: Settings) -> MultiFernet:
    """Encrypts with the first ``INVOICEFLOW_TOKEN_KEY`` (else the key derived from the secret key);
    decrypts with any of them."""
    from cryptography.fernet import Fernet, MultiFernet

    keys: list[Fernet] = []
    for key in split_secrets(settings.token_key):
        try:
            keys.append(Fernet(key.encode()))
        except ValueError as exc:
            raise ConnectionProblem(
                "INVOICEFLOW_TOKEN_KEY holds a value that is not a Fernet key (32 url-safe base64 bytes; "
                "make one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
    keys.append(Fernet(_derived_key(settings.secret_key)))
    return MultiFernet(keys)


def _decrypt(cipher: MultiFernet, value: bytes, provider: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return cipher.decrypt(value).decode()
    except InvalidToken as exc:
        raise ReconnectRequired(
            f"{provider}: the stored tokens cannot be decrypted (INVOICEFLOW_TOKEN_KEY or SECRET_KEY "
            "changed?); "
            f"run `invoiceflow connect {provider}` again",
            provider=provider,
        ) from exc


# --- the token endpoint ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenGrant:
    """What a token endpoint answered. ``refresh_token`` is empty when the provider kept the old one."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    scope: str = ""


def request_tokens(
    app: OAuthApp,
    form: Mapping[str, str],
    *,
    timeout_s: float = 30.0,
    now: datetime | None = None,
    client: httpx.Client | None = None,
) -> TokenGrant:
    """POST one grant to the provider's token endpoint. ``invalid_grant`` → ``ReconnectRequired``,
    refused client credentials → ``ConnectionProblem``, 5xx and network trouble → ``Transient``."""
    sent_at = now or datetime.now(UTC)
    http = client or httpx.Client(timeout=timeout_s)
    try:
        if app.credentials_in == "json":
            body = {**form, "client_id": app.client_id, "client_secret": app.client_secret}
            response = http.post(app.token_url, json=body, headers={"Accept": "application/json"})
        else:
            response = http.post(
                app.token_url,
                data=dict(form),
                auth=(app.client_id, app.client_secret),
                headers={"Accept": "application/json"},
            )
    except httpx.HTTPError as exc:
        raise Transient(
            f"{app.provider}: token endpoint unreachable: {exc!r}", provider=app.provider
        ) from exc
    finally:
        if client is None:
            http.close()
    try:
        payload: Any = response.json()
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    status = response.status_code
    if status >= 500 or status in (408, 429):
        raise Transient(
            f"{app.provider}: token endpoint answered {status}", provider=app.provider, status_code=status
        )
    error = str(payload.get("error") or "")
    described = f"{error}: {payload['error_description']}" if payload.get("error_description") else error
    if error == "invalid_grant":
        raise ReconnectRequired(
            f"{app.provider}: the provider refused the grant ({described}); run `invoiceflow connect "
            f"{app.provider}` again",
            provider=app.provider,
            status_code=status,
        )
    if error == "invalid_client" or status == 401:
        raise ConnectionProblem(
            f"{app.provider}: the token endpoint refused our client id/secret ({described or status})",
            provider=app.provider,
            status_code=status,
        )
    if status != 200 or not payload.get("access_token"):
        raise ConnectionProblem(
            f"{app.provider}: token endpoint answered {status} {described}".strip(),
            provider=app.provider,
            status_code=status,
        )
    return TokenGrant(
        access_token=str(payload["access_token"]),
        refresh_token=str(payload.get("refresh_token") or ""),
        expires_at=sent_at + timedelta(seconds=int(payload.get("expires_in") or 1800)),
        scope=str(payload.get("scope") or ""),
    )


def authorization_url(app: OAuthApp, state: str) -> str:
    """Where the person who owns the books clicks "Allow" (the consent screen)."""
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": app.redirect_uri,
        "scope": " ".join(app.scopes),
        "state": state,
    }
    return f"{app.authorize_url}?{urllib.parse.urlencode(params, quote_via=urllib.parse.quote)}"


def new_state() -> str:
    return secrets.token_urlsafe(24)


def parse_redirect(pasted: str, expected_state: str | None) -> dict[str, str]:
    """The query of the URL the browser was sent back to (``code``, ``state``, QBO's ``realmId``), or a
    bare code. A URL whose ``state`` is not ours is refused: it was not started by this command."""
    text = pasted.strip()
    if not text:
        raise ValueError("nothing was pasted")
    if "code=" not in text and "error=" not in text and "?" not in text:
        return {"code": text}
    query = urllib.parse.urlsplit(text).query if "://" in text or text.startswith("/") else text.lstrip("?")
    params = dict(urllib.parse.parse_qsl(query))
    if "error" in params:
        raise ConnectionProblem(
            f"the provider answered {params['error']}: {params.get('error_description', '')}".strip()
        )
    if expected_state is not None and params.get("state") not in (None, expected_state):
        raise ValueError(
            "the pasted URL belongs to another authorisation (its state does not match); start again"
        )
    if not params.get("code"):
        raise ValueError("the pasted URL has no code= parameter")
    return params


def exchange_code(app: OAuthApp, code: str, *, timeout_s: float = 30.0) -> TokenGrant:
    """The authorization_code grant: the code from the redirect → the first access and refresh tokens."""
    grant = request_tokens(
        app,
        {"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri},
        timeout_s=timeout_s,
    )
    if not grant.refresh_token:
        raise ConnectionProblem(f"{app.provider}: no refresh token was granted (is offline access allowed?)")
    return grant


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


# --- one organisation's connector ------------------------------------------------------------------


@dataclass
class Connection:
    """A connector and its token store for the configured organisation."""

    provider: str
    tenant_id: str
    store: TokenStore | M2MTokenSource
    connector: AccountingConnector

    async def aclose(self) -> None:
        await self.connector.aclose()


def open_connection(settings: Settings, tenant_id: str) -> Connection:
    """The connector for ``settings.accounting_provider``. Its rate limiter is the deployment-wide one
    of the organisation (``accounting.shared_limit``, call it on the event loop that uses it), or with
    ``accounting_rate_limit_scope=process`` the process-wide one (``accounting.ratelimit.limiter_for``)."""
    provider = _check_provider(settings.accounting_provider)
    if provider == "netsuite":
        from accounting.netsuite_connection import open_netsuite

        return open_netsuite(settings, tenant_id)
    app = oauth_app(settings, provider)
    store = TokenStore(
        database_url=settings.require_database_url(),
        cipher=token_cipher(settings),
        app=app,
        tenant_id=tenant_id,
        timeout_s=settings.accounting_timeout_s,
    )
    http = HttpSettings(timeout_s=settings.accounting_timeout_s)
    policy, limiter = configured_limiter(settings, provider, tenant_id)
    connector: AccountingConnector
    if provider == "xero":
        connector = XeroConnector(
            tenant_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.xero_base_url,
            payment_account_code=settings.accounting_payment_account or "090",
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    elif provider == "qbo":
        connector = QboConnector(
            realm_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.qbo_base_url,
            deposit_account_id=settings.accounting_payment_account,
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    else:
        connector = FreshBooksConnector(
            account_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.freshbooks_base_url,
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    return Connection(provider=provider, tenant_id=tenant_id, store=store, connector=connector)
