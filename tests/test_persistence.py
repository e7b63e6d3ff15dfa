"""The schema on a real PostgreSQL: migrations, gapless numbers under concurrency, append-only audit log."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from billing.totals import LineInput
from persistence import invoices as repo
from persistence import numbering
from persistence.db import session_scope
from persistence.migrate import current
from persistence.models import Customer, InvoiceEvent


def make_customer(url: str, **overrides: object) -> uuid.UUID:
    with session_scope(url) as session:
        values: dict[str, object] = {
            "name": "Hooli",
            "emails": ["ap@hooli.example.com"],
            "currency": "USD",
            "timezone": "America/New_York",
            "payment_terms": "net_30",
            "tags": [],
        }
        values.update(overrides)
        customer = Customer(**values)
        session.add(customer)
        session.flush()
        return customer.id


def make_invoice(url: str, customer_id: uuid.UUID, price: str = "100.00") -> uuid.UUID:
    with session_scope(url) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency="USD",
                payment_terms="net_30",
                lines=[LineInput(description="Consulting", quantity=Decimal("1"), unit_price=Decimal(price))],
            ),
        )
        return invoice.id


def test_migrations_are_at_head(pg_url: str) -> None:
    from alembic.script import ScriptDirectory

    from persistence.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config(pg_url)).get_heads()
    assert len(heads) == 1, f"migrations have branched: {heads}"
    assert current(pg_url) == heads[0]


def test_numbers_are_gapless_under_concurrency(pg_url: str) -> None:
    series = f"T{uuid.uuid4().hex[:6]}-2026"

    def take(_: int) -> int:
        with session_scope(pg_url) as session:
            return numbering.allocate(session, series)

    with ThreadPoolExecutor(max_workers=8) as pool:
        values = list(pool.map(take, range(40)))
    assert sorted(values) == list(range(1, 41))


def test_rolled_back_allocation_leaves_no_gap(pg_url: str) -> None:
    series = f"R{uuid.uuid4().hex[:6]}-2026"
    with pytest.raises(RuntimeError):
        with session_scope(pg_url) as session:
            assert numbering.allocate(session, series) == 1
            raise RuntimeError("issue failed after allocation")
    with session_scope(pg_url) as session:
        assert numbering.allocate(session, series) == 1


def test_issue_numbers_once_and_is_idempotent(pg_url: str) -> None:
    customer_id = make_customer(pg_url)
    invoice_id = make_invoice(pg_url, customer_id)
    prefix = f"X{uuid.uuid4().hex[:4].upper()}"
    as_of = datetime(2026, 1, 1, 3, 0, tzinfo=UTC)  # still 31 Dec 2025 in New York
    with session_scope(pg_url) as session:
        first = repo.issue(
            session, invoice_id, as_of=as_of, number_prefix=prefix, default_offsets=(-3, 0, 7), send_hour=9
        )
    with session_scope(pg_url) as session:
        second = repo.issue(
            session,
            invoice_id,
            as_of=datetime(2026, 2, 1, tzinfo=UTC),
            number_prefix=prefix,
            default_offsets=(-3, 0, 7),
            send_hour=9,
        )
    assert first.number == second.number == f"{prefix}-2025-000001"
    assert first.issue_date == "2025-12-31" and first.due_date == "2026-01-30"
    assert first.reminders == second.reminders
    assert [s.kind for s in first.reminders] == ["reminder", "reminder", "reminder", "escalation"]
    # 09:00 in New York on 27 Jan 2026 (EST, UTC-5) is 14:00 UTC.
    assert first.reminders[0].send_at == datetime(2026, 1, 27, 14, 0, tzinfo=UTC)
    assert first.overdue_at == datetime(2026, 1, 31, 5, 0, tzinfo=UTC)


def test_payments_are_recorded_once_per_key(pg_url: str) -> None:
    from workflows.payloads import PaymentInput

    invoice_id = make_invoice(pg_url, make_customer(pg_url), price="100.00")
    now = datetime.now(UTC)
    pay = PaymentInput(amount="60.00", idempotency_key=f"k-{uuid.uuid4()}")
    with session_scope(pg_url) as session:
        first = repo.apply_payment(session, invoice_id, pay, past_due=False, received_at=now)
    with session_scope(pg_url) as session:
        again = repo.apply_payment(session, invoice_id, pay, past_due=False, received_at=now)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert first.amount_due == again.amount_due == "40.00"
    assert first.status == "partially_paid"
    with session_scope(pg_url) as session:
        over = repo.apply_payment(
            session,
            invoice_id,
            PaymentInput(amount="50.00", idempotency_key=f"k-{uuid.uuid4()}"),
            past_due=False,
            received_at=now,
        )
    assert (over.status, over.amount_due, over.credit) == ("paid", "0.00", "10.00")


def test_money_after_an_invoice_closed_becomes_credit_once_and_a_key_stays_on_its_invoice(
    pg_url: str,
) -> None:
    from persistence.closed_payments import credit_closed_payment
    from persistence.models import CustomerCreditEntry
    from workflows.payloads import PaymentInput

    customer_id = make_customer(pg_url)
    invoice_id = make_invoice(pg_url, customer_id, price="100.00")
    other_id = make_invoice(pg_url, customer_id, price="100.00")
    now = datetime.now(UTC)
    with session_scope(pg_url) as session:
        paid = repo.apply_payment(
            session,
            invoice_id,
            PaymentInput(amount="100.00", idempotency_key=f"k-{uuid.uuid4()}"),
            past_due=False,
            received_at=now,
        )
    assert paid.status == "paid"
    twice = PaymentInput(amount="100.00", idempotency_key=f"k-{uuid.uuid4()}", method="bank_transfer")
    with session_scope(pg_url) as session:
        first = credit_closed_payment(session, invoice_id, twice, received_at=now)
    with session_scope(pg_url) as session:
        again = credit_closed_payment(session, invoice_id, twice, received_at=now)
    assert (first.duplicate, again.duplicate) == (False, True)
    assert (first.status, first.amount_paid, first.amount_due, first.credit) == (
        "paid",
        "200.00",
        "0.00",
        "100.00",
    )
    with session_scope(pg_url) as session:
        credits = session.scalars(
            select(CustomerCreditEntry.amount).where(CustomerCreditEntry.customer_id == customer_id)
        ).all()
        notes = session.scalars(
            select(InvoiceEvent.data)
            .where(InvoiceEvent.invoice_id == invoice_id, InvoiceEvent.kind == "payment.recorded")
            .order_by(InvoiceEvent.id)
        ).all()
    assert credits == [Decimal("100.00")]
    assert [n.get("note") for n in notes] == [None, "the invoice was already paid: kept as customer credit"]
    with (
        session_scope(pg_url) as session,
        pytest.raises(repo.InvalidInvoiceOperation, match="another invoice"),
    ):
        repo.apply_payment(session, other_id, twice, past_due=False, received_at=now)


def test_audit_timeline_is_append_only(pg_url: str) -> None:
    invoice_id = make_invoice(pg_url, make_customer(pg_url))
    with session_scope(pg_url) as session:
        events = session.scalars(select(InvoiceEvent).where(InvoiceEvent.invoice_id == invoice_id)).all()
        assert [e.kind for e in events] == ["created"]
    for statement in (
        "update invoice_events set kind = 'tampered' where invoice_id = :id",
        "delete from invoice_events where invoice_id = :id",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with session_scope(pg_url) as session:
                session.execute(text(statement), {"id": invoice_id})


def test_event_dedupe_key_makes_retries_harmless(pg_url: str) -> None:
    invoice_id = make_invoice(pg_url, make_customer(pg_url))
    for _ in range(3):
        with session_scope(pg_url) as session:
            repo.add_event(
                session, invoice_id, "email.invoice.sent", actor="workflow", dedupe_key=f"email:{invoice_id}"
            )
    with session_scope(pg_url) as session:
        kinds = [e.kind for e in repo.timeline(session, invoice_id)]
    assert kinds == ["created", "email.invoice.sent"]


def test_due_date_from_terms_and_requested_date(pg_url: str) -> None:
    customer_id = make_customer(pg_url, timezone="UTC")
    with session_scope(pg_url) as session:
        customer = session.get(Customer, customer_id)
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency="USD",
                payment_terms="net_30",
                due_date=date(2026, 12, 24),
                lines=[LineInput(description="x", quantity=Decimal(1), unit_price=Decimal("1.00"))],
            ),
        )
        issued = repo.issue(
            session,
            invoice.id,
            as_of=datetime(2026, 11, 25, tzinfo=UTC),
            number_prefix="REQ",
            default_offsets=(),
            send_hour=9,
        )
    assert issued.due_date == "2026-12-24" and issued.reminders == []


def test_migrations_match_the_models(pg_url: str) -> None:
    """The migrated schema is the schema the models describe (a missing constraint or column fails)."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from persistence.models import Base

    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], diff
