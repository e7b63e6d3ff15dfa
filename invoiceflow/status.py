"""`invoiceflow status`: what needs a person now, read from PostgreSQL (the facts; Temporal holds only
the process). Each section counts everything and lists the oldest few, so the table stays readable with
thousands of rows and ``--json`` gives scripts the same data."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from persistence.db import session_scope
from persistence.models import AccountingSync, DunningHold, Invoice, OutboxEntry, WebhookEvent

SHOWN = 10


@dataclass
class Section:
    name: str
    what_to_do: str
    count: int = 0
    oldest: str | None = None  # ISO timestamp of the oldest item
    items: list[dict[str, str]] = field(default_factory=list)


@dataclass
class StatusReport:
    generated_at: str
    sections: list[Section]

    @property
    def needs_attention(self) -> int:
        return sum(s.count for s in self.sections)

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at, "needs_attention": self.needs_attention} | {
            "sections": [asdict(s) for s in self.sections]
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def _section(
    session: Session, section: Section, count_q: Any, oldest_col: Any, rows_q: Any, item: Any
) -> Section:
    section.count, oldest = session.execute(
        count_q.with_only_columns(func.count(), func.min(oldest_col))
    ).one()
    section.oldest = _iso(oldest)
    section.items = [item(row) for row in session.scalars(rows_q.order_by(oldest_col).limit(SHOWN))]
    return section


def gather(database_url: str, now: datetime | None = None) -> StatusReport:
    now = now or datetime.now(UTC)
    with session_scope(database_url) as session:
        approval = select(Invoice).where(Invoice.status == "pending_approval")
        failed_sync = select(AccountingSync).where(AccountingSync.status == "sync_failed")
        unmatched = select(WebhookEvent).where(WebhookEvent.status == "unmatched")
        active_hold = and_(
            DunningHold.released_at.is_(None),
            or_(DunningHold.resume_at.is_(None), DunningHold.resume_at > now),
        )
        holds = select(DunningHold).where(active_hold)
        outbox = select(OutboxEntry).where(OutboxEntry.status.in_(("pending", "sending", "failed")))
        sections = [
            _section(
                session,
                Section(
                    "awaiting approval", "approvers decide by their link, or POST /invoices/{id}/decisions"
                ),
                approval,
                Invoice.created_at,
                approval,
                lambda r: {
                    "invoice": str(r.id),
                    "total": f"{r.total} {r.currency}",
                    "since": _iso(r.created_at),
                },
            ),
            _section(
                session,
                Section(
                    "accounting sync failures", "fix the mapping, then POST /invoices/{id}/accounting/retry"
                ),
                failed_sync,
                AccountingSync.updated_at,
                failed_sync,
                lambda r: {
                    "invoice": str(r.invoice_id),
                    "provider": r.provider,
                    "kind": r.kind,
                    "error": (r.last_error or "")[:120],
                    "since": _iso(r.updated_at),
                },
            ),
            _section(
                session,
                Section("unmatched webhook events", "link the project, then POST /webhooks/unmatched/replay"),
                unmatched,
                WebhookEvent.received_at,
                unmatched,
                lambda r: {
                    "event": str(r.id),
                    "provider": r.provider,
                    "ref": f"{r.system} {r.ref}",
                    "note": r.note[:120],
                    "since": _iso(r.received_at),
                },
            ),
            _section(
                session,
                Section(
                    "held invoices",
                    "resolve the dispute: POST /invoices/{id}/release (or /customers/{id}/release)",
                ),
                holds,
                DunningHold.started_at,
                holds,
                lambda r: {
                    "hold": str(r.id),
                    "invoice": str(r.invoice_id or ""),
                    "customer": str(r.customer_id or ""),
                    "kind": r.kind,
                    "reason": r.reason[:120],
                    "since": _iso(r.started_at),
                },
            ),
            _section(
                session,
                Section(
                    "outbox not done",
                    "pending/sending rows older than minutes mean the worker or SMTP is stuck;"
                    " failed rows were refused by SMTP",
                ),
                outbox,
                OutboxEntry.created_at,
                outbox,
                lambda r: {
                    "key": r.key,
                    "kind": r.kind,
                    "status": r.status,
                    "error": (r.last_error or "")[:120],
                    "since": _iso(r.created_at),
                },
            ),
        ]
    return StatusReport(generated_at=_iso(now) or "", sections=sections)


def render(report: StatusReport) -> Any:
    """A rich renderable: one summary table, then the oldest items of each non-empty section."""
    from rich.console import Group
    from rich.table import Table

    summary = Table(title="invoiceflow: what needs a person", title_justify="left")
    summary.add_column("section")
    summary.add_column("count", justify="right")
    summary.add_column("oldest")
    summary.add_column("what to do")
    for section in report.sections:
        style = "bold red" if section.count else "green"
        summary.add_row(
            section.name, f"[{style}]{section.count}[/]", section.oldest or "-", section.what_to_do
        )
    parts: list[Any] = [summary]
    for section in report.sections:
        if not section.items:
            continue
        detail = Table(
            title=f"{section.name} (oldest {len(section.items)} of {section.count})", title_justify="left"
        )
        for column in section.items[0]:
            detail.add_column(column)
        for item in section.items:
            detail.add_row(*(str(v) for v in item.values()))
        parts.append(detail)
    return Group(*parts)
