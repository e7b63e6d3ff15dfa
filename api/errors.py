"""Domain errors to HTTP, in one place: every router raises ``services.errors`` and this maps them."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from billing.errors import MoneyError
from services.errors import Conflict, Invalid, NotFound, ServiceError, Unavailable


def invalid_detail(field: str, message: str, location: str = "body") -> list[dict[str, object]]:
    """FastAPI's own 422 shape, so a client parses one format for every validation error."""
    return [{"loc": [location, field], "msg": message, "type": "value_error"}]


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, Invalid):
        return JSONResponse({"detail": invalid_detail(exc.field, exc.message, exc.location)}, status_code=422)
    code = next(
        (c for kind, c in ((NotFound, 404), (Conflict, 409), (Unavailable, 503)) if isinstance(exc, kind)),
        400,
    )
    return JSONResponse({"detail": exc.message}, status_code=code)


async def _money_error(request: Request, exc: Exception) -> JSONResponse:
    # Domain validation (totals, currencies) that pydantic could not see field by field.
    return JSONResponse(
        {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]}, status_code=422
    )


def install(app: FastAPI) -> None:
    """Register the mapping on an app (the API's and any sub-app that calls services)."""
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(MoneyError, _money_error)
