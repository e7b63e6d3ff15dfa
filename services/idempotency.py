"""``Idempotency-Key`` for every create: the same key and body answer with what the first request made.

A client that lost the answer to a create (a timeout, a crash) repeats it with the same key and gets the
same object back instead of a second one. The key is stored with a fingerprint of the body in the
create's own transaction, so an object and its key are committed together or not at all; the same key
with another body is refused (it is a client bug, not a retry). Scopes keep keys of different resources
apart, so one key may create a customer and an invoice.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from persistence.models import IdempotencyRecord
from services.db import Db
from services.errors import Invalid

MISMATCH = "Idempotency-Key was already used with a different request body"


def fingerprint(body: Any) -> str:
    """A stable hash of a request body (a pydantic model or plain JSON data)."""
    data = body.model_dump(mode="json") if hasattr(body, "model_dump") else body
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def replayed_id(session: Session, scope: str, key: str, digest: str) -> uuid.UUID | None:
    """The id an earlier request with this key created, or None; ``Invalid`` for another body."""
    record = session.scalars(
        select(IdempotencyRecord).where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
    ).one_or_none()
    if record is None:
        return None
    if record.request_hash != digest:
        raise Invalid("Idempotency-Key", MISMATCH, location="header")
    return uuid.UUID(record.response["id"])


def remember(session: Session, scope: str, key: str, digest: str, created: uuid.UUID) -> None:
    """Store the key in the create's transaction (the unique constraint settles a race)."""
    session.add(
        IdempotencyRecord(
            scope=scope, key=key, request_hash=digest, status_code=201, response={"id": str(created)}
        )
    )
    session.flush()


async def create_once(
    db: Db, scope: str, key: str | None, digest: str, create: Callable[[Session], uuid.UUID]
) -> tuple[uuid.UUID, bool]:
    """Run ``create`` once per ``key``: returns the created id and whether it was a replay."""
    if key is None:
        return await db.run(create), False

    def replay(session: Session) -> uuid.UUID | None:
        return replayed_id(session, scope, key, digest)

    def first(session: Session) -> uuid.UUID:
        created = create(session)
        remember(session, scope, key, digest, created)
        return created

    found = await db.run(replay)
    if found is not None:
        return found, True
    try:
        return await db.run(first), False
    except IntegrityError:
        found = await db.run(replay)  # a concurrent request with the same key won the race
        if found is None:
            raise
        return found, True
