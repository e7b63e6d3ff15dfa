"""One transaction on a worker thread, for async callers (SQLAlchemy is synchronous here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from persistence.db import session_scope

T = TypeVar("T")


class Db:
    """Runs a function in one transaction on a worker thread: the services' only way to the database."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, fn: Callable[[Session], T]) -> T:
        def _tx() -> T:
            with session_scope(self.url) as session:
                return fn(session)

        return await run_in_threadpool(_tx)
