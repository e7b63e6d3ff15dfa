"""HTTP plumbing shared by the CRM clients: exact JSON, typed failures, lenient field readers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, NoReturn, Self

import httpx

from billing.errors import MoneyError
from billing.money import exact_arithmetic, parse_decimal
from integrations.crm import CrmBadResponse, CrmNotFound, CrmTransient

DEFAULT_TIMEOUT = 10.0


class JsonApiClient:
    """An ``httpx.AsyncClient`` (ours or the caller's) plus the mapping of failures to ``CrmError``s.

    Subclasses set ``provider`` and implement ``_raise_for_status`` with the provider's error body and
    rate-limit headers. A caller-supplied client is never closed here: its owner may share it.
    """

    provider = ""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], http: httpx.AsyncClient | None, timeout: float
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Accept": "application/json", **headers}
        self._http = http if http is not None else httpx.AsyncClient(timeout=timeout)
        self._owns_http = http is None

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        missing_ok: bool = False,
    ) -> Any:
        """The parsed body of a 2xx answer; ``None`` for a 404 when ``missing_ok`` (a stale association)."""
        try:
            response = await self._http.request(
                method, self._base + path, params=params, json=json_body, headers=self._headers
            )
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.provider) from None
        if response.is_success:
            return parse_json(response, self.provider)
        if missing_ok and response.status_code == 404:
            return None
        self._raise_for_status(response, f"{method} {path}")

    def _raise_for_status(self, response: httpx.Response, what: str) -> NoReturn:
        raise NotImplementedError

    def _error_body(self, response: httpx.Response) -> dict[str, Any]:
        """The error body as a dict, or {} when the failure came with HTML or nothing (proxies, 502s)."""
        try:
            body = json.loads(response.text, parse_float=Decimal)
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _bad(self, message: str) -> CrmBadResponse:
        return CrmBadResponse(message, provider=self.provider)


# --- readers ---------------------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def parse_json(response: httpx.Response, provider: str) -> Any:
    """The body with every JSON number kept exact: floats become ``Decimal`` from their own digits.

    ``httpx.Response.json()`` would turn 1234.56 into a binary float first; NaN/Infinity are refused.
    """
    try:
        return json.loads(response.text, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError as exc:
        raise CrmBadResponse(
            f"{response.request.method} {response.request.url.path} returned HTTP {response.status_code} "
            f"with a body that is not JSON ({exc})",
            provider=provider,
            status=response.status_code,
        ) from None


def to_decimal(value: object, field: str, provider: str) -> Decimal:
    """A required number from a response (JSON number or numeric string) or ``CrmBadResponse``."""
    if isinstance(value, str):
        value = value.strip()
    try:
        return parse_decimal(value, field=field)
    except MoneyError as exc:
        raise CrmBadResponse(str(exc), provider=provider) from None


def to_optional_decimal(value: object, field: str, provider: str) -> Decimal | None:
    """Like ``to_decimal`` but an absent value (null, "", missing) is ``None``: CRMs leave fields blank."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return to_decimal(value, field, provider)


def to_optional_str(value: object) -> str | None:
    """A trimmed string, ``None`` for null/blank (CRMs send "" and null interchangeably)."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def to_date(value: object, field: str, provider: str) -> date | None:
    """A calendar date from an ISO date or date-time ("2024-06-10", "2024-06-10T12:00:00.000Z").

    Date-times are converted to UTC before taking the date: both CRMs store close dates as UTC instants.
    """
    text = to_optional_str(value)
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError:
        raise CrmBadResponse(f"{field}: {text!r} is not an ISO date", provider=provider) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).date()


def retry_after_header(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date), ``None`` if absent or unreadable."""
    raw = response.headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def check_id(object_id: str | int, provider: str, what: str = "deal") -> str:
    """The id as a string; anything but digits cannot name a CRM object and must not reach a URL path."""
    text = str(object_id).strip()
    if not text.isascii() or not text.isdigit():
        raise CrmNotFound(f"{text!r} is not a valid {what} id", provider=provider)
    return text


def transport_error(exc: httpx.HTTPError, provider: str) -> CrmTransient:
    """A network-level failure (DNS, refused, reset, timeout) as a retryable ``CrmTransient``."""
    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else f"failed ({type(exc).__name__})"
    try:
        host = exc.request.url.host
    except RuntimeError:  # an error raised before any request was built
        host = "the API"
    return CrmTransient(f"request to {host} {kind}", provider=provider)


def product(quantity: Decimal, price: Decimal, field: str, provider: str) -> Decimal:
    """quantity × price exactly (no 28-digit context rounding), for a line whose CRM omitted its total."""
    try:
        with exact_arithmetic(field):
            return quantity * price
    except MoneyError as exc:
        raise CrmBadResponse(str(exc), provider=provider) from None


def as_dict(value: object, what: str, provider: str) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``CrmBadResponse`` naming what was expected."""
    if not isinstance(value, dict):
        raise CrmBadResponse(f"{what}: expected an object, got {type(value).__name__}", provider=provider)
    return value


def as_list(value: object, what: str, provider: str) -> list[Any]:
    """``value`` if it is a JSON array (null counts as empty), else ``CrmBadResponse``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise CrmBadResponse(f"{what}: expected an array, got {type(value).__name__}", provider=provider)
    return value


def unique(ids: list[str]) -> list[str]:
    """Ids in first-seen order without repeats (HubSpot lists an object once per association label)."""
    return list(dict.fromkeys(ids))
