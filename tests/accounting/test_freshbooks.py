"""FreshBooksConnector against the FreshBooks stand-in over real HTTP on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from accounting.base import (
    AccountingCreditNote,
    AccountingInvoice,
    AccountingPayment,
    RemoteState,
    SyncStatus,
    drift,
)
from accounting.errors import AuthExpired, NotFound, Transient, ValidationFailed
from accounting.freshbooks import FreshBooksConnector
from accounting.http import HttpSettings
from accounting.mapping import LineSpec
from accounting.ratelimit import FRESHBOOKS_POLICY, TenantLimiter
from standins.accounting.freshbooks import FreshBooksState, create_freshbooks_app
from standins.server import ServedApp, serve
from tests.accounting.helpers import customer, invoice

D = Decimal
TOKEN = "freshbooks-token"
ACCOUNT = "xZNQ1X"


@pytest.fixture
def state() -> FreshBooksState:
    return FreshBooksState(account_id=ACCOUNT, tokens={TOKEN})


@pytest.fixture
def served(state: FreshBooksState) -> Iterator[ServedApp]:
    app, _ = create_freshbooks_app(state)
    with serve(app) as running:
        yield running


def connector(served: ServedApp, **overrides: object) -> FreshBooksConnector:
    options: dict[str, object] = {
        "account_id": ACCOUNT,
        "token_provider": lambda: TOKEN,
        "base_url": served.base_url,
        "limiter": TenantLimiter(FRESHBOOKS_POLICY),
        "settings": HttpSettings(timeout_s=5.0),
    }
    options.update(overrides)
    return FreshBooksConnector(**options)  # type: ignore[arg-type]


@pytest.fixture
async def freshbooks(served: ServedApp) -> AsyncIterator[FreshBooksConnector]:
    client = connector(served)
    yield client
    await client.aclose()


async def test_invoice_lifecycle(freshbooks: FreshBooksConnector, state: FreshBooksState) -> None:
    ours = invoice()
    created = await freshbooks.upsert_invoice(ours, idempotency_key="inv:create:r1")
    assert (created.status, created.remote_status) == (
        SyncStatus.CREATED,
        "sent",
    )  # drafts are not in the books
    remote = await freshbooks.fetch_invoice(created.external_id)
    assert drift(ours, remote) == []
    assert (remote.subtotal, remote.tax, remote.total, remote.state) == (
        D("1975.99"),
        D("390.00"),
        D("2365.99"),
        RemoteState.OPEN,
    )
    stored = state.invoices[int(created.external_id)]
    assert stored["due_date"] == "2024-07-10" and stored["lines"][0]["unit_cost"] == {
        "amount": "150.00",
        "code": "USD",
    }

    pay = AccountingPayment("pay_1", created.external_id, D("2365.99"), date(2024, 6, 12), "pi_1", "USD")
    paid = await freshbooks.record_payment(pay, idempotency_key="pay_1")
    assert paid.status == SyncStatus.RECORDED
    assert state.payments[int(paid.external_id)]["amount"] == {"amount": "2365.99", "code": "USD"}
    remote = await freshbooks.fetch_invoice(created.external_id)
    assert (remote.state, remote.amount_paid, remote.amount_due) == (
        RemoteState.PAID,
        D("2365.99"),
        D("0.00"),
    )

    voided = await freshbooks.void_invoice(created.external_id, idempotency_key="inv:void")
    assert voided.status == SyncStatus.VOIDED
    assert (await freshbooks.fetch_invoice(created.external_id)).state == RemoteState.VOIDED

    again = await freshbooks.ensure_customer(ours.customer, idempotency_key="cus")
    assert again.status == SyncStatus.EXISTING  # found by email
    assert (len(state.clients), len(state.invoices), len(state.payments)) == (1, 1, 1)
    body = state.core.calls_to("POST", "/invoices/invoices")[0].json()["invoice"]
    assert body["lines"][2]["qty"] == 3 and body["lines"][2]["unit_cost"]["amount"] == "0.3333"
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in state.calls)


async def test_retry_after_commit_then_timeout_finds_instead_of_duplicating(
    served: ServedApp, state: FreshBooksState
) -> None:
    freshbooks = connector(served)
    impatient = connector(served, settings=HttpSettings(timeout_s=0.5))  # gives up on the hang
    ours = invoice()
    client = await freshbooks.ensure_customer(ours.customer, idempotency_key="cus")
    ours = replace(ours, customer=replace(ours.customer, external_id=client.external_id))
    state.faults.commit_then_hang(1.2)
    with pytest.raises(Transient):
        await impatient.upsert_invoice(ours, idempotency_key="inv:create:r1")
    assert [i["v3_status"] for i in state.invoices.values()] == ["draft"]  # created, never marked sent
    again = await freshbooks.upsert_invoice(ours, idempotency_key="inv:create:r1")
    assert (again.status, again.remote_status) == (SyncStatus.UPDATED, "sent")
    assert len(state.invoices) == 1

    state.faults.commit_then_hang(1.2)
    pay = AccountingPayment("pay_7", again.external_id, D("100.00"), date(2024, 6, 12), "pi_7", "USD")
    with pytest.raises(Transient):
        await impatient.record_payment(pay, idempotency_key="pay_7")
    found = await freshbooks.record_payment(pay, idempotency_key="pay_7")
    assert found.status == SyncStatus.EXISTING and len(state.payments) == 1
    assert (await freshbooks.fetch_invoice(again.external_id)).state == RemoteState.PARTIALLY_PAID
    await freshbooks.aclose()
    await impatient.aclose()


async def test_429_honours_retry_after(freshbooks: FreshBooksConnector, state: FreshBooksState) -> None:
    state.faults.inject_429(1, retry_after=1)
    started = time.monotonic()
    result = await freshbooks.ensure_customer(customer(), idempotency_key="cus")
    assert result.status == SyncStatus.CREATED and time.monotonic() - started >= 1.0
    assert [c.status for c in state.calls] == [429, 200, 200]


async def test_unknown_tax_fails_then_passes_once_added(served: ServedApp) -> None:
    state = FreshBooksState(account_id=ACCOUNT, tokens={TOKEN}, known_taxes={"OUTPUT2", "OUTPUT"})
    app, _ = create_freshbooks_app(state)
    with serve(app) as running:
        freshbooks = connector(running)
        lines = [LineSpec("Licences", D("2"), D("50.00"), D("7"), "", "PST")]
        ours = invoice("INV-9", lines=lines)
        with pytest.raises(ValidationFailed) as raised:
            await freshbooks.upsert_invoice(ours, idempotency_key="inv_9:create:r1")
        assert raised.value.provider_message == "Tax 'PST' does not exist." and raised.value.code == "2001"
        assert state.invoices == {}
        state.add_tax("PST")
        created = await freshbooks.upsert_invoice(ours, idempotency_key="inv_9:create:r1")
        assert created.status == SyncStatus.CREATED
        assert drift(ours, await freshbooks.fetch_invoice(created.external_id)) == []
        with pytest.raises(NotFound, match="Invoice not found"):
            await freshbooks.fetch_invoice("999999")
        await freshbooks.aclose()


async def test_expired_token(served: ServedApp, state: FreshBooksState) -> None:
    state.expire_token(TOKEN)
    freshbooks = connector(served)
    with pytest.raises(AuthExpired, match="requires authentication"):
        await freshbooks.ensure_customer(customer(), idempotency_key="k")
    await freshbooks.aclose()


def credit_note(
    number: str,
    invoice_external_id: str,
    ours: AccountingInvoice,
    allocate: Decimal | None = None,
) -> AccountingCreditNote:
    """Two and a half days of consulting credited (375.00 + 20 % = 450.00)."""
    doc = replace(
        invoice(
            number,
            who=ours.customer,
            lines=[LineSpec("Consulting not delivered", D("2.5"), D("150.00"), D("20"), "200", "OUTPUT2")],
        ),
        reference=ours.number,
    )
    return AccountingCreditNote(
        f"cn_{number}", invoice_external_id, doc, doc.totals.total if allocate is None else allocate
    )


async def test_credit_note_once_applied_to_its_invoice_through_timeouts(
    served: ServedApp, state: FreshBooksState
) -> None:
    freshbooks = connector(served)
    impatient = connector(served, settings=HttpSettings(timeout_s=0.5))  # gives up on the hang
    ours = invoice()
    client = await freshbooks.ensure_customer(ours.customer, idempotency_key="cus")
    ours = replace(ours, customer=replace(ours.customer, external_id=client.external_id))
    created = await freshbooks.upsert_invoice(ours, idempotency_key="inv:create:r1")
    note = credit_note("CN-2024-000001", created.external_id, ours)
    assert note.document.totals.total == D("450.00")

    state.faults.commit_then_hang(1.2, count=2)  # the credit note commits, then the credit payment commits
    with pytest.raises(Transient):
        await impatient.record_credit_note(note, idempotency_key="credit_note:cn_1")
    with pytest.raises(Transient):  # found by number, not created again; the application hangs
        await impatient.record_credit_note(note, idempotency_key="credit_note:cn_1")
    again = await freshbooks.record_credit_note(note, idempotency_key="credit_note:cn_1")
    [remote] = state.credit_notes.values()
    assert (again.external_id, again.status, again.remote_status) == (
        str(remote["id"]),
        SyncStatus.EXISTING,
        "applied",
    )
    assert remote["credit_number"] == "CN-2024-000001" and remote["clientid"] == int(client.external_id)
    assert [(l["name"], l["qty"], l["unit_cost"]["amount"], l["taxName1"]) for l in remote["lines"]] == [
        ("Consulting not delivered", "2.5", "150.00", "OUTPUT2")
    ]
    assert (remote["amount"]["amount"], remote["paid"]["amount"]) == ("450.00", "450.00")
    [application] = state.payments.values()
    assert (application["type"], application["amount"]["amount"]) == ("Credit", "450.00")
    remote_invoice = await freshbooks.fetch_invoice(created.external_id)
    assert remote_invoice.amount_due == remote_invoice.total - D("450.00")
    assert remote_invoice.amount_paid == 0  # credit applied is not money received (reconcile compares money)

    # Beyond what the invoice still owes, the rest stays the client's credit.
    rest = AccountingPayment(
        "pay_1",
        created.external_id,
        remote_invoice.amount_due - D("100.00"),
        date(2024, 6, 12),
        "WIRE",
        "USD",
    )
    await freshbooks.record_payment(rest, idempotency_key="pay_1")
    second = await freshbooks.record_credit_note(
        credit_note("CN-2024-000002", created.external_id, ours), idempotency_key="credit_note:cn_2"
    )
    assert (second.status, second.remote_status) == (SyncStatus.CREATED, "applied")
    assert state.credit_notes[int(second.external_id)]["paid"]["amount"] == "100.00"
    remote_invoice = await freshbooks.fetch_invoice(created.external_id)
    assert (remote_invoice.state, remote_invoice.amount_paid) == (RemoteState.PAID, rest.amount)
    assert len(state.credit_notes) == 2 and len(state.payments) == 3
    await freshbooks.aclose()
    await impatient.aclose()


async def test_credit_beyond_what_the_client_has_is_refused(
    freshbooks: FreshBooksConnector, state: FreshBooksState
) -> None:
    ours = invoice()
    created = await freshbooks.upsert_invoice(ours, idempotency_key="inv:create:r1")
    body = {
        "payment": {"invoiceid": int(created.external_id), "amount": {"amount": "10.00"}, "type": "Credit"}
    }
    with pytest.raises(ValidationFailed, match="credit available"):
        await freshbooks.http.request("POST", freshbooks._path("payments/payments"), body=body)
    assert not state.payments
