"""XeroConnector against the Xero stand-in over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from accounting.base import AccountingPayment, RemoteState, SyncStatus, drift
from accounting.errors import AccessDenied, AuthExpired, RateLimited, Transient, ValidationFailed
from accounting.http import HttpSettings
from accounting.mapping import LineSpec
from accounting.ratelimit import XERO_POLICY, RateLimitPolicy, TenantLimiter
from accounting.xero import XeroConnector
from standins.accounting.common import Quota, RecordedCall
from standins.accounting.xero import PREFIX, XeroState, create_xero_app
from standins.server import ServedApp, serve
from tests.accounting.helpers import customer, invoice
from tests.accounting.xero_schema import validate_calls

D = Decimal
TOKEN = "xero-token"


@pytest.fixture
def state() -> XeroState:
    return XeroState(tenant_id="tenant-1", tokens={TOKEN})


@pytest.fixture
def served(state: XeroState) -> Iterator[ServedApp]:
    app, _ = create_xero_app(state)
    with serve(app) as running:
        yield running


def connector(served: ServedApp, **overrides: object) -> XeroConnector:
    options: dict[str, object] = {
        "tenant_id": "tenant-1",
        "token_provider": lambda: TOKEN,
        "base_url": served.base_url + PREFIX,
        "limiter": TenantLimiter(XERO_POLICY),
        "settings": HttpSettings(timeout_s=5.0),
    }
    options.update(overrides)
    return XeroConnector(**options)  # type: ignore[arg-type]


@pytest.fixture
async def xero(served: ServedApp) -> AsyncIterator[XeroConnector]:
    client = connector(served)
    yield client
    await client.aclose()


def writes(state: XeroState) -> list[RecordedCall]:
    return [c for c in state.calls if c.method in ("PUT", "POST")]


async def test_invoice_lifecycle_matches_ours_and_the_spec(xero: XeroConnector, state: XeroState) -> None:
    ours = invoice("INV-1042")
    contact = await xero.ensure_customer(ours.customer, idempotency_key="cus_1:create")
    assert contact.status == SyncStatus.CREATED
    again = await xero.ensure_customer(ours.customer, idempotency_key="cus_1:create")
    assert (again.status, again.external_id) == (SyncStatus.EXISTING, contact.external_id)  # by ContactNumber

    mine = replace(ours, customer=replace(ours.customer, external_id=contact.external_id))
    created = await xero.upsert_invoice(mine, idempotency_key="inv_INV-1042:create:r1")
    assert (created.status, created.remote_status) == (SyncStatus.CREATED, "AUTHORISED")

    remote = await xero.fetch_invoice(created.external_id)
    assert drift(ours, remote) == []
    assert (remote.subtotal, remote.tax, remote.total) == (D("1975.99"), D("390.00"), D("2365.99"))
    assert [line.tax_amount for line in remote.lines] == [line.tax_amount for line in ours.lines]
    assert [line.account_code for line in remote.lines] == ["200", "200", "200"]
    assert remote.state == RemoteState.OPEN

    partial = AccountingPayment("pay_1", created.external_id, D("1000.00"), date(2024, 6, 12), "pi_1", "USD")
    await xero.record_payment(partial, idempotency_key="pay_1")
    assert (await xero.fetch_invoice(created.external_id)).state == RemoteState.PARTIALLY_PAID
    rest = AccountingPayment("pay_2", created.external_id, D("1365.99"), date(2024, 6, 13), "pi_2", "USD")
    paid = await xero.record_payment(rest, idempotency_key="pay_2")
    assert (paid.status, paid.remote_status) == (SyncStatus.RECORDED, "PAID")
    remote = await xero.fetch_invoice(created.external_id)
    assert (remote.state, remote.amount_paid, remote.amount_due) == (
        RemoteState.PAID,
        D("2365.99"),
        D("0.00"),
    )

    with pytest.raises(ValidationFailed, match="has a payment"):  # Xero will not void a paid invoice
        await xero.void_invoice(created.external_id, idempotency_key="inv_INV-1042:void")

    other = await xero.upsert_invoice(
        invoice("INV-1043", who=mine.customer), idempotency_key="inv_1043:create"
    )
    voided = await xero.void_invoice(other.external_id, idempotency_key="inv_1043:void")
    assert (voided.status, voided.remote_status) == (SyncStatus.VOIDED, "VOIDED")
    assert (await xero.fetch_invoice(other.external_id)).state == RemoteState.VOIDED
    again_void = await xero.void_invoice(other.external_id, idempotency_key="inv_1043:void:2")
    assert again_void.status == SyncStatus.EXISTING

    assert len(state.contacts) == 1 and len(state.invoices) == 2 and len(state.payments) == 2
    for call in state.calls:
        assert call.headers["authorization"] == f"Bearer {TOKEN}"
        assert call.headers["xero-tenant-id"] == "tenant-1"
    for call in writes(state):
        assert call.headers.get("idempotency-key"), f"{call.method} {call.path} has no Idempotency-Key"
    assert b'"UnitAmount":0.3333' in state.core.calls_to("PUT", "/Invoices")[0].body  # exact, never a float
    assert validate_calls(state.calls) >= 12


async def test_retry_after_commit_then_timeout_creates_no_duplicate(
    served: ServedApp, state: XeroState
) -> None:
    xero = connector(served)
    impatient = connector(served, settings=HttpSettings(timeout_s=0.5))  # gives up on the hang
    ours = invoice("INV-2000")
    await xero.ensure_customer(ours.customer, idempotency_key="cus_1")
    state.faults.commit_then_hang(1.2)
    with pytest.raises(Transient, match="timed out"):
        await impatient.upsert_invoice(ours, idempotency_key="inv_2000:create:r1")
    assert len(state.invoices) == 1  # the write happened; only its answer was lost

    retried = await xero.upsert_invoice(ours, idempotency_key="inv_2000:create:r1")
    assert retried.external_id == next(iter(state.invoices))
    assert state.core.calls_to("PUT", "/Invoices")[-1].replayed  # the stored answer, not a second invoice

    # Past Xero's 6-minute key window (a new key): the unique InvoiceNumber finds it and updates it.
    later = await xero.upsert_invoice(ours, idempotency_key="inv_2000:create:r1:after-window")
    assert (later.status, later.external_id) == (SyncStatus.UPDATED, retried.external_id)
    assert len(state.invoices) == 1

    state.faults.commit_then_hang(1.2)
    payment = AccountingPayment("pay_9", retried.external_id, D("100.00"), date(2024, 6, 12), "pi_9", "USD")
    with pytest.raises(Transient):
        await impatient.record_payment(payment, idempotency_key="pay_9")
    again = await xero.record_payment(payment, idempotency_key="pay_9")
    assert again.status == SyncStatus.EXISTING and len(state.payments) == 1
    await xero.aclose()
    await impatient.aclose()


async def test_a_reused_key_with_another_body_is_refused(xero: XeroConnector, state: XeroState) -> None:
    ours = invoice("INV-2100")
    await xero.upsert_invoice(ours, idempotency_key="same-key")
    with pytest.raises(ValidationFailed, match="different request"):
        await xero.upsert_invoice(invoice("INV-2101", who=ours.customer), idempotency_key="same-key")


async def test_429_storm_honours_retry_after(served: ServedApp, state: XeroState) -> None:
    xero = connector(served)
    who = customer()
    contact = await xero.ensure_customer(who, idempotency_key="cus_1")
    before = len(state.calls)
    state.faults.inject_429(2, retry_after=1)
    started = time.monotonic()
    created = await xero.upsert_invoice(
        invoice("INV-3000", who=replace(who, external_id=contact.external_id)), idempotency_key="k3000"
    )
    assert time.monotonic() - started >= 2.0  # two "Retry-After: 1" honoured
    assert created.status == SyncStatus.CREATED
    storm = state.calls[before:]
    assert [c.status for c in storm] == [429, 429, 200]
    assert all(c.headers["idempotency-key"] == "k3000" for c in storm)  # the retry is the same request
    assert len(state.invoices) == 1
    await xero.aclose()


async def test_429_beyond_the_inline_budget_raises_rate_limited(served: ServedApp, state: XeroState) -> None:
    xero = connector(served, settings=HttpSettings(max_rate_limit_retries=0))
    state.faults.inject_429(1, retry_after=7)
    with pytest.raises(RateLimited) as raised:
        await xero.ensure_customer(customer(), idempotency_key="k")
    assert (raised.value.retry_after_seconds, raised.value.problem) == (7.0, "minute")
    await xero.aclose()


async def test_unknown_account_and_tax_codes_fail_then_pass_once_added(
    xero: XeroConnector, state: XeroState
) -> None:
    lines = [
        LineSpec("Licences", D("2"), D("50.00"), D("20"), "4100", "OUTPUT2"),
        LineSpec("Support", D("1"), D("10.00"), D("5"), "200", "REDUCED5"),
    ]
    ours = invoice("INV-4000", lines=lines)
    with pytest.raises(ValidationFailed) as raised:
        await xero.upsert_invoice(ours, idempotency_key="inv_4000:create:r1")
    assert raised.value.provider_message == (
        "Account code '4100' is not a valid code for this document.; The TaxType code 'REDUCED5' does not "
        "exist or cannot be used for this type of transaction."
    )
    assert not raised.value.retryable and state.invoices == {}
    state.add_account("4100", "Licence revenue")
    state.add_tax_rate("REDUCED5", D("5"))
    created = await xero.upsert_invoice(ours, idempotency_key="inv_4000:create:r1")
    assert created.status == SyncStatus.CREATED
    assert drift(ours, await xero.fetch_invoice(created.external_id)) == []
    validate_calls(state.calls)  # the 400 body is Xero's Error schema


async def test_expired_token_and_wrong_tenant(served: ServedApp, state: XeroState) -> None:
    state.expire_token(TOKEN)
    xero = connector(served)
    with pytest.raises(AuthExpired, match="TokenExpired"):
        await xero.ensure_customer(customer(), idempotency_key="k")
    state.core.tokens.issue("fresh")
    stranger = connector(served, tenant_id="someone-else", token_provider=lambda: "fresh")
    with pytest.raises(AccessDenied):
        await stranger.ensure_customer(customer(), idempotency_key="k")
    assert state.contacts == {}
    await xero.aclose()
    await stranger.aclose()


async def test_drift_is_reported(xero: XeroConnector, state: XeroState) -> None:
    ours = invoice("INV-5000")
    created = await xero.upsert_invoice(ours, idempotency_key="k5000")
    with state.core.lock:  # someone edits the invoice in Xero
        stored = state.invoices[created.external_id]
        stored["LineItems"][0]["Description"] = "Consulting, July"
        stored["Total"] = stored["Total"] + 1
    problems = drift(ours, await xero.fetch_invoice(created.external_id))
    assert problems == [
        "total: ours 2365.99, theirs 2366.99",
        "lines[0].description: ours Consulting, June, theirs Consulting, July",
    ]


async def test_limiter_keeps_100_concurrent_syncs_under_the_quota() -> None:
    """A billing run: 100 invoices at once against 25 calls per 0.5 s and 5 concurrent (Xero's 60/min and
    5 concurrent, scaled down for speed): all land, and the stand-in never answers 429."""
    state = XeroState(tenant_id="tenant-1", tokens={TOKEN}, quota=Quota(25, 0.5, 5))
    app, _ = create_xero_app(state)
    policy = RateLimitPolicy(windows=((25, 0.5),), max_concurrent=5, margin_s=0.05)
    with serve(app) as served:
        xero = connector(served, limiter=TenantLimiter(policy))
        who = customer()
        contact = await xero.ensure_customer(who, idempotency_key="cus")
        who = replace(who, external_id=contact.external_id)
        results = await asyncio.gather(
            *(
                xero.upsert_invoice(invoice(f"INV-{n:04d}", who=who), idempotency_key=f"inv_{n}:create:r1")
                for n in range(100)
            )
        )
        await xero.aclose()
    assert {r.status for r in results} == {SyncStatus.CREATED}
    assert len(state.invoices) == 100
    rejected, peak = state.core.traffic.rejected, state.core.traffic.max_in_flight
    assert (rejected, peak <= 5) == (0, True)


async def test_outage_is_transient_then_clears(xero: XeroConnector, state: XeroState) -> None:
    state.faults.unavailable_for(0.4)
    with pytest.raises(Transient) as raised:
        await xero.ensure_customer(customer(), idempotency_key="cus")
    assert raised.value.status_code == 503 and raised.value.retryable
    await asyncio.sleep(0.4)
    assert (await xero.ensure_customer(customer(), idempotency_key="cus")).status == SyncStatus.CREATED


async def test_concurrency_429_without_retry_after_waits_briefly(served: ServedApp, state: XeroState) -> None:
    """Past Xero's 5 concurrent calls the 429 has no Retry-After; the connector waits a second (not the
    60 s fallback) and gets through."""
    xero = connector(served, limiter=TenantLimiter(RateLimitPolicy(windows=((100, 1.0),), max_concurrent=8)))
    state.core.traffic.quota = Quota(per_window=100, window_s=1.0, concurrent=1)
    state.faults.commit_then_hang(0.3, count=1)
    started = time.monotonic()
    results = await asyncio.gather(
        *(xero.ensure_customer(customer(str(n)), idempotency_key=f"cus_{n}") for n in range(3))
    )
    assert {r.status for r in results} == {SyncStatus.CREATED}
    assert time.monotonic() - started < 10
    assert any(b"concurrent" in c.response for c in state.calls if c.status == 429)
    await xero.aclose()
