"""Operator reports: receivables aging and what the invoice workflows will do next.

- ``GET /reports/aging?as_of=YYYY-MM-DD``: open amounts per currency and per customer in the aging
  buckets of ``billing.aging`` (current, 1-30, 31-60, 61-90, 90+ days overdue). Never summed across
  currencies. Only receivable invoices count: open, overdue, partially paid (by their amount due).
- ``GET /reports/next-actions?hours=24``: receivable invoices whose next workflow action (a reminder,
  the escalation after the last reminder, or becoming overdue) falls within the next ``hours``.
- ``GET /reports/aging/page``: both as one server-rendered page (inline SVG chart, no scripts, no
  external assets) for a phone or a desktop browser.

Authentication: a bearer token (``INVOICEFLOW_API_TOKEN`` or a user's API token), or for a browser the
console session (``/app/login``); a browser without one is sent to the login form and back. The page
answers with ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` and links nowhere else.

The next action is recomputed from stored facts with the very functions the workflow's plan comes from
(``persistence.invoices.issue`` → ``billing.dunning.dunning_schedule`` for the dunning policy frozen on
the invoice, else ``billing.reminders.reminder_schedule``, and ``overdue_instant``), with the same offsets
precedence (invoice, then customer, then ``Settings.reminder_offsets()``). The workflow fixes its plan
when it issues the invoice, so the list can only differ from it if, without a policy, the customer's
offsets or the reminder settings were changed after the invoice was issued, or while a dunning hold
keeps a reminder back (holds are not read here).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from api.deps import DbDep, Operator, SettingsDep, require_operator
from api.validation import ApiDate
from billing.aging import BUCKETS, AgingReport, AgingRow, aging_report
from billing.dunning import dunning_schedule, policy_from_dict
from billing.money import format_money
from billing.reminders import MAX_OFFSET, reminder_schedule
from billing.status import InvoiceStatus
from core.settings import Settings
from persistence.invoices import overdue_instant
from persistence.models import Customer, Invoice

router = APIRouter(prefix="/reports", tags=["reports"])

RECEIVABLE: tuple[str, ...] = (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.PARTIALLY_PAID)
MAX_HOURS = 720  # 30 days: the list is about what needs attention soon, not a forecast
pages = Environment(
    loader=FileSystemLoader(str(Path(__file__).resolve().parent.parent / "templates")),
    autoescape=select_autoescape(["html"]),
)
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
ActionKind = Literal["reminder", "escalation", "overdue"]
AsOf = Annotated[
    ApiDate | None,
    Query(description="The day the buckets are counted on (YYYY-MM-DD); default: today in UTC."),
]
Hours = Annotated[int, Query(ge=1, le=MAX_HOURS, description="Window from now, in hours.")]


# ---------------------------------------------------------------- response bodies


class AgingCustomerOut(BaseModel):
    customer_id: uuid.UUID
    customer_name: str
    buckets: dict[str, str]  # every bucket of ``buckets``, in that order, zeros included
    total: str


class AgingCurrencyOut(BaseModel):
    currency: str
    buckets: dict[str, str]
    total: str
    customers: list[AgingCustomerOut]


class AgingOut(BaseModel):
    as_of: date
    buckets: list[str]
    currencies: list[AgingCurrencyOut]


class NextActionOut(BaseModel):
    invoice_id: uuid.UUID
    number: str | None
    status: str
    customer_id: uuid.UUID
    customer_name: str
    currency: str
    amount_due: str
    due_date: date
    action: ActionKind
    offset_days: int | None  # the reminder's (or, for the escalation, the last reminder's) offset
    at: datetime  # UTC


class NextActionsOut(BaseModel):
    now: datetime
    until: datetime
    hours: int
    items: list[NextActionOut]


# ---------------------------------------------------------------- next action (pure)


@dataclass(frozen=True)
class PlannedAction:
    kind: ActionKind
    at: datetime
    offset_days: int | None


def next_action(
    *,
    status: str,
    due_date: date,
    issued_at: datetime | None,
    timezone: str,
    invoice_offsets: Sequence[int] | None,
    customer_offsets: Sequence[int] | None,
    default_offsets: Sequence[int],
    send_hour: int,
    now: datetime,
    policy: Mapping[str, Any] | None = None,
) -> PlannedAction | None:
    """The first thing the invoice's workflow does after ``now``, or None if nothing is left.

    Same inputs, same precedence and same functions as the plan the workflow gets at issue, so the
    operator sees what will really happen. When becoming overdue and a reminder fall on one instant,
    the workflow settles the status first, so "overdue" wins the tie.
    """
    offsets = next((o for o in (invoice_offsets, customer_offsets) if o is not None), default_offsets)
    candidates: list[PlannedAction] = []
    overdue_at = overdue_instant(due_date, timezone)
    if status != InvoiceStatus.OVERDUE and overdue_at > now:
        candidates.append(PlannedAction("overdue", overdue_at, None))
    # The workflow drops steps up to its issue instant and has fired every step up to now.
    cutoff = max(issued_at, now) if issued_at is not None else now
    if policy is not None and issued_at is not None:  # the dunning policy frozen on the invoice at issue
        steps = [
            s
            for s in dunning_schedule(policy_from_dict(policy), due_date, timezone, issued_at)
            if s.send_at > cutoff
        ]
    else:
        steps = reminder_schedule(due_date, list(offsets), timezone, send_hour=send_hour, not_before=cutoff)
    if steps:
        kind: ActionKind = "escalation" if steps[0].kind == "escalation" else "reminder"
        candidates.append(PlannedAction(kind, steps[0].send_at, steps[0].offset_days))
    return min(candidates, key=lambda action: action.at) if candidates else None


# ---------------------------------------------------------------- queries


def _receivables() -> Select[Any]:
    """Receivable invoices with their customer's facts, as plain columns (no lines or payments loaded)."""
    return (
        select(
            Invoice.id.label("invoice_id"),
            Invoice.number,
            Invoice.status,
            Invoice.currency,
            Invoice.amount_due,
            Invoice.due_date,
            Invoice.issued_at,
            Invoice.reminder_offsets.label("invoice_offsets"),
            Invoice.dunning_snapshot,
            Customer.id.label("customer_id"),
            Customer.name.label("customer_name"),
            Customer.timezone,
            Customer.reminder_offsets.label("customer_offsets"),
        )
        .join(Customer, Invoice.customer_id == Customer.id)
        .where(Invoice.status.in_(RECEIVABLE), Invoice.due_date.is_not(None))
    )


def load_aging(session: Session, as_of: date) -> AgingReport:
    rows = session.execute(_receivables()).all()
    return aging_report(
        (AgingRow(str(r.customer_id), r.customer_name, r.currency, r.amount_due, r.due_date) for r in rows),
        as_of,
    )


def load_next_actions(session: Session, settings: Settings, now: datetime, hours: int) -> NextActionsOut:
    until = now + timedelta(hours=hours)
    # Offsets reach at most MAX_OFFSET days from the due date (plus the escalation hour and up to a day
    # of timezone): invoices due further away than that cannot act in the window.
    margin = timedelta(days=MAX_OFFSET + 3)
    stmt = _receivables().where(
        Invoice.due_date >= (now - margin).date(), Invoice.due_date <= (until + margin).date()
    )
    items: list[NextActionOut] = []
    for r in session.execute(stmt).all():
        action = next_action(
            status=r.status,
            due_date=r.due_date,
            issued_at=r.issued_at,
            timezone=r.timezone,
            invoice_offsets=r.invoice_offsets,
            customer_offsets=r.customer_offsets,
            default_offsets=settings.reminder_offsets(),
            send_hour=settings.reminder_send_hour,
            now=now,
            policy=r.dunning_snapshot,
        )
        if action is None or action.at > until:
            continue
        items.append(
            NextActionOut(
                invoice_id=r.invoice_id,
                number=r.number,
                status=r.status,
                customer_id=r.customer_id,
                customer_name=r.customer_name,
                currency=r.currency,
                amount_due=str(r.amount_due),
                due_date=r.due_date,
                action=action.kind,
                offset_days=action.offset_days,
                at=action.at.astimezone(UTC),
            )
        )
    items.sort(key=lambda item: (item.at, item.number or "", str(item.invoice_id)))
    return NextActionsOut(now=now, until=until, hours=hours, items=items)


def aging_out(report: AgingReport) -> AgingOut:
    currencies = [
        AgingCurrencyOut(
            currency=totals.currency,
            buckets={b: str(totals.buckets[b]) for b in BUCKETS},
            total=str(totals.total),
            customers=[
                AgingCustomerOut(
                    customer_id=uuid.UUID(line.customer_id),
                    customer_name=line.customer_name,
                    buckets={b: str(line.buckets[b]) for b in BUCKETS},
                    total=str(line.total),
                )
                for line in report.lines
                if line.currency == totals.currency
            ],
        )
        for totals in report.totals
    ]
    return AgingOut(as_of=report.as_of, buckets=list(BUCKETS), currencies=currencies)


def _today() -> date:
    return datetime.now(UTC).date()


def _snapshot(session: Session) -> None:
    """One snapshot for several statements: under READ COMMITTED a payment committing in between
    could show an invoice in the chart and not in the list (or the reverse)."""
    session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


# ---------------------------------------------------------------- JSON


@router.get("/aging", response_model=AgingOut)
async def aging(db: DbDep, _: Operator, as_of: AsOf = None) -> AgingOut:
    """Amounts due per currency and per customer in the aging buckets (amounts as decimal strings)."""
    day = as_of or _today()
    return aging_out(await db.run(lambda s: load_aging(s, day)))


@router.get("/next-actions", response_model=NextActionsOut)
async def next_actions(db: DbDep, settings: SettingsDep, _: Operator, hours: Hours = 24) -> NextActionsOut:
    """Invoices whose next reminder, escalation or overdue instant falls within the next ``hours``."""
    now = datetime.now(UTC)
    return await db.run(lambda s: load_next_actions(s, settings, now, hours))


# ---------------------------------------------------------------- page

_page_bearer = HTTPBearer(auto_error=False, description="INVOICEFLOW_API_TOKEN or a user's API token")


def require_operator_page(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_page_bearer)]
) -> str:
    """The bearer header when sent, else the console session; a browser without one signs in first."""
    from api.console.auth import LoginRequired, session_principal

    if credentials is None and session_principal(request) is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return require_operator(request, credentials)


# SVG geometry in viewBox units; the viewBox is about a phone's card width, so text stays ~11px there.
SLOT, BAR, PLOT_TOP, BASELINE, CHART_W, CHART_H = 68, 40, 34, 170, 340, 200
FONT = 11
BUCKET_LABELS = {"current": "current", "1-30": "1–30", "31-60": "31–60", "61-90": "61–90", "90+": "90+"}
BAR_COLOURS = {
    "current": "#2e90fa",
    "1-30": "#fdb022",
    "31-60": "#f79009",
    "61-90": "#e04f16",
    "90+": "#b42318",
}


def _number(amount: Decimal, currency: str) -> str:
    """The figure of ``format_money`` without the code, for tables headed by their currency."""
    return format_money(amount, currency).rsplit(" ", 1)[0]


def _chart(currency: str, buckets: dict[str, Decimal]) -> list[dict[str, Any]]:
    """One bar per bucket, heights proportional to the largest bucket (floats: presentation only)."""
    top = max(buckets.values())
    plot = BASELINE - PLOT_TOP
    bars = []
    for i, bucket in enumerate(BUCKETS):
        amount = buckets[bucket]
        height = round(float(amount / top) * plot, 2) if top > 0 else 0.0
        figure, code = format_money(amount, currency).rsplit(" ", 1)
        centre = i * SLOT + SLOT / 2
        # Shrink only a label too wide for its slot (very large amounts), never overlap the neighbour.
        fit = SLOT - 4 if len(figure) * FONT * 0.58 > SLOT - 4 else None
        bars.append(
            {
                "bucket": bucket,
                "label": BUCKET_LABELS[bucket],
                "colour": BAR_COLOURS[bucket],
                "x": i * SLOT + (SLOT - BAR) / 2,
                "y": round(BASELINE - height, 2),
                "width": BAR,
                "height": height,
                "centre": centre,
                "text_y": round(BASELINE - height - 6 - FONT * 1.1, 2),
                "figure": figure,
                "code": code,
                "fit": fit,
                "money": format_money(amount, currency),
            }
        )
    return bars


def _describe(item: NextActionOut) -> str:
    if item.action == "overdue":
        return "becomes overdue"
    if item.action == "escalation":
        return "escalation after the last reminder"
    days = item.offset_days or 0
    if days < 0:
        return f"reminder, {-days} day{'s' if days != -1 else ''} before the due date"
    if days == 0:
        return "reminder on the due date"
    return f"reminder, {days} day{'s' if days != 1 else ''} after the due date"


def page_context(report: AgingReport, actions: NextActionsOut) -> dict[str, Any]:
    currencies = []
    for totals in report.totals:
        currencies.append(
            {
                "currency": totals.currency,
                "total": format_money(totals.total, totals.currency),
                "bars": _chart(totals.currency, totals.buckets),
                "totals": [_number(totals.buckets[b], totals.currency) for b in BUCKETS],
                "total_figure": _number(totals.total, totals.currency),
                "lines": [
                    {
                        "name": line.customer_name,
                        "buckets": [_number(line.buckets[b], line.currency) for b in BUCKETS],
                        "total": _number(line.total, line.currency),
                    }
                    for line in report.lines
                    if line.currency == totals.currency
                ],
            }
        )
    return {
        "as_of": report.as_of.isoformat(),
        "buckets": [BUCKET_LABELS[b] for b in BUCKETS],
        "currencies": currencies,
        "chart": {"width": CHART_W, "height": CHART_H, "baseline": BASELINE, "font": FONT},
        "hours": actions.hours,
        "now": actions.now.strftime("%Y-%m-%d %H:%M UTC"),
        "actions": [
            {
                "number": a.number or str(a.invoice_id),
                "customer": a.customer_name,
                "what": _describe(a),
                "kind": a.action,
                "at_iso": a.at.isoformat().replace("+00:00", "Z"),
                "at": a.at.strftime("%Y-%m-%d %H:%M UTC"),
                "amount_due": format_money(Decimal(a.amount_due), a.currency),
            }
            for a in actions.items
        ],
    }


@router.get("/aging/page", response_class=HTMLResponse)
async def aging_page(
    db: DbDep,
    settings: SettingsDep,
    _: Annotated[str, Depends(require_operator_page)],
    request: Request,
    as_of: AsOf = None,
    hours: Hours = 24,
) -> HTMLResponse:
    """The aging chart and table per currency, and the next actions, as one HTML page for a browser.

    Open ``/reports/aging/page`` signed in to the console (``/app/login``); the bearer header works too.
    """
    day, now = as_of or _today(), datetime.now(UTC)

    def tx(session: Session) -> tuple[AgingReport, NextActionsOut]:
        _snapshot(session)
        return load_aging(session, day), load_next_actions(session, settings, now, hours)

    report, actions = await db.run(tx)
    html = pages.get_template("aging.html").render(**page_context(report, actions))
    return HTMLResponse(html, headers=PAGE_HEADERS)
