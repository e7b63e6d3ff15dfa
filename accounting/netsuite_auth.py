"""NetSuite OAuth 2.0 client credentials (machine to machine): no consent screen, no refresh token.

An administrator maps our integration record to a role and uploads the public certificate (Setup >
Integration > Manage Authentication > OAuth 2.0 Client Credentials (M2M) Setup), which yields a
Certificate ID. We then sign a short JWT with the certificate's private key and exchange it for an
access token, per Oracle's "The Request Token Structure" (section_162790605110) and "POST Request to the
Token Endpoint and the Access Token Response" (section_162755359851):

- header ``typ: JWT``, ``alg`` one of PS256/PS384/PS512/ES256/ES384/ES512, ``kid`` = the Certificate ID;
- payload ``iss`` = the integration's client id, ``scope`` = ``rest_webservices`` (comma-separated list),
  ``aud`` = the token endpoint, ``iat``, ``exp`` (less than 60 minutes after ``iat``);
- ``POST /services/rest/auth/oauth2/v1/token`` as ``application/x-www-form-urlencoded`` with
  ``grant_type=client_credentials``, ``client_assertion_type=urn:ietf:params:oauth:client-assertion-type:
  jwt-bearer`` and ``client_assertion``; the answer is ``access_token`` (valid 60 minutes), ``expires_in``,
  ``token_type``.

OAuth 1.0 token-based authentication is being retired, so it is not offered. Signing uses PyJWT (with
``cryptography``, already a dependency), which implements the PS and ES families; nothing is hand-rolled.
The token lives in memory only (an hour, re-minted a few minutes early or after a 401): there is nothing
long-lived to store, unlike the other providers' refresh tokens. The private key never leaves the
process and is never logged; errors name the setting to fix, not the key.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from accounting.errors import ConnectionProblem, Transient
from core.settings import Settings

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME_S = 300
REFRESH_MARGIN_S = 300


@dataclass(frozen=True)
class M2MCredentials:
    client_id: str
    certificate_id: str
    private_key: str = field(repr=False)
    token_url: str
    algorithm: str = "PS256"
    scope: str = "rest_webservices"


def credentials(settings: Settings, base_url: str) -> M2MCredentials:
    """From ``INVOICEFLOW_NETSUITE_CLIENT_ID/_CERTIFICATE_ID/_PRIVATE_KEY(_FILE)``; what is missing is a
    ``ConnectionProblem`` now, not a failed sync later."""
    key = settings.netsuite_private_key.get_secret_value() if settings.netsuite_private_key else None
    if not key and settings.netsuite_private_key_file:
        try:
            key = Path(settings.netsuite_private_key_file).read_text()
        except OSError as exc:
            raise ConnectionProblem(
                f"netsuite: INVOICEFLOW_NETSUITE_PRIVATE_KEY_FILE cannot be read ({exc.strerror})",
                provider="netsuite",
            ) from exc
    missing = [
        name
        for name, value in (
            ("INVOICEFLOW_NETSUITE_CLIENT_ID", settings.netsuite_client_id),
            ("INVOICEFLOW_NETSUITE_CERTIFICATE_ID", settings.netsuite_certificate_id),
            ("INVOICEFLOW_NETSUITE_PRIVATE_KEY or _PRIVATE_KEY_FILE", key),
        )
        if not value
    ]
    if missing:
        raise ConnectionProblem(f"netsuite: set {', '.join(missing)}", provider="netsuite")
    assert settings.netsuite_client_id and settings.netsuite_certificate_id and key
    return M2MCredentials(
        client_id=settings.netsuite_client_id,
        certificate_id=settings.netsuite_certificate_id,
        private_key=key,
        token_url=settings.netsuite_token_url or base_url.rstrip("/") + TOKEN_PATH,
        algorithm=settings.netsuite_jwt_algorithm,
        scope=settings.netsuite_scope,
    )


def client_assertion(creds: M2MCredentials, *, now: float | None = None) -> str:
    """The signed JWT NetSuite's token endpoint expects."""
    import jwt

    issued = int(now if now is not None else time.time())
    claims = {
        "iss": creds.client_id,
        "scope": creds.scope,
        "aud": creds.token_url,
        "iat": issued,
        "exp": issued + ASSERTION_LIFETIME_S,
        "jti": uuid.uuid4().hex,
    }
    try:
        return jwt.encode(
            claims,
            creds.private_key,
            algorithm=creds.algorithm,
            headers={"kid": creds.certificate_id, "typ": "JWT"},
        )
    except (ValueError, TypeError, jwt.exceptions.PyJWTError) as exc:
        raise ConnectionProblem(
            f"netsuite: the private key cannot sign {creds.algorithm} ({type(exc).__name__}); check "
            "INVOICEFLOW_NETSUITE_PRIVATE_KEY and INVOICEFLOW_NETSUITE_JWT_ALGORITHM",
            provider="netsuite",
        ) from exc


@dataclass(frozen=True)
class _Access:
    token: str = field(repr=False)
    expires_at: float


class M2MTokenSource:
    """The connector's ``TokenProvider``: one access token per process, minted again when due."""

    provider = "netsuite"

    def __init__(self, creds: M2MCredentials, *, timeout_s: float = 30.0) -> None:
        self.creds = creds
        self.timeout_s = timeout_s
        self._current: _Access | None = None
        self._lock: asyncio.Lock | None = None
        self.exchanges = 0

    async def access_token(self) -> str:
        current = self._current
        if current is not None and current.expires_at - time.time() > REFRESH_MARGIN_S:
            return current.token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one exchange at a time, however many syncs ask together
            current = self._current
            if current is None or current.expires_at - time.time() <= REFRESH_MARGIN_S:
                current = self._current = await self._exchange()
        return current.token

    async def refresh_after_rejection(self, rejected: str | None) -> None:
        """NetSuite answered 401: forget the token (if it is still the one refused); the next call mints."""
        if self._current is not None and (rejected is None or rejected == self._current.token):
            self._current = None

    async def _exchange(self) -> _Access:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self.creds),
        }
        sent_at = time.time()
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as http:
                response = await http.post(
                    self.creds.token_url, data=form, headers={"Accept": "application/json"}
                )
        except httpx.HTTPError as exc:
            raise Transient(f"netsuite: token endpoint unreachable: {exc!r}", provider="netsuite") from exc
        self.exchanges += 1
        try:
            payload: Any = response.json()
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise Transient(
                f"netsuite: token endpoint answered {status}", provider="netsuite", status_code=status
            )
        if status != 200 or not payload.get("access_token"):
            error = str(payload.get("error") or status)
            raise ConnectionProblem(
                f"netsuite: the token endpoint refused our client assertion ({error}); check the client id, "
                "the certificate id and that the certificate's M2M mapping is active",
                provider="netsuite",
                status_code=status,
            )
        lifetime = int(str(payload.get("expires_in") or 3600))
        return _Access(str(payload["access_token"]), sent_at + lifetime)
