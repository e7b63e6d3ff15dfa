"""Customer credit on a real PostgreSQL: an overpayment (or a credit note beyond the amount due) is applied
to the customer's next invoice in the same currency, once, even when issuing is retried or two invoices
are issued at the same moment, and the balance never goes below zero. Credit notes number gaplessly and
once per idempotency key."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from billing.status import InvoiceStatus
from billing.totals import LineInput
from persistence import credit_notes as notes
from persistence import customer_credit
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Customer, CustomerCreditEntry, Payment
from tests.test_persistence import make_customer
from workflows.payloads import CreditNoteInput, PaymentInput, TermsLine

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _invoice(url: str, customer_id: uuid.UUID, price: str, currency: str = "USD") -> uuid.UUID:
    with session_scope(url) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency=currency,
                payment_terms="net_30",
                lines=[LineInput(description="Consulting", quantity=Decimal(1), unit_price=Decimal(price))],
            ),
        ).id


def _issue(url: str, invoice_id: uuid.UUID):  # type: ignore[no-untyped-def]
    with session_scope(url) as session:
        return repo.issue(
            session, invoice_id, as_of=NOW, number_prefix="CRT", default_offsets=(), send_hour=9
        )


def _balance(url: str, customer_id: uuid.UUID, currency: str = "USD") -> Decimal:
    with session_scope(url) as session:
        return customer_credit.balance(session, customer_id, currency)


def _overpay(url: str, customer_id: uuid.UUID, total: str, paid: str) -> None:
    invoice_id = _invoice(url, customer_id, total)
    _issue(url, invoice_id)
    with session_scope(url) as session:
        outcome = repo.apply_payment(
            session,
            invoice_id,
            PaymentInput(amount=paid, idempotency_key=f"over-{uuid.uuid4()}"),
            past_due=False,
            received_at=NOW,
        )
    assert outcome.status == "paid"


def test_overpayment_is_applied_to_the_next_invoices_once_and_same_currency_only(pg_url: str) -> None:
    customer_id = make_customer(pg_url)
    _overpay(pg_url, customer_id, "100.00", "130.00")
    assert _balance(pg_url, customer_id) == Decimal("30.00")

    euro = _invoice(pg_url, customer_id, "50.00", currency="EUR")
    assert _issue(pg_url, euro).amount_due == "50.00"  # USD credit never pays a EUR invoice

    small = _invoice(pg_url, customer_id, "20.00")
    first = _issue(pg_url, small)
    again = _issue(pg_url, small)  # a retried issue activity
    assert (first.amount_paid, first.amount_due) == (again.amount_paid, again.amount_due) == ("20.00", "0.00")
    larger = _invoice(pg_url, customer_id, "100.00")
    assert (_issue(pg_url, larger).amount_paid, _issue(pg_url, larger).amount_due) == ("10.00", "90.00")
    untouched = _invoice(pg_url, customer_id, "100.00")
    assert _issue(pg_url, untouched).amount_due == "100.00"
    assert _balance(pg_url, customer_id) == Decimal("0.00")

    with session_scope(pg_url) as session:
        applied = session.scalars(select(Payment).where(Payment.invoice_id.in_([small, larger]))).all()
        assert sorted((p.method, p.amount) for p in applied) == [
            ("customer_credit", Decimal("10.00")),
            ("customer_credit", Decimal("20.00")),
        ]
        kinds = [e.kind for e in repo.timeline(session, small)]
        assert kinds.count("credit.applied") == 1
        entries = session.scalars(
            select(CustomerCreditEntry).where(CustomerCreditEntry.customer_id == customer_id)
        ).all()
        assert sorted((e.kind, e.amount) for e in entries) == [
            ("applied", Decimal("-20.00")),
            ("applied", Decimal("-10.00")),
            ("overpayment", Decimal("30.00")),
        ]


def test_two_invoices_issued_at_once_never_spend_more_than_the_balance(pg_url: str) -> None:
    customer_id = make_customer(pg_url)
    _overpay(pg_url, customer_id, "100.00", "150.00")
    invoices = [_invoice(pg_url, customer_id, "40.00") for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        issued = list(pool.map(lambda i: _issue(pg_url, i), invoices))
    assert sum(Decimal(i.amount_paid) for i in issued) == Decimal("50.00")
    assert sorted(Decimal(i.amount_paid) for i in issued) == [0, 0, Decimal("10.00"), Decimal("40.00")]
    assert _balance(pg_url, customer_id) == Decimal("0.00")


def _note(
    url: str, invoice_id: uuid.UUID, key: str, amount: str, *, request_hash: str = "h", prefix: str = "CNT"
):  # type: ignore[no-untyped-def]
    request = CreditNoteInput(
        reason="Goodwill",
        idempotency_key=key,
        request_hash=request_hash,
        lines=[TermsLine(description="Goodwill", quantity="1", unit_price=amount)],
    )
    with session_scope(url) as session:
        return notes.issue_credit_note(
            session, invoice_id, request, past_due=False, as_of=NOW, number_prefix=prefix
        )


def test_credit_notes_are_numbered_gaplessly_and_once_per_key(pg_url: str) -> None:
    prefix = f"T{uuid.uuid4().hex[:5].upper()}"
    customer_id = make_customer(pg_url)
    first, second = (_invoice(pg_url, customer_id, "100.00") for _ in range(2))
    for invoice_id in (first, second):
        _issue(pg_url, invoice_id)
        with session_scope(pg_url) as session:  # what the workflow does once the invoice is sent
            repo.set_status(
                session, invoice_id, InvoiceStatus.OPEN, actor="test", event="sent", dedupe_key=None
            )
    a = _note(pg_url, first, "k1", "10.00", prefix=prefix)
    again = _note(pg_url, first, "k1", "10.00", prefix=prefix)
    assert (a.duplicate, again.duplicate, again.credit_note_id) == (False, True, a.credit_note_id)
    with pytest.raises(repo.InvalidInvoiceOperation, match="different request"):
        _note(pg_url, first, "k1", "10.00", request_hash="other", prefix=prefix)
    with pytest.raises(repo.InvalidInvoiceOperation, match="still creditable"):
        _note(pg_url, first, "too-much", "95.00", prefix=prefix)  # 10 already credited
    b = _note(
        pg_url, second, "k1", "100.00", prefix=prefix
    )  # the same key on another invoice is another note
    assert [a.number, b.number] == [f"{prefix}-2026-000001", f"{prefix}-2026-000002"]
    assert (a.amount_due, a.status) == ("90.00", "open")
    assert (b.amount_due, b.status) == ("0.00", "credited")
    with pytest.raises(repo.InvalidInvoiceOperation, match="invoice is credited"):
        _note(pg_url, second, "k2", "1.00", prefix=prefix)
