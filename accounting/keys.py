"""Fitting our idempotency keys into each provider's limits without losing uniqueness."""

from __future__ import annotations

import hashlib


def bounded_key(key: str, max_length: int) -> str:
    """The key itself when it fits (readable in provider logs), else a stable digest of it."""
    if not key:
        raise ValueError("an idempotency key must not be empty")
    if len(key) <= max_length:
        return key
    return hashlib.sha256(key.encode()).hexdigest()[:max_length]


def derived_key(key: str, suffix: str) -> str:
    """A sibling key for a second write inside one operation (a re-read after a stale SyncToken must
    not reuse the first request's id, or the provider would replay the stale error)."""
    return f"{key}:{suffix}"
