"""The HTTP layer every connector shares: token, rate limit, exact-decimal JSON, error mapping.

Status codes mean the same thing at every provider (401 → ``AuthExpired``, 429 → wait or
``RateLimited``, 5xx/timeouts → ``Transient``); only 4xx bodies differ, so each connector supplies a
parser for those. 429s are waited out inline a few times (pausing the whole organisation's limiter, so
sibling tasks back off too) because most storms are short; a long Retry-After goes back to the caller,
where Temporal can wait without holding a worker slot.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from accounting import jsonnum
from accounting.base import TokenProvider, current_token
from accounting.errors import AccessDenied, AccountingError, AuthExpired, RateLimited, Transient
from accounting.ratelimit import CallLimiter, RateLimitPolicy, limiter_for
from observability import metrics

ErrorParser = Callable[[httpx.Response, Any], AccountingError]
CONCURRENT_FALLBACK_S = 1.0


@dataclass(frozen=True)
class HttpSettings:
    timeout_s: float = 30.0
    max_rate_limit_retries: int = 3  # 429s waited out inline before RateLimited is raised
    max_inline_wait_s: float = 15.0  # a longer Retry-After is raised at once (Temporal waits it out)
    rate_limit_fallback_s: float = 60.0  # a 429 without Retry-After (QBO says "wait 60 seconds")


def retry_after_seconds(response: httpx.Response, fallback: float) -> float:
    """Retry-After as seconds (delta-seconds or an HTTP date), else ``fallback``."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return fallback
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return fallback
    return max(when.timestamp() - time.time(), 0.0)


def parse_body(response: httpx.Response) -> Any:
    """The JSON body with exact decimals, or the raw text when it is not JSON (proxies, gateways)."""
    if not response.content:
        return None
    try:
        return jsonnum.loads(response.content)
    except ValueError:
        return response.text


class ProviderHttp:
    """One organisation's HTTP channel to one provider."""

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        tenant: str,
        token_provider: TokenProvider,
        policy: RateLimitPolicy,
        error_parser: ErrorParser,
        settings: HttpSettings | None = None,
        headers: Mapping[str, str] | None = None,
        limiter: CallLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.provider = provider
        self.tenant = tenant
        self.settings = settings = settings or HttpSettings()
        self._base_url = base_url.rstrip("/")
        self._token_provider = token_provider
        self._policy = policy
        self._limiter = limiter
        self._error_parser = error_parser
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=settings.timeout_s)

    @property
    def limiter(self) -> CallLimiter:
        if self._limiter is None:  # bound lazily: the shared limiter belongs to the running loop
            self._limiter = limiter_for(self.provider, self.tenant, self._policy)
        return self._limiter

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one call and return its parsed body; raises an ``AccountingError`` for anything else."""
        content = None if body is None else jsonnum.dumps(body)
        for attempt in range(self.settings.max_rate_limit_retries + 1):
            token = await current_token(self._token_provider)
            request_headers = {**self._headers, "Authorization": f"Bearer {token}", **(headers or {})}
            if content is not None:
                request_headers["Content-Type"] = "application/json"
            async with self.limiter.slot():
                try:
                    response = await self._client.request(
                        method,
                        self._base_url + path,
                        params=params,
                        content=content,
                        headers=request_headers,
                        timeout=self.settings.timeout_s,
                    )
                except httpx.TimeoutException as exc:
                    metrics.accounting_call(self.provider, method, path, "timeout")
                    raise Transient(
                        f"{self.provider}: {method} {path} timed out ({type(exc).__name__}); the write may "
                        "have happened, retry with the same idempotency key",
                        provider=self.provider,
                    ) from exc
                except httpx.TransportError as exc:
                    metrics.accounting_call(self.provider, method, path, "transport_error")
                    raise Transient(
                        f"{self.provider}: {method} {path} failed: {exc!r}", provider=self.provider
                    ) from exc
            metrics.accounting_call(self.provider, method, path, response.status_code)
            if response.status_code != 429:
                return self._result(method, path, response)
            problem = response.headers.get("X-Rate-Limit-Problem", "")
            # Xero sends no Retry-After for its concurrency limit, which clears as soon as a call ends.
            fallback = (
                CONCURRENT_FALLBACK_S if problem == "concurrent" else self.settings.rate_limit_fallback_s
            )
            wait = retry_after_seconds(response, fallback)
            self.limiter.pause(wait)
            if attempt >= self.settings.max_rate_limit_retries or wait > self.settings.max_inline_wait_s:
                raise RateLimited(
                    f"{self.provider}: rate limited ({problem or 'throttled'}); retry after {wait:g}s",
                    retry_after_seconds=wait,
                    problem=problem,
                    provider=self.provider,
                )
            await asyncio.sleep(0)  # the limiter's pause does the waiting, for every task alike
        raise AssertionError("unreachable")

    def _result(self, method: str, path: str, response: httpx.Response) -> Any:
        body = parse_body(response)
        status = response.status_code
        if 200 <= status < 300:
            return body
        where = f"{self.provider}: {method} {path} → {status}"
        if status == 401:
            error = self._error_parser(response, body)
            raise AuthExpired(f"{where}: {error.message}", provider=self.provider, status_code=status)
        if status == 403:
            error = self._error_parser(response, body)
            raise AccessDenied(f"{where}: {error.message}", provider=self.provider, status_code=status)
        if status in (408,) or status >= 500:
            raise Transient(f"{where}: {str(body)[:300]}", provider=self.provider, status_code=status)
        raise self._error_parser(response, body)
