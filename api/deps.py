"""FastAPI dependencies: settings, database, Temporal client, operator authentication."""

from __future__ import annotations

import hmac
from typing import Annotated, TypeVar

from fastapi import Depends, Header, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from temporalio.client import Client

from core.settings import Settings
from services.db import Db

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="INVOICEFLOW_API_TOKEN")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_temporal(request: Request) -> Client:
    return request.app.state.temporal


def require_operator(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> str:
    expected: str = request.app.state.settings.api_token
    if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or wrong bearer token (Authorization: Bearer <INVOICEFLOW_API_TOKEN>)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return "operator"


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
