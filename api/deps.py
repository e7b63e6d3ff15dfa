"""FastAPI dependencies: settings, database, Temporal client, operator authentication and roles."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from api.auth import authenticate, authorize
from core.settings import Settings
from services.db import Db

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="INVOICEFLOW_API_TOKEN or a user's API token")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    """The caller's actor string for the timeline ("operator" for INVOICEFLOW_API_TOKEN, else
    ``email (role)``), after checking that their role may make this request (see ``api.auth``)."""
    principal = authenticate(request, credentials)
    authorize(request, principal)
    request.state.principal = principal
    return principal.actor


def get_db(request: Request) -> Db:
    return request.app.state.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
DbDep = Annotated[Db, Depends(get_db)]
Operator = Annotated[str, Depends(require_operator)]
#: The optional ``Idempotency-Key`` of a create: the same key and body answer with the first result.
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key", max_length=200, description="Repeat a create safely: same key, same result."
    ),
]
