"""QboConnector against the QuickBooks Online stand-in over real HTTP on loopback."""

from __future__ import annotations

import asyncio
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
from accounting.errors import AuthExpired, RateLimited, StaleObject, Transient, ValidationFailed
from accounting.http import HttpSettings
from accounting.mapping import LineSpec
from accounting.qbo import QboConnector
from accounting.ratelimit import QBO_POLICY, RateLimitPolicy, TenantLimiter
from standins.accounting.common import Quota
from standins.accounting.qbo import QboState, create_qbo_app
from standins.server import ServedApp, serve
from tests.accounting.helpers import customer
from tests.accounting.helpers import invoice as base_invoice

D = Decimal
TOKEN = "qbo-token"
REALM = "9130350000000001"


def invoice(number: str = "INV-1042", **kwargs: object) -> AccountingInvoice:
    """QBO lines reference Items ("1" = Services) and TaxCodes (TAX at 8.875 %, NON)."""
    lines = kwargs.pop("lines", None) or [
        LineSpec("Consulting, June", D("12.5"), D("150.00"), D("8.875"), "1", "TAX"),
        LineSpec("Hosting", D("1"), D("99.99"), D("8.875"), "1", "TAX"),
        LineSpec("Printing", D("3"), D("0.3333"), D("0"), "1", "NON"),
    ]
    return base_invoice(number, lines=lines, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def state() -> QboState:
    return QboState(realm_id=REALM, tokens={TOKEN})


@pytest.fixture
def served(state: QboState) -> Iterator[ServedApp]:
    app, _ = create_qbo_app(state)
    with serve(app) as running:
        yield running


def connector(served: ServedApp, **overrides: object) -> QboConnector:
    options: dict[str, object] = {
        "realm_id": REALM,
        "token_provider": lambda: TOKEN,
        "base_url": served.base_url,
        "limiter": TenantLimiter(QBO_POLICY),
        "settings": HttpSettings(timeout_s=5.0),
    }
    options.update(overrides)
    return QboConnector(**options)  # type: ignore[arg-type]


@pytest.fixture
async def qbo(served: ServedApp) -> AsyncIterator[QboConnector]:
    client = connector(served)
    yield client
    await client.aclose()


async def test_invoice_lifecycle(qbo: QboConnector, state: QboState) -> None:
    ours = invoice()
    created = await qbo.upsert_invoice(ours, idempotency_key="inv_1042:create:r1")  # customer made on the way
    assert (created.status, created.version) == (SyncStatus.CREATED, "0")
    remote = await qbo.fetch_invoice(created.external_id)
    assert drift(ours, remote) == []
    assert (remote.subtotal, remote.tax, remote.total) == (D("1975.99"), D("175.28"), D("2151.27"))
    assert [(l.account_code, l.tax_code) for l in remote.lines] == [("1", "TAX"), ("1", "TAX"), ("1", "NON")]

    customer_id = state.invoices[created.external_id]["CustomerRef"]["value"]
    payment = AccountingPayment(
        "pay_1", created.external_id, D("2151.27"), date(2024, 6, 12), "pi_3QabcdefghijklmnopqrstuvW", "USD"
    )  # longer than PaymentRefNum allows
    paid = await qbo.record_payment(payment, idempotency_key="pay_1")
    assert paid.status == SyncStatus.RECORDED
    stored = state.payments[paid.external_id]
    assert (
        stored["CustomerRef"]["value"] == customer_id and stored["PaymentRefNum"] == "pi_3Qabcdefghijklmnop"
    )  # 21 chars
    assert "pi_3QabcdefghijklmnopqrstuvW" in stored["PrivateNote"]
    assert (await qbo.fetch_invoice(created.external_id)).state == RemoteState.PAID

    second = await qbo.upsert_invoice(
        invoice("INV-1043", who=customer()), idempotency_key="inv_1043:create:r1"
    )
    assert len(state.customers) == 1  # found by DisplayName the second time
    voided = await qbo.void_invoice(second.external_id, idempotency_key="inv_1043:void")
    assert voided.status == SyncStatus.VOIDED
    remote = await qbo.fetch_invoice(second.external_id)
    assert (remote.state, remote.total) == (RemoteState.VOIDED, D("0"))
    assert (await qbo.void_invoice(second.external_id, idempotency_key="x")).status == SyncStatus.EXISTING

    assert (len(state.invoices), len(state.payments)) == (2, 1)
    for call in state.calls:
        assert call.query.get("minorversion") == "75"
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        if call.method == "POST":
            assert 0 < len(call.query["requestid"]) <= 50
    create = state.core.calls_to("POST", "/invoice")[0].json()
    assert create["Line"][2]["SalesItemLineDetail"]["UnitPrice"] == D("0.3333")
    assert b'"TotalTax":175.28' in state.core.calls_to("POST", "/invoice")[0].body


async def test_update_replaces_lines_and_moves_the_sync_token(qbo: QboConnector, state: QboState) -> None:
    ours = invoice()
    created = await qbo.upsert_invoice(ours, idempotency_key="k1")
    revised = invoice(
        lines=[
            LineSpec("Consulting, June and July", D("25"), D("150.00"), D("8.875"), "1", "TAX"),
            LineSpec("Hosting", D("1"), D("99.99"), D("8.875"), "1", "TAX"),
        ]
    )
    updated = await qbo.upsert_invoice(revised, idempotency_key="k2", external_id=created.external_id)
    assert (updated.status, updated.version) == (SyncStatus.UPDATED, "1")
    remote = await qbo.fetch_invoice(created.external_id)
    assert drift(revised, remote) == [] and len(remote.lines) == 2
    assert (remote.subtotal, remote.tax, remote.total) == (D("3849.99"), D("341.69"), D("4191.68"))


async def test_stale_sync_token_is_reread_and_retried(qbo: QboConnector, state: QboState) -> None:
    ours = invoice()
    created = await qbo.upsert_invoice(ours, idempotency_key="k1")
    state.stale_next = 1  # someone saves the invoice in QBO between our read and our write
    updated = await qbo.upsert_invoice(ours, idempotency_key="inv:update:r2", external_id=created.external_id)
    assert updated.status == SyncStatus.UPDATED
    posts = state.core.calls_to("POST", "/invoice")[1:]
    assert [p.status for p in posts] == [400, 200]
    assert b'"code":"5010"' in posts[0].response
    assert posts[0].query["requestid"] != posts[1].query["requestid"]  # a replay would repeat the 5010
    assert state.invoices[created.external_id]["SyncToken"] == "2"

    state.stale_next = 10
    with pytest.raises(StaleObject):
        await qbo.upsert_invoice(ours, idempotency_key="inv:update:r3", external_id=created.external_id)


async def test_retry_after_commit_then_timeout_replays(served: ServedApp, state: QboState) -> None:
    qbo = connector(served)
    impatient = connector(served, settings=HttpSettings(timeout_s=0.5))  # gives up on the hang
    ours = invoice()
    await qbo.ensure_customer(ours.customer, idempotency_key="cus")
    who = replace(ours.customer, external_id=next(iter(state.customers)))
    ours = replace(ours, customer=who)
    state.faults.commit_then_hang(1.2)
    with pytest.raises(Transient):
        await impatient.upsert_invoice(ours, idempotency_key="inv_1042:create:r1")
    assert len(state.invoices) == 1
    # The retry finds the invoice by DocNumber and updates it; same result, still one invoice.
    again = await qbo.upsert_invoice(ours, idempotency_key="inv_1042:create:r1")
    assert again.external_id == next(iter(state.invoices)) and len(state.invoices) == 1

    state.faults.commit_then_hang(1.2)
    payment = AccountingPayment(
        "pay_1",
        again.external_id,
        D("10.00"),
        date(2024, 6, 12),
        "pi_1",
        "USD",
        customer_external_id=who.external_id,
    )
    with pytest.raises(Transient):
        await impatient.record_payment(payment, idempotency_key="pay_1")
    replayed = await qbo.record_payment(payment, idempotency_key="pay_1")  # same requestid
    assert len(state.payments) == 1 and replayed.external_id == next(iter(state.payments))
    assert state.core.calls_to("POST", "/payment")[-1].replayed
    await qbo.aclose()
    await impatient.aclose()


async def test_throttle_without_retry_after_uses_the_fallback(served: ServedApp, state: QboState) -> None:
    qbo = connector(served, settings=HttpSettings(rate_limit_fallback_s=0.3, max_rate_limit_retries=2))
    state.faults.inject_429(2, retry_after=None)
    started = time.monotonic()
    result = await qbo.ensure_customer(customer(), idempotency_key="cus")
    assert result.status == SyncStatus.CREATED and time.monotonic() - started >= 0.6
    limited = [c for c in state.calls if c.status == 429]
    assert len(limited) == 2 and b"ThrottleExceeded" in limited[0].response
    state.faults.inject_429(3, retry_after=None)
    with pytest.raises(RateLimited) as raised:
        await qbo.ensure_customer(customer("2"), idempotency_key="cus2")
    assert raised.value.retry_after_seconds == 0.3
    await qbo.aclose()


async def test_unknown_item_fails_then_passes_once_added(qbo: QboConnector, state: QboState) -> None:
    lines = [LineSpec("Licences", D("2"), D("50.00"), D("0"), "LIC", "NON")]
    ours = invoice("INV-7", lines=lines)
    with pytest.raises(ValidationFailed) as raised:
        await qbo.upsert_invoice(ours, idempotency_key="inv_7:create:r1")
    assert raised.value.code == "2500" and "Invalid Reference Id" in raised.value.provider_message
    assert "Item LIC" in raised.value.provider_message and not state.invoices
    state.add_item("LIC", "Licences")
    created = await qbo.upsert_invoice(ours, idempotency_key="inv_7:create:r1")
    assert created.status == SyncStatus.CREATED


async def test_item_mapping_and_amount_check(served: ServedApp, state: QboState) -> None:
    state.add_item("17", "Consulting")
    qbo = connector(served, item_refs={"4000": "17"})
    ours = invoice("INV-8", lines=[LineSpec("Consulting", D("2"), D("100.00"), D("0"), "4000", "NON")])
    created = await qbo.upsert_invoice(ours, idempotency_key="k8")
    line = state.invoices[created.external_id]["Line"][0]
    assert line["SalesItemLineDetail"]["ItemRef"]["value"] == "17"
    assert (await qbo.fetch_invoice(created.external_id)).lines[0].account_code == "4000"
    wrong = replace(ours, number="INV-9", lines=(replace(ours.lines[0], line_amount=D("199.99")),))
    with pytest.raises(ValidationFailed, match="Amount is not equal to UnitPrice \\* Qty"):
        await qbo.upsert_invoice(wrong, idempotency_key="k9")
    await qbo.aclose()


async def test_expired_token(served: ServedApp, state: QboState) -> None:
    state.expire_token(TOKEN)
    qbo = connector(served)
    with pytest.raises(AuthExpired, match="AuthenticationFailed"):
        await qbo.ensure_customer(customer(), idempotency_key="k")
    await qbo.aclose()


async def test_limiter_keeps_100_concurrent_syncs_under_the_quota() -> None:
    """100 invoices at once (a DocNumber query and a create each) against 50 calls per 0.5 s and 10
    concurrent (QBO's 500/min and 10 concurrent, scaled down): no 429s."""
    state = QboState(realm_id=REALM, tokens={TOKEN}, quota=Quota(50, 0.5, 10))
    app, _ = create_qbo_app(state)
    policy = RateLimitPolicy(windows=((50, 0.5),), max_concurrent=10)
    with serve(app) as served:
        qbo = connector(served, limiter=TenantLimiter(policy))
        who = customer()
        made = await qbo.ensure_customer(who, idempotency_key="cus")
        who = replace(who, external_id=made.external_id)
        results = await asyncio.gather(
            *(
                qbo.upsert_invoice(invoice(f"INV-{n:04d}", who=who), idempotency_key=f"inv_{n}:create:r1")
                for n in range(100)
            )
        )
        await qbo.aclose()
    assert {r.status for r in results} == {SyncStatus.CREATED} and len(state.invoices) == 100
    rejected, peak = state.core.traffic.rejected, state.core.traffic.max_in_flight
    assert (rejected, peak <= 10) == (0, True)


async def test_outage_is_transient(qbo: QboConnector, state: QboState) -> None:
    state.faults.unavailable_for(0.4)
    with pytest.raises(Transient) as raised:
        await qbo.ensure_customer(customer(), idempotency_key="cus")
    assert raised.value.status_code == 503 and state.customers == {}


def credit_note(
    number: str,
    invoice_external_id: str,
    ours: AccountingInvoice,
    allocate: Decimal | None = None,
) -> AccountingCreditNote:
    """Two and a half days of consulting credited (375.00 + 8.875 % = 408.28)."""
    doc = replace(
        invoice(
            number,
            who=ours.customer,
            lines=[LineSpec("Consulting not delivered", D("2.5"), D("150.00"), D("8.875"), "1", "TAX")],
        ),
        reference=ours.number,
    )
    return AccountingCreditNote(
        f"cn_{number}", invoice_external_id, doc, doc.totals.total if allocate is None else allocate
    )


async def test_credit_memo_once_applied_to_its_invoice_through_timeouts(
    served: ServedApp, state: QboState
) -> None:
    qbo = connector(served)
    impatient = connector(served, settings=HttpSettings(timeout_s=0.5))  # gives up on the hang
    ours = invoice()
    created = await qbo.upsert_invoice(ours, idempotency_key="inv_1042:create:r1")
    ours = replace(
        ours,
        customer=replace(
            ours.customer, external_id=state.invoices[created.external_id]["CustomerRef"]["value"]
        ),
    )
    note = credit_note("CN-2024-000001", created.external_id, ours)
    assert note.document.totals.total == D("408.28")

    state.faults.commit_then_hang(1.2, count=2)  # the memo commits, then the application commits
    with pytest.raises(Transient):
        await impatient.record_credit_note(note, idempotency_key="credit_note:cn_1")
    with pytest.raises(Transient):  # found by DocNumber, not created again; the application hangs
        await impatient.record_credit_note(note, idempotency_key="credit_note:cn_1")
    again = await qbo.record_credit_note(note, idempotency_key="credit_note:cn_1")
    [memo] = state.credit_memos.values()
    assert (again.external_id, again.status, again.remote_status) == (
        memo["Id"],
        SyncStatus.EXISTING,
        "Applied",
    )
    assert memo["DocNumber"] == "CN-2024-000001" and memo["CustomerRef"]["value"] == ours.customer.external_id
    assert [
        (
            l["Description"],
            l["SalesItemLineDetail"]["Qty"],
            l["SalesItemLineDetail"]["UnitPrice"],
            l["Amount"],
        )
        for l in memo["Line"]
        if l["DetailType"] == "SalesItemLineDetail"
    ] == [("Consulting not delivered", D("2.5"), D("150.00"), D("375.00"))]
    assert (memo["TotalAmt"], memo["Balance"]) == (D("408.28"), D(0))
    [application] = state.payments.values()
    assert application["TotalAmt"] == 0 and [
        t["TxnType"] for l in application["Line"] for t in l["LinkedTxn"]
    ] == ["Invoice", "CreditMemo"]
    remote = await qbo.fetch_invoice(created.external_id)
    assert (remote.total, remote.amount_due) == (D("2151.27"), D("2151.27") - D("408.28"))
    assert remote.amount_paid == 0  # credit applied is not money received (reconcile compares money)

    # What is beyond the invoice's balance stays unapplied credit, as with us.
    rest = AccountingPayment(
        "pay_1",
        created.external_id,
        D("1600.00"),
        date(2024, 6, 12),
        "WIRE",
        "USD",
        customer_external_id=ours.customer.external_id,
    )
    await qbo.record_payment(rest, idempotency_key="pay_1")
    second = credit_note("CN-2024-000002", created.external_id, ours)
    result = await qbo.record_credit_note(second, idempotency_key="credit_note:cn_2")
    assert (result.status, result.remote_status) == (SyncStatus.CREATED, "Applied")
    memo2 = state.credit_memos[result.external_id]
    assert memo2["Balance"] == D("408.28") - D("142.99")  # 2151.27 − 408.28 − 1600.00 = 142.99 was due
    remote = await qbo.fetch_invoice(created.external_id)
    assert (remote.amount_due, remote.amount_paid, remote.state) == (0, D("1600.00"), RemoteState.PAID)
    assert len(state.credit_memos) == 2 and len(state.payments) == 3
    await qbo.aclose()
    await impatient.aclose()


async def test_credit_memo_with_nothing_to_apply_stays_credit(qbo: QboConnector, state: QboState) -> None:
    ours = invoice()
    created = await qbo.upsert_invoice(ours, idempotency_key="inv_1042:create:r1")
    note = credit_note("CN-2024-000009", created.external_id, ours, allocate=D(0))
    result = await qbo.record_credit_note(note, idempotency_key="credit_note:cn_9")
    assert (result.status, result.remote_status) == (SyncStatus.CREATED, "Unapplied")
    assert state.credit_memos[result.external_id]["Balance"] == D("408.28") and not state.payments
    assert state.core.calls_to("POST", "/creditmemo")[0].query["requestid"] == "credit_note:cn_9"
