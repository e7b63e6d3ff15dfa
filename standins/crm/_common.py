"""What the CRM stand-ins share: exact JSON numbers, provider-shaped errors, call counters, 429 faults."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response


def dump_json(value: Any) -> str:
    """JSON in which a ``Decimal`` is written as a number with exactly its digits (1234.56, not "1234.56").

    That is what Pipedrive sends, and ``json.dumps`` cannot: it refuses Decimals, and a float would print
    its own rounding. Only the types the stand-ins store are supported.
    """
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return format(value, "f")
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dump_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("the stand-ins store money as Decimal; a float here is a bug")
    return json.dumps(value)


class ExactJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dump_json(content).encode("utf-8")


class StandinError(Exception):
    """Raised by a route or guard to answer with the provider's own error body and headers."""

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


@dataclass
class _Fault:
    remaining: int
    route: str | None
    error: StandinError


class StandinState:
    """Counters and faults common to the stand-ins; subclasses add the data and ``authenticate``.

    ``calls`` counts every request a route received, rejected ones included, keyed by method and route
    template (``"GET /api/v2/deals/{deal_id}/products"``): the load the real provider would have seen.
    Tests seed and inspect state from their own thread while uvicorn serves from another, hence the lock.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    def authenticate(self, request: Request) -> None:
        raise NotImplementedError

    def queue_fault(self, times: int, error: StandinError, route: str | None = None) -> None:
        """Answer the next ``times`` requests (to ``route`` only, if given) with ``error``."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(_Fault(times, route, error))

    def guard(self, request: Request) -> None:
        """FastAPI dependency run before every handler: count, check credentials, then pending faults."""
        route = f"{request.method} {request.scope['route'].path}"
        with self._lock:
            self.calls[route] += 1
        self.authenticate(request)
        with self._lock:
            for fault in self._faults:
                if fault.route in (None, route):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    raise fault.error


def new_app(title: str) -> FastAPI:
    """A FastAPI app that renders ``StandinError`` as the provider's response (no docs routes)."""
    app = FastAPI(title=title, docs_url=None, redoc_url=None, openapi_url=None)

    async def _provider_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StandinError)
        return ExactJSONResponse(exc.body, status_code=exc.status, headers=exc.headers)

    app.add_exception_handler(StandinError, _provider_error)
    return app


def as_decimal(value: Decimal | int | str) -> Decimal:
    """Seed values may be written "1234.56", 3 or Decimal; never floats (they would not be exact)."""
    if isinstance(value, float) or isinstance(value, bool):
        raise TypeError(f"use a string or Decimal for {value!r}; floats are not exact")
    return value if isinstance(value, Decimal) else Decimal(str(value))


def computed(value: Decimal) -> Decimal:
    """A total the provider computes, printed without trailing zeros (1851.840 → 1851.84), as they do."""
    return Decimal(format(value.normalize(), "f"))


def utc_timestamp(value: date | datetime | str | None = None) -> str:
    """ISO-8601 UTC with a ``Z``, as both CRMs print instants (a bare date becomes midnight UTC)."""
    if isinstance(value, str):
        return value
    if value is None:
        value = datetime.now(UTC)
    elif not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
