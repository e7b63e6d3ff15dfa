"""The sync_accounting activity against the Xero stand-in over real HTTP and a real PostgreSQL.

Invoices are created and issued in the database the way the invoice workflow does it; the activity
is run directly (temporalio's ActivityEnvironment), so a retry is simply a second run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from typer.testing import CliRunner

from accounting.reconcile import reconcile
from accounting.tokens import TokenGrant, save_connection, token_cipher
from activities.accounting import AccountingActivities
from billing.totals import LineInput
from core.settings import Settings
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import AccountingSync, Customer, CustomerExternalId, Payment
from standins.accounting.xero import PREFIX, TOKEN_PATH, XeroState, create_xero_app
from standins.server import ServedApp, serve
from workflows.payloads import (
    ACCOUNTING_VALIDATION_ERROR,
    AccountingAction,
    AccountingSyncRequest,
    PaymentInput,
)

D = Decimal
TOKEN = "xero-token"
MakeSettings = Callable[..., Settings]


@pytest.fixture
def xero() -> Iterator[tuple[XeroState, ServedApp]]:
    state = XeroState(tenant_id=f"tenant-{uuid.uuid4().hex[:8]}", tokens={TOKEN})
    app, _ = create_xero_app(state)
    with serve(app) as served:
        yield state, served


@pytest.fixture
def settings(make_settings: MakeSettings, xero: tuple[XeroState, ServedApp]) -> Settings:
    state, served = xero
    configured = make_settings(
        accounting_provider="xero",
        xero_base_url=served.base_url + PREFIX,
        xero_token_url=served.base_url + TOKEN_PATH,
        xero_tenant_id=state.tenant_id,
        xero_client_id="xero-client",
        xero_client_secret="xero-secret",
        accounting_sales_account="200",
        accounting_tax_codes="20=OUTPUT2, 15=OUTPUT",
        accounting_timeout_s=5.0,
    )
    state.oauth.add_refresh_token("rt-1")
    grant = TokenGrant(TOKEN, "rt-1", datetime.now(UTC) + timedelta(hours=1))
    save_connection(
        configured.require_database_url(), token_cipher(configured), "xero", state.tenant_id, grant
    )
    return configured


@pytest.fixture
async def activities(settings: Settings) -> AsyncIterator[AccountingActivities]:
    instance = AccountingActivities(settings)
    yield instance
    await instance.aclose()


LINES = [
    LineInput(description="Consulting, June", quantity=D("12.5"), unit_price=D("150.00"), tax_rate=D("20")),
    LineInput(description="Hosting", quantity=D("1"), unit_price=D("99.99"), tax_rate=D("15")),
    LineInput(description="Printing", quantity=D("3"), unit_price=D("0.35"), tax_rate=D("0")),
]


def issued_invoice(url: str, lines: list[LineInput] = LINES) -> uuid.UUID:
    """A customer and an issued invoice (numbered, dated), as the workflow's first activity leaves it."""
    tag = uuid.uuid4().hex[:6]
    with session_scope(url) as session:
        customer = Customer(
            name=f"Globex {tag}",
            emails=[f"ap-{tag}@globex.example"],
            currency="USD",
            timezone="Europe/Berlin",
            payment_terms="net_30",
            tags=[],
        )
        session.add(customer)
        session.flush()
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency="USD",
                payment_terms="net_30",
                lines=lines,
            ),
        )
        invoice_id = invoice.id
    with session_scope(url) as session:
        repo.issue(
            session,
            invoice_id,
            as_of=datetime(2026, 6, 10, 9, tzinfo=UTC),
            number_prefix=f"X{tag}",
            default_offsets=(),
            send_hour=9,
        )
    return invoice_id


def pay(url: str, invoice_id: uuid.UUID, amount: str, reference: str) -> uuid.UUID:
    with session_scope(url) as session:
        outcome = repo.apply_payment(
            session,
            invoice_id,
            PaymentInput(amount=amount, idempotency_key=f"pay-{uuid.uuid4()}", reference=reference),
            past_due=False,
            received_at=datetime(2026, 6, 12, 22, 30, tzinfo=UTC),
        )
        return uuid.UUID(outcome.payment_id)


def sync_row(url: str, kind: str, object_id: uuid.UUID) -> AccountingSync:
    with session_scope(url) as session:
        return session.scalars(
            select(AccountingSync).where(AccountingSync.kind == kind, AccountingSync.object_id == object_id)
        ).one()


async def run(
    activities: AccountingActivities,
    invoice_id: uuid.UUID,
    action: str = AccountingAction.INVOICE,
    payment_id: uuid.UUID | None = None,
):  # type: ignore[no-untyped-def]
    request = AccountingSyncRequest(str(invoice_id), action, str(payment_id) if payment_id else None)
    return await ActivityEnvironment().run(activities.sync_accounting, request)


async def test_invoice_payment_and_void_reach_xero_once(
    activities: AccountingActivities, settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    url = settings.require_database_url()
    invoice_id = issued_invoice(url)

    result = await run(activities, invoice_id)

    assert (result.status, result.provider) == ("synced", "xero")
    assert list(state.invoices) == [result.external_id]
    stored = state.invoices[result.external_id]
    with session_scope(url) as session:
        invoice = repo.get_invoice(session, invoice_id)
        number, customer_id = invoice.number, invoice.customer_id
    assert stored["InvoiceNumber"] == number and stored["Status"] == "AUTHORISED"
    assert [
        (i["Description"], i["Quantity"], i["UnitAmount"], i["AccountCode"], i["TaxType"])
        for i in stored["LineItems"]
    ] == [
        ("Consulting, June", D("12.5000"), D("150.0000"), "200", "OUTPUT2"),
        ("Hosting", D("1.0000"), D("99.9900"), "200", "OUTPUT"),
        ("Printing", D("3.0000"), D("0.3500"), "200", "NONE"),
    ]
    assert (stored["SubTotal"], stored["TotalTax"], stored["Total"]) == (
        D("1976.04"),
        D("390.00"),
        D("2366.04"),
    )
    row = sync_row(url, "invoice", invoice_id)
    assert (row.status, row.external_id, row.last_error, row.revision) == (
        "synced",
        result.external_id,
        None,
        0,
    )
    contact_id = stored["Contact"]["ContactID"]
    with session_scope(url) as session:
        external = session.scalars(
            select(CustomerExternalId).where(CustomerExternalId.customer_id == customer_id)
        ).one()
        assert external.external_id == contact_id and external.system == f"xero:{state.tenant_id}"

    # A repeat (the workflow's retry after the activity's result was lost) writes nothing.
    writes = len([c for c in state.calls if c.method in ("PUT", "POST")])
    again = await run(activities, invoice_id)
    assert again.external_id == result.external_id
    assert len([c for c in state.calls if c.method in ("PUT", "POST")]) == writes

    payment_id = pay(url, invoice_id, "1000.00", "WIRE-778")
    paid = await run(activities, invoice_id, AccountingAction.PAYMENT, payment_id)
    await run(activities, invoice_id, AccountingAction.PAYMENT, payment_id)  # once only
    assert list(state.payments) == [paid.external_id]
    payment = state.payments[paid.external_id]
    assert (payment["Amount"], payment["Reference"]) == (D("1000.00"), f"WIRE-778 [{str(payment_id)[:8]}]")
    assert payment["Date"] == "/Date(1781308800000+0000)/"  # 13 June: 22:30 UTC is past midnight in Berlin
    assert state.invoices[result.external_id]["AmountPaid"] == D("1000.00")
    assert sync_row(url, "payment", payment_id).external_id == paid.external_id

    other = issued_invoice(url)
    voided = await run(activities, other, AccountingAction.VOID)  # never synced: synced, then voided
    assert state.invoices[voided.external_id]["Status"] == "VOIDED"
    void_writes = len(state.core.calls_to("POST", f"/Invoices/{voided.external_id}"))
    await run(activities, other, AccountingAction.VOID)
    assert len(state.core.calls_to("POST", f"/Invoices/{voided.external_id}")) == void_writes
    assert sync_row(url, "invoice", other).remote_status == "VOIDED"
    assert len(state.invoices) == 2 and len(state.contacts) == 2


async def test_retry_after_commit_then_timeout_creates_no_duplicate(
    settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    url = settings.require_database_url()
    impatient = AccountingActivities(settings.model_copy(update={"accounting_timeout_s": 0.5}))
    invoice_id = issued_invoice(url)
    state.faults.commit_then_hang(1.5, count=2)  # the contact and the invoice both commit, then hang

    with pytest.raises(ApplicationError) as first:
        await run(impatient, invoice_id)
    assert not first.value.non_retryable and first.value.type == "AccountingTransient"
    assert len(state.contacts) == 1  # written; only the answer was lost
    with pytest.raises(ApplicationError):
        await run(impatient, invoice_id)  # the contact is found now; the invoice write hangs in turn
    assert len(state.invoices) == 1
    pending = sync_row(url, "invoice", invoice_id)
    assert pending.status == "pending" and "timed out" in (pending.last_error or "")

    result = await run(impatient, invoice_id)

    assert result.status == "synced" and list(state.invoices) == [result.external_id]
    assert state.core.calls_to("PUT", "/Invoices")[-1].replayed  # Xero's stored answer, not a new invoice
    assert len(state.contacts) == 1
    done = sync_row(url, "invoice", invoice_id)
    assert (done.status, done.last_error, done.attempts) == ("synced", None, 3)
    await impatient.aclose()


async def test_validation_error_is_recorded_then_fixed_by_adding_the_account(
    settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    url = settings.require_database_url()
    activities = AccountingActivities(settings.model_copy(update={"accounting_sales_account": "4100"}))
    invoice_id = issued_invoice(url)

    with pytest.raises(ApplicationError) as refused:
        await run(activities, invoice_id)

    message = "Account code '4100' is not a valid code for this document."
    assert refused.value.type == ACCOUNTING_VALIDATION_ERROR and refused.value.non_retryable
    assert message in str(refused.value)
    failed = sync_row(url, "invoice", invoice_id)
    assert failed.status == "sync_failed" and message in (failed.last_error or "")
    assert state.invoices == {}

    state.add_account("4100", "Licence revenue")  # the accountant fixes the chart of accounts
    result = await run(activities, invoice_id)

    assert result.status == "synced"
    assert {i["AccountCode"] for i in state.invoices[result.external_id]["LineItems"]} == {"4100"}
    fixed = sync_row(url, "invoice", invoice_id)
    assert (fixed.status, fixed.last_error) == ("synced", None)
    await activities.aclose()


async def test_unmapped_tax_rate_fails_without_calling_xero(
    activities: AccountingActivities, settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    invoice_id = issued_invoice(
        settings.require_database_url(),
        [
            LineInput(description="Support", quantity=D("1"), unit_price=D("10.00"), tax_rate=D("7")),
        ],
    )
    with pytest.raises(ApplicationError, match="no xero tax code for 7 %") as refused:
        await run(activities, invoice_id)
    assert refused.value.non_retryable
    assert state.calls == []
    assert sync_row(settings.require_database_url(), "invoice", invoice_id).status == "sync_failed"


async def test_expired_token_is_refreshed_saved_encrypted_and_used_by_the_retry(
    activities: AccountingActivities, settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    url = settings.require_database_url()
    invoice_id = issued_invoice(url)
    state.expire_token(TOKEN)  # revoked at Xero although our expires_at says an hour is left

    with pytest.raises(ApplicationError) as first:
        await run(activities, invoice_id)

    assert first.value.type == "AccountingAuthExpired" and not first.value.non_retryable
    assert state.oauth.token_calls() == 1 and state.oauth.requests[0]["refresh_token"] == "rt-1"
    (rotated,) = state.oauth.refresh_tokens
    result = await run(activities, invoice_id)
    assert result.status == "synced" and len(state.invoices) == 1
    new_access = state.core.calls[-1].headers["authorization"].removeprefix("Bearer ")
    assert new_access != TOKEN
    cipher = token_cipher(settings)
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        access, refresh, whole = conn.execute(
            "select access_token, refresh_token, row_to_json(c)::text from accounting_connections c "
            "where tenant_id = %s",
            (state.tenant_id,),
        ).fetchone()
    assert cipher.decrypt(bytes(refresh)).decode() == rotated
    assert cipher.decrypt(bytes(access)).decode() == new_access
    for secret in (rotated, new_access):
        assert secret.encode() not in bytes(access) + bytes(refresh) and secret not in whole
    assert state.oauth.token_calls() == 1


async def test_rate_limit_asks_temporal_to_wait_retry_after(
    settings: Settings, xero: tuple[XeroState, ServedApp]
) -> None:
    state, _ = xero
    activities = AccountingActivities(settings)
    invoice_id = issued_invoice(settings.require_database_url())
    state.faults.inject_429(1, retry_after=45)  # longer than the connector waits inline
    with pytest.raises(ApplicationError) as limited:
        await run(activities, invoice_id)
    assert limited.value.type == "AccountingRateLimited" and not limited.value.non_retryable
    assert limited.value.next_retry_delay == timedelta(seconds=45)
    await activities.aclose()


async def test_no_provider_configured_is_skipped(make_settings: MakeSettings) -> None:
    activities = AccountingActivities(make_settings())
    result = await run(activities, uuid.uuid4())
    assert result.status == "skipped"


async def test_reconcile_finds_an_invoice_altered_at_xero(
    activities: AccountingActivities,
    settings: Settings,
    xero: tuple[XeroState, ServedApp],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state, _ = xero
    url = settings.require_database_url()
    first, second = issued_invoice(url), issued_invoice(url)
    synced = [await run(activities, invoice_id) for invoice_id in (first, second)]
    payment_id = pay(url, second, "100.00", "WIRE-9")
    await run(activities, second, AccountingAction.PAYMENT, payment_id)

    assert await reconcile(settings) == []

    with state.core.lock:  # someone edits the first invoice in Xero
        stored = state.invoices[synced[0].external_id]
        stored["LineItems"][1]["Description"] = "Hosting (July)"
        stored["Total"] += 1
    with session_scope(url) as session:  # and a payment is recorded here but never reaches Xero
        invoice = repo.get_invoice(session, second)
        session.add(
            Payment(
                invoice_id=second,
                idempotency_key=f"manual-{uuid.uuid4()}",
                amount=D("50.00"),
                currency="USD",
                received_at=datetime.now(UTC),
            )
        )
        invoice.amount_paid += D("50.00")
        number = invoice.number

    differences = sorted(
        await reconcile(settings), key=lambda d: [str(first), str(second)].index(d.invoice_id)
    )

    assert [(d.invoice_id, d.external_id) for d in differences] == [
        (str(first), synced[0].external_id),
        (str(second), synced[1].external_id),
    ]
    assert differences[0].problems == (
        "total: ours 2366.04, theirs 2367.04",
        "lines[1].description: ours Hosting, theirs Hosting (July)",
    )
    assert differences[1].problems == ("amount paid: ours 150.00, theirs 100.00",)
    assert differences[1].number == number

    from api.main import create_app

    app = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:1"}))
    with TestClient(app) as client:
        assert client.get("/accounting/reconcile").status_code == 401
        response = client.get("/accounting/reconcile", headers={"Authorization": "Bearer test-token"})
    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "xero"
    by_invoice = {d["invoice_id"]: d["problems"] for d in body["differences"]}
    assert by_invoice == {
        str(first): list(differences[0].problems),
        str(second): list(differences[1].problems),
    }

    from invoiceflow import cli

    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    # `invoiceflow reconcile` runs its own event loop, so it runs on a thread here (this test is on one).
    result = await asyncio.to_thread(CliRunner().invoke, cli.app, ["reconcile"])
    assert result.exit_code == 1, result.output
    assert f"{number} (invoice {second}, xero {synced[1].external_id}):" in result.output
    assert "  - amount paid: ours 150.00, theirs 100.00" in result.output
    assert "  - lines[1].description: ours Hosting, theirs Hosting (July)" in result.output
