"""Readiness checks shared by ``GET /readyz`` and ``invoiceflow doctor``: each says ok or what is wrong."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy import text


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""


def head_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    from persistence.migrate import MIGRATIONS, alembic_config

    config = alembic_config("postgresql://unused")
    config.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(config).get_heads())


def database_checks(url: str) -> list[Check]:
    """PostgreSQL answers, and its schema is at the migrations' head."""
    from alembic.runtime.migration import MigrationContext

    from persistence.db import get_engine

    try:
        with get_engine(url).connect() as conn:
            conn.execute(text("set local statement_timeout = '3s'"))  # this transaction only
            conn.execute(text("select 1"))
            current = set(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return [
            Check("database", False, f"{type(exc).__name__}: {exc}"[:300], "check INVOICEFLOW_DATABASE_URL"),
            Check("migrations", False, "database unreachable", "fix the database first"),
        ]
    heads = head_revisions()
    if current == heads:
        migration = Check("migrations", True, f"at head {', '.join(sorted(heads))}")
    else:
        migration = Check(
            "migrations",
            False,
            f"database at {', '.join(sorted(current)) or 'nothing'}, code expects {', '.join(sorted(heads))}",
            "run `invoiceflow migrate`",
        )
    return [Check("database", True, "answers"), migration]


async def temporal_check(client: object, timeout_s: float = 3.0) -> Check:
    try:
        ok = await asyncio.wait_for(client.service_client.check_health(), timeout=timeout_s)  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001
        return Check(
            "temporal",
            False,
            f"{type(exc).__name__}: {exc}"[:300],
            "check INVOICEFLOW_TEMPORAL_ADDRESS, the namespace and the TLS / API key settings",
        )
    return Check("temporal", bool(ok), "serving" if ok else "not serving")
