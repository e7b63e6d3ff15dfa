"""Engine and session factory. One engine per process per URL; sessions are short and explicit."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker


def normalize_url(url: str) -> str:
    """``postgresql://`` URLs get the psycopg 3 driver; others pass through untouched."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=8)
def get_engine(url: str, pool_size: int = 10) -> Engine:
    return create_engine(normalize_url(url), pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


@lru_cache(maxsize=8)
def get_sessionmaker(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on any exception."""
    session = get_sessionmaker(url)()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
