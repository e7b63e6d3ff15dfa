"""OAuth 2.0 for the accounting providers: which endpoints and scopes each uses, the consent URL, the
code exchange and token requests, and the encryption of what is stored (Fernet; the key from
``INVOICEFLOW_TOKEN_KEY`` or derived from ``INVOICEFLOW_SECRET_KEY`` with HKDF). Storage and refresh are
``accounting.tokens``."""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from accounting.errors import Transient
from core.settings import Settings, split_secrets

if TYPE_CHECKING:  # imported where used, so importing the API or the worker does not need it
    from cryptography.fernet import MultiFernet


from accounting.errors import ConnectionProblem, ReconnectRequired

PROVIDERS = ("xero", "qbo", "freshbooks", "netsuite")
M2M_PROVIDERS = ("netsuite",)  # client credentials: nothing to connect or store
HKDF_INFO = b"invoiceflow/accounting-oauth-tokens/v1"


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
