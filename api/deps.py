"""FastAPI dependencies: settings, database, Temporal client, operator authentication and roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from temporalio.client import Client

from api.auth import authenticate, authorize
from core.settings import Settings
from persistence.db import session_scope

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
