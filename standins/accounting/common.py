"""What every accounting stand-in shares: bearer tokens, quotas, idempotent replay, fault switches and a
log of every call, all behind one lock so tests (in their own thread) can flip switches and inspect
state while uvicorn serves requests in another.

Each provider module supplies its own error bodies through a ``Flavor``; the order of checks is the
same everywhere: auth → injected outage/429 → quota → idempotent replay → the handler (which commits)
→ an optional hang *after* the commit, so a client times out on a write that did happen.
``OAuthServer`` is each provider's token endpoint (rotating refresh tokens, ``invalid_grant`` on reuse).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import threading
import time
import urllib.parse
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from accounting import jsonnum

log = logging.getLogger("invoiceflow.standins.accounting")

Payload = Any
HandlerResult = tuple[int, Payload]


def money(value: Decimal, places: int = 2) -> Decimal:
    """Round half-up to ``places`` decimals, as the providers store amounts."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def json_response(status: int, payload: Payload, headers: Mapping[str, str] | None = None) -> Response:
    """JSON with exact decimals (``accounting.jsonnum``), the way the real services render numbers; a
    plain string payload is sent as text (Xero's 404 page, for one)."""
    if isinstance(payload, str):
        return Response(payload, status_code=status, media_type="text/plain", headers=dict(headers or {}))
    return Response(
        jsonnum.dumps(payload), status_code=status, media_type="application/json", headers=dict(headers or {})
    )


@dataclass
class RecordedCall:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int = 0
    response: bytes = b""
    replayed: bool = False
    admitted: bool = False  # counted against the quota (so it holds a concurrency slot until answered)
    arrived_at: float = 0.0  # time.monotonic() when the request reached the stand-in
    answered_at: float = 0.0  # ... and when its answer left
    in_flight: int = 0  # admitted calls of the organisation in flight at its admission, itself included

    def json(self) -> Any:
        return jsonnum.loads(self.body) if self.body else None

    def response_json(self) -> Any:
        return jsonnum.loads(self.response) if self.response else None


@dataclass(frozen=True)
class Quota:
    """``per_window`` calls per ``window_s`` and ``concurrent`` in flight per organisation."""

    per_window: int
    window_s: float
    concurrent: int
    per_day: int | None = None


class Faults:
    """Test switches; each takes effect on the next matching request."""

    def __init__(self) -> None:
        self.rate_limit_next = 0
        self.retry_after: int | None = 1
        self.unavailable_until = 0.0
        self.hang_writes = 0
        self.hang_seconds = 0.0

    def inject_429(self, count: int, *, retry_after: int | None = 1) -> None:
        """The next ``count`` requests get 429 (with ``Retry-After: retry_after`` unless None)."""
        self.rate_limit_next, self.retry_after = count, retry_after

    def unavailable_for(self, seconds: float) -> None:
        """Every request gets 503 for ``seconds``."""
        self.unavailable_until = time.monotonic() + seconds

    def commit_then_hang(self, seconds: float, *, count: int = 1) -> None:
        """The next ``count`` writes commit, then their responses wait ``seconds`` before being sent."""
        self.hang_writes, self.hang_seconds = count, seconds


class Tokens:
    """Bearer tokens the stand-in accepts; an expired one gets the provider's 401."""

    def __init__(self, valid: set[str]) -> None:
        self.valid = set(valid)
        self.expired: set[str] = set()

    def issue(self, token: str) -> None:
        self.valid.add(token)
        self.expired.discard(token)

    def expire(self, token: str) -> None:
        self.valid.discard(token)
        self.expired.add(token)

    def check(self, authorization: str) -> str:
        """ "ok", "expired", "invalid" or "missing"."""
        scheme, _, token = authorization.partition(" ")
        if not authorization:
            return "missing"
        if scheme.lower() != "bearer" or not token:
            return "invalid"
        if token in self.valid:
            return "ok"
        return "expired" if token in self.expired else "invalid"


class Traffic:
    """Per-organisation counters: the rolling window, the day and the calls in flight."""

    def __init__(self, quota: Quota | None) -> None:
        self.quota = quota
        self.sent: dict[str, deque[float]] = {}
        self.day: dict[str, int] = {}
        self.in_flight: dict[str, int] = {}
        self.max_in_flight = 0
        self.rejected = 0

    def admit(self, tenant: str, now: float) -> tuple[str, float] | None:
        """None when admitted, else (problem, seconds until the window has room)."""
        quota = self.quota
        in_flight = self.in_flight.get(tenant, 0)
        if quota is not None:
            sent = self.sent.setdefault(tenant, deque())
            while sent and sent[0] <= now - quota.window_s:
                sent.popleft()
            if quota.per_day is not None and self.day.get(tenant, 0) >= quota.per_day:
                self.rejected += 1
                return "day", 86400.0
            if in_flight >= quota.concurrent:
                self.rejected += 1
                return "concurrent", 1.0
            if len(sent) >= quota.per_window:
                self.rejected += 1
                return "minute", max(sent[0] + quota.window_s - now, 0.0)
            sent.append(now)
            self.day[tenant] = self.day.get(tenant, 0) + 1
        self.in_flight[tenant] = in_flight + 1
        self.max_in_flight = max(self.max_in_flight, in_flight + 1)
        return None

    def done(self, tenant: str) -> None:
        self.in_flight[tenant] = self.in_flight.get(tenant, 1) - 1


@dataclass
class Stored:
    fingerprint: str
    status: int
    payload: Payload
    stored_at: float


class Replays:
    """Stored responses by (organisation, key); ``ttl_s`` None keeps them forever (QBO documents no
    expiry), Xero keeps them 6 minutes. Only successful responses are stored unless
    ``store_errors``: whether the real services cache 4xx answers is not documented, and storing them
    would keep replaying a validation error after the chart of accounts was fixed."""

    def __init__(self, ttl_s: float | None, *, store_errors: bool = False, match_body: bool = True) -> None:
        self.ttl_s = ttl_s
        self.store_errors = store_errors
        self.match_body = match_body  # Xero: a reused key with another body is refused; QBO replays by id
        self.entries: dict[tuple[str, str], Stored] = {}

    def get(self, tenant: str, key: str, now: float) -> Stored | None:
        entry = self.entries.get((tenant, key))
        if entry is not None and self.ttl_s is not None and now - entry.stored_at > self.ttl_s:
            del self.entries[(tenant, key)]
            return None
        return entry

    def put(self, tenant: str, key: str, fingerprint: str, status: int, payload: Payload, now: float) -> None:
        if 200 <= status < 300 or self.store_errors:
            self.entries[(tenant, key)] = Stored(fingerprint, status, payload, now)


class Flavor(Protocol):
    """A provider's own answers for the shared checks."""

    def unauthorized(self, reason: str) -> Response: ...

    def unavailable(self) -> Response: ...

    def rate_limited(self, tenant: str, problem: str, retry_after: int | None) -> Response: ...

    def replay_mismatch(self) -> Response: ...

    def headers(self, tenant: str) -> dict[str, str]: ...


@dataclass
class Core:
    """Shared machinery of one stand-in; ``lock`` guards all of its state and the provider's."""

    tokens: Tokens
    traffic: Traffic
    replays: Replays
    faults: Faults = field(default_factory=Faults)
    calls: list[RecordedCall] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)

    async def handle(
        self,
        request: Request,
        flavor: Flavor,
        *,
        tenant: str,
        write: bool,
        handler: Callable[[Any], HandlerResult],
        replay_key: str | None = None,
        precheck: Callable[[], Response | None] | None = None,
    ) -> Response:
        """Run one call through auth, faults, quota and replay, then ``handler(parsed_body)``."""
        raw = await request.body()
        call = RecordedCall(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=raw,
            arrived_at=time.monotonic(),
        )
        try:
            try:
                response, hang = self._respond(
                    request, flavor, call, tenant, write, handler, replay_key, precheck
                )
            except Exception as exc:  # a bug in a handler: the provider's 500, and the slot is released
                log.exception("accounting stand-in: %s %s failed", request.method, request.url.path)
                response, hang = json_response(500, {"error": f"internal error: {type(exc).__name__}"}), 0.0
            if hang:
                await asyncio.sleep(hang)  # committed; the client may give up waiting
        finally:
            with self.lock:
                if call.admitted:
                    self.traffic.done(tenant)
                call.status, call.response = response.status_code, bytes(response.body)
                call.answered_at = time.monotonic()
                self.calls.append(call)
        return response

    def _respond(
        self,
        request: Request,
        flavor: Flavor,
        call: RecordedCall,
        tenant: str,
        write: bool,
        handler: Callable[[Any], HandlerResult],
        replay_key: str | None,
        precheck: Callable[[], Response | None] | None,
    ) -> tuple[Response, float]:
        with self.lock:
            auth = self.tokens.check(request.headers.get("authorization", ""))
            if auth != "ok":
                return flavor.unauthorized(auth), 0.0
            if precheck is not None and (refused := precheck()) is not None:
                return refused, 0.0
            now = time.monotonic()
            if now < self.faults.unavailable_until:
                return flavor.unavailable(), 0.0
            if self.faults.rate_limit_next > 0:
                self.faults.rate_limit_next -= 1
                return flavor.rate_limited(tenant, "minute", self.faults.retry_after), 0.0
            refused_by_quota = self.traffic.admit(tenant, now)
            if refused_by_quota is not None:
                problem, wait = refused_by_quota
                retry_after = None if problem == "concurrent" else max(int(wait + 0.999), 1)
                return flavor.rate_limited(tenant, problem, retry_after), 0.0
            call.admitted = True
            call.in_flight = self.traffic.in_flight.get(tenant, 0)
            fingerprint = hashlib.sha256(
                f"{request.method} {request.url.path}?{request.url.query}\n".encode() + call.body
            ).hexdigest()
            if replay_key:
                stored = self.replays.get(tenant, replay_key, now)
                if stored is not None:
                    if self.replays.match_body and stored.fingerprint != fingerprint:
                        return flavor.replay_mismatch(), 0.0
                    call.replayed = True
                    return json_response(stored.status, stored.payload, flavor.headers(tenant)), 0.0
            try:
                body = jsonnum.loads(call.body) if call.body else None
            except ValueError:
                body = None
            status, payload = handler(body)
            if replay_key:
                self.replays.put(tenant, replay_key, fingerprint, status, payload, now)
            hang = 0.0
            if write and 200 <= status < 300 and self.faults.hang_writes > 0:
                self.faults.hang_writes -= 1
                hang = self.faults.hang_seconds
            return json_response(status, payload, flavor.headers(tenant)), hang

    def calls_to(self, method: str, path_suffix: str) -> list[RecordedCall]:
        with self.lock:
            return [c for c in self.calls if c.method == method and c.path.endswith(path_suffix)]


class OAuthServer:
    """A provider's OAuth 2.0 token endpoint: the ``authorization_code`` and ``refresh_token`` grants.

    Refresh tokens rotate (Xero, FreshBooks, often QBO): each one works once, and spending a used or
    unknown one answers 400 ``{"error": "invalid_grant"}``, which is what makes a lost rotation visible
    in tests. Client credentials are accepted in a Basic header (Xero, QBO) or in the body (FreshBooks
    sends JSON). Every access token it issues becomes valid on the stand-in's API. ``delay_s`` holds
    each answer back (after the rotation happened), to widen race windows; ``requests`` records every
    grant request for assertions. State sits under the stand-in's lock like everything else.
    """

    def __init__(
        self,
        core: Core,
        *,
        provider: str,
        client_id: str,
        client_secret: str,
        expires_in: int,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.core = core
        self.provider = provider
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.extra = dict(extra or {})
        self.refresh_tokens: set[str] = set()  # live ones
        self.codes: dict[str, str] = {}  # authorization code → the redirect_uri it was issued for
        self.requests: list[dict[str, str]] = []
        self.delay_s = 0.0
        self._issued = 0

    def add_refresh_token(self, token: str) -> None:
        with self.core.lock:
            self.refresh_tokens.add(token)

    def issue_code(self, redirect_uri: str) -> str:
        """What the provider's consent screen hands the browser after "Allow"."""
        with self.core.lock:
            self._issued += 1
            code = f"{self.provider}-code-{self._issued}-{uuid.uuid4().hex[:8]}"
            self.codes[code] = redirect_uri
            return code

    @staticmethod
    def _form(request_body: bytes, content_type: str) -> dict[str, str]:
        if "json" in content_type:
            try:
                parsed = jsonnum.loads(request_body) if request_body else {}
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in (parsed or {}).items()} if isinstance(parsed, dict) else {}
        return dict(urllib.parse.parse_qsl(request_body.decode("utf-8", "replace")))

    def _client_ok(self, authorization: str, form: Mapping[str, str]) -> bool:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
        else:
            client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        return client_id == self.client_id and secret == self.client_secret

    def _grant(self, form: Mapping[str, str], authorization: str) -> tuple[int, dict[str, Any]]:
        if not self._client_ok(authorization, form):
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type", "")
        if grant == "refresh_token":
            if form.get("refresh_token", "") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant"}
            self.refresh_tokens.discard(form["refresh_token"])
        elif grant == "authorization_code":
            expected = self.codes.pop(form.get("code", ""), None)
            if expected is None or expected != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant"}
        else:
            return 400, {"error": "unsupported_grant_type"}
        self._issued += 1
        suffix = f"{self._issued}-{uuid.uuid4().hex[:12]}"
        access, refresh = f"{self.provider}-at-{suffix}", f"{self.provider}-rt-{suffix}"
        self.core.tokens.issue(access)
        self.refresh_tokens.add(refresh)
        return 200, {
            "access_token": access,
            "refresh_token": refresh,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            **self.extra,
        }

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        form = self._form(body, request.headers.get("content-type", ""))
        with self.core.lock:
            self.requests.append(form)
            status, payload = self._grant(form, request.headers.get("authorization", ""))
            delay = self.delay_s
        if delay:
            await asyncio.sleep(delay)
        return json_response(status, payload, {"Cache-Control": "no-store"})

    def token_calls(self) -> int:
        with self.core.lock:
            return len(self.requests)
