"""Gapless invoice numbers.

A number is taken only when an invoice is issued, inside the transaction that stamps it: the series row
is locked by ``UPDATE ... RETURNING`` until commit, so concurrent issues queue up, and a rollback gives
the number back. Nothing else ever consumes a value, so the series has no holes; a voided invoice
keeps its number.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from persistence.models import NumberSeries


def series_for(prefix: str, issue_date: date) -> str:
    return f"{prefix}-{issue_date.year}"


def format_number(series: str, value: int) -> str:
    return f"{series}-{value:06d}"


def allocate(session: Session, series: str) -> int:
    """Next value of ``series``; must run inside the caller's transaction."""
    session.execute(insert(NumberSeries).values(series=series, next_value=1).on_conflict_do_nothing())
    taken = session.execute(
        update(NumberSeries)
        .where(NumberSeries.series == series)
        .values(next_value=NumberSeries.next_value + 1)
        .returning(NumberSeries.next_value)
    ).scalar_one()
    return int(taken) - 1
