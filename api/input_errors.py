"""Bad input → 400/413/422 naming the field, never a 500: the API's handlers for refused input.

- ``RequestValidationError`` answers 422 like FastAPI's own handler, but its echo of the input is made
  safe first: a ``NaN``/``Infinity``/``1e400`` the client sent, or a lone surrogate, cannot be written as
  JSON, and FastAPI's handler then failed with a 500 while reporting the client's mistake.
- ``MoneyError`` (domain validation in ``billing``: totals, currencies, limits) → 422 with its message.
- A database refusal of the text itself (a NUL character or an unencodable string that slipped past the
  request models, e.g. in a form field) → 422 instead of a 500. Nothing was written: the transaction
  rolled back.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, StatementError

from api.validation import text_problem
from billing.errors import MoneyError


def _safe(value: Any) -> Any:
    """A JSON-writable copy: non-finite floats as strings, unencodable text escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8") if text_problem(value) else value
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_safe(v) for v in value]
    return value


def unprocessable(field: str | list[str | int], message: str) -> JSONResponse:
    """The API's 422 shape, FastAPI's: ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``."""
    loc = field if isinstance(field, list) else ["body", *[part for part in field.split(".") if part]]
    return JSONResponse(
        status_code=422, content={"detail": [{"loc": loc, "msg": message, "type": "value_error"}]}
    )


def _unstorable_text(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused text, anywhere in the cause chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, UnicodeEncodeError):
            return True
        if isinstance(seen, (ValueError, DataError)) and "NUL" in str(seen):
            return True
        if "invalid byte sequence" in str(seen) or "unsupported Unicode escape" in str(seen):
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


def install(app: FastAPI) -> None:
    """Register the handlers on the app (``api.main.create_app`` calls this once)."""

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _safe(jsonable_encoder(exc.errors()))})

    @app.exception_handler(MoneyError)
    async def _money(_: Request, exc: MoneyError) -> JSONResponse:
        # Domain validation (totals, currencies, limits) that pydantic could not see field by field.
        return unprocessable(["body"], str(exc))

    @app.exception_handler(StatementError)
    async def _statement(request: Request, exc: StatementError) -> JSONResponse:
        if _unstorable_text(exc):
            return unprocessable(
                ["body"], "text must not contain NUL characters (\\u0000) or invalid Unicode"
            )
        raise exc

    @app.exception_handler(UnicodeEncodeError)
    async def _unencodable(_: Request, exc: UnicodeEncodeError) -> JSONResponse:
        return unprocessable(["body"], "text must not contain invalid Unicode (a lone surrogate)")
