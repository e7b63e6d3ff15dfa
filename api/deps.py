"""FastAPI dependencies: settings, database, Temporal client, operator authentication."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from temporalio.client import Client

from core.settings import Settings
from persistence.db import session_scope

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


class Db:
    """Runs a function in one transaction on a worker thread (SQLAlchemy here is synchronous)."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, fn: Callable[[Session], T]) -> T:
        def _tx() -> T:
            with session_scope(self.url) as session:
                return fn(session)

        return await run_in_threadpool(_tx)


def get_db(request: Request) -> Db:
    return request.app.state.db


SettingsDep = Annotated[Settings, Depends(get_settings)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
DbDep = Annotated[Db, Depends(get_db)]
Operator = Annotated[str, Depends(require_operator)]
