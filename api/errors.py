"""Errors to HTTP, in one place: the domain errors every use case raises (``services.errors``) and, through
``api.input_errors``, refused input; ``install`` registers them all on an app."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from api import input_errors
from services.errors import Conflict, Invalid, NotFound, ServiceError, Unavailable


def _item(loc: Sequence[str | int], message: str) -> dict[str, object]:
    """FastAPI's own 422 shape, so a client parses one format for every validation error."""
    return {"loc": list(loc), "msg": message, "type": "value_error"}


def unprocessable(loc: Sequence[str | int], message: str) -> HTTPException:
    """A 422 for a check a route makes itself (``loc`` as FastAPI writes it, e.g. ``["body", "amount"]``)."""
    return HTTPException(422, detail=[_item(loc, message)])


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    if isinstance(exc, Invalid):
        return JSONResponse({"detail": [_item([exc.location, exc.field], exc.message)]}, status_code=422)
    code = next(
        (c for kind, c in ((NotFound, 404), (Conflict, 409), (Unavailable, 503)) if isinstance(exc, kind)),
        400,
    )
    return JSONResponse({"detail": exc.message}, status_code=code)


def install(app: FastAPI) -> None:
    """Register the mapping on an app (the API's and any sub-app that calls services)."""
    app.add_exception_handler(ServiceError, _service_error)
    input_errors.install(app)  # bad input (validation, money rules, unstorable text) → 4xx naming the field
