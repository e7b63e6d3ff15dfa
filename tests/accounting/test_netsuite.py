"""The NetSuite connector against the NetSuite stand-in over real HTTP: M2M auth, eid upserts, the
customer payment applied to its invoice, voids, credit memos, the concurrency limit, 429 storms and
timeouts after the provider committed."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from decimal import Decimal

import httpx
import pytest

from accounting.base import AccountingCreditNote, AccountingPayment, RemoteState, SyncStatus, drift
from accounting.errors import Transient
from accounting.netsuite_auth import ASSERTION_TYPE, TOKEN_PATH, client_assertion
from accounting.netsuite_http import RECORD
from accounting.tokens import ConnectionProblem
from tests.accounting import netsuite_support
from tests.accounting.netsuite_support import NetSuite, invoice, keys

D = Decimal
netsuite = netsuite_support.netsuite  # the fixture


def payment(invoice_id: str, amount: str, *, customer_id: str | None = None) -> AccountingPayment:
    return AccountingPayment(
        payment_id=str(uuid.uuid4()),
        invoice_external_id=invoice_id,
        amount=D(amount),
        date=date(2026, 6, 12),
        reference="WIRE-778",
        currency="USD",
        customer_external_id=customer_id,
    )


async def test_customer_invoice_and_payment_land_once_with_our_totals(netsuite: NetSuite) -> None:
    books = netsuite.state.books
    connector = netsuite.connector()
    try:
        ours = invoice()
        created = await connector.ensure_customer(ours.customer, idempotency_key="c1")
        assert created.status == SyncStatus.CREATED
        again = await connector.ensure_customer(ours.customer, idempotency_key="c1")
        assert (again.status, again.external_id) == (SyncStatus.EXISTING, created.external_id)
        synced = await connector.upsert_invoice(ours, idempotency_key="i1")
        replayed = await connector.upsert_invoice(ours, idempotency_key="i1", external_id=synced.external_id)
        assert replayed.external_id == synced.external_id
        assert len(books.records["customer"]) == 1 and len(books.records["invoice"]) == 1
        theirs = await connector.fetch_invoice(synced.external_id)
        assert drift(ours, theirs) == []
        assert (theirs.subtotal, theirs.tax, theirs.total) == (D("1975.99"), D("394.00"), D("2369.99"))
        assert theirs.currency == "USD" and theirs.state == RemoteState.OPEN
        assert [line.tax_amount for line in theirs.lines] == [D("375.00"), D("19.00"), D("0.00")]

        paid = payment(synced.external_id, "1000.00")
        first = await connector.record_payment(paid, idempotency_key=f"payment:{paid.payment_id}")
        second = await connector.record_payment(paid, idempotency_key=f"payment:{paid.payment_id}")
        assert first.external_id == second.external_id and second.status == SyncStatus.EXISTING
        rest = payment(synced.external_id, "1369.99", customer_id=created.external_id)
        await connector.record_payment(rest, idempotency_key=f"payment:{rest.payment_id}")
        assert len(books.records["customerpayment"]) == 2
        theirs = await connector.fetch_invoice(synced.external_id)
        assert (
            theirs.state == RemoteState.PAID and theirs.amount_paid == D("2369.99") and theirs.amount_due == 0
        )
        applied = [(a.invoice_id, a.amount) for a in books.applications]
        assert applied == [(synced.external_id, D("1000.00")), (synced.external_id, D("1369.99"))]
        # The money writes went asynchronously, under NetSuite's idempotency key.
        puts = netsuite.state.calls_to("PUT", "/customerpayment/eid:")
        assert puts and all(c.headers.get("prefer") == "respond-async" for c in puts)
        assert all(len(c.headers["x-netsuite-idempotency-key"]) == 36 for c in puts)
    finally:
        await connector.aclose()


async def test_a_reused_idempotency_key_follows_the_earlier_job(netsuite: NetSuite) -> None:
    connector = netsuite.connector()
    try:
        ours = invoice()
        synced = await connector.upsert_invoice(ours, idempotency_key="i")
        inv = netsuite.state.books.records["invoice"][synced.external_id]
        body = {
            "customer": {"id": inv["entity"]},
            "payment": "100.00",
            "apply": {"items": [{"doc": {"id": synced.external_id}, "apply": True, "amount": "100.00"}]},
        }
        await connector._upsert("customerpayment", "p-1", body, key="same")
        await connector._upsert("customerpayment", "p-1", body, key="same")  # a retry: not written again
        refused = [c for c in netsuite.state.calls if c.status == 400]
        assert len(refused) == 1 and b"IDEMPOTENCY_ERROR" in refused[0].response
        assert len(netsuite.state.books.applications) == 1
    finally:
        await connector.aclose()


async def test_a_429_storm_is_waited_out(netsuite: NetSuite) -> None:
    connector = netsuite.connector()
    try:
        netsuite.state.faults.inject_429(4, retry_after=1)
        synced = await connector.upsert_invoice(invoice(), idempotency_key="storm")
        statuses = [c.status for c in netsuite.state.calls]
        assert statuses.count(429) == 4
        assert len(netsuite.state.books.records["invoice"]) == 1
        body = next(c.response_json() for c in netsuite.state.calls if c.status == 429)
        assert body["status"] == 429
        assert body["o:errorDetails"][0]["o:errorCode"] == "SSS_REQUEST_LIMIT_EXCEEDED"
        assert (await connector.fetch_invoice(synced.external_id)).total == D("2369.99")
    finally:
        await connector.aclose()


async def test_the_account_concurrency_limit_is_respected_and_overruns_are_waited_out(
    netsuite: NetSuite,
) -> None:
    """Our cap (5) is above the account's (3, say another integration holds slots): the stand-in refuses
    the overflow with 429 and every read still succeeds; with our cap at the account's, none is refused."""
    loose = netsuite.connector(concurrency=5)
    try:
        synced = await loose.upsert_invoice(invoice(), idempotency_key="c")
        reads = await asyncio.gather(*(loose.fetch_invoice(synced.external_id) for _ in range(12)))
        assert {r.total for r in reads} == {D("2369.99")}
        assert netsuite.state.core.traffic.max_in_flight <= 3
    finally:
        await loose.aclose()
    tight = netsuite.connector(concurrency=3)
    before = len([c for c in netsuite.state.calls if c.status == 429])
    try:
        await asyncio.gather(*(tight.fetch_invoice(synced.external_id) for _ in range(12)))
    finally:
        await tight.aclose()
    assert len([c for c in netsuite.state.calls if c.status == 429]) == before


async def test_a_timeout_after_netsuite_committed_gives_one_invoice_and_one_payment(
    netsuite: NetSuite,
) -> None:
    connector = netsuite.connector(timeout_s=1.0)
    books = netsuite.state.books
    try:
        ours = invoice()
        await connector.ensure_customer(ours.customer, idempotency_key="c")
        netsuite.state.faults.commit_then_hang(2.0)
        with pytest.raises(Transient):
            await connector.upsert_invoice(ours, idempotency_key="i")
        assert len(books.records["invoice"]) == 1  # it committed
        synced = await connector.upsert_invoice(ours, idempotency_key="i")  # the retry
        assert len(books.records["invoice"]) == 1
        paid = payment(synced.external_id, "2369.99")
        netsuite.state.faults.commit_then_hang(2.0)
        with pytest.raises(Transient):
            await connector.record_payment(paid, idempotency_key=f"payment:{paid.payment_id}")
        again = await connector.record_payment(paid, idempotency_key=f"payment:{paid.payment_id}")
        assert again.status == SyncStatus.EXISTING
        assert len(books.records["customerpayment"]) == 1 and len(books.applications) == 1
        assert (await connector.fetch_invoice(synced.external_id)).state == RemoteState.PAID
    finally:
        await connector.aclose()


async def test_void_and_credit_memo(netsuite: NetSuite) -> None:
    connector = netsuite.connector()
    try:
        ours = invoice()
        synced = await connector.upsert_invoice(ours, idempotency_key="i")
        note = AccountingCreditNote(
            credit_note_id=str(uuid.uuid4()),
            invoice_external_id=synced.external_id,
            document=invoice(f"CN-{uuid.uuid4().hex[:5]}", who=ours.customer),
            allocate=D("500.00"),
        )
        credited = await connector.record_credit_note(note, idempotency_key="cn")
        assert credited.status == SyncStatus.CREATED and credited.remote_status == "Applied"
        assert (await connector.record_credit_note(note, idempotency_key="cn")).status == SyncStatus.EXISTING
        theirs = await connector.fetch_invoice(synced.external_id)
        assert theirs.amount_due == D("1869.99") and theirs.amount_paid == 0  # credit is not money
        other = await connector.upsert_invoice(invoice(who=ours.customer), idempotency_key="j")
        assert (
            await connector.void_invoice(other.external_id, idempotency_key="v")
        ).status == SyncStatus.VOIDED
        assert (
            await connector.void_invoice(other.external_id, idempotency_key="v")
        ).status == SyncStatus.EXISTING
        assert (await connector.fetch_invoice(other.external_id)).state == RemoteState.VOIDED
        assert len(netsuite.state.books.records["creditmemo"]) == 2
    finally:
        await connector.aclose()


async def test_a_bad_client_assertion_is_refused(netsuite: NetSuite) -> None:
    stranger, _ = keys("stranger")
    for creds in (
        {"private_key": stranger},  # signed with a key whose certificate was never uploaded
        {"certificate_id": "cert-unknown"},
        {"client_id": "someone-else"},
        {"algorithm": "RS256"},  # not among the algorithms NetSuite accepts
    ):
        connector = netsuite.connector(**creds)
        try:
            with pytest.raises(ConnectionProblem):
                await connector.fetch_invoice("101")
        finally:
            await connector.aclose()
    # aud naming another endpoint, and an assertion living longer than the 60 minutes NetSuite allows
    elsewhere = client_assertion(netsuite.credentials(token_url="https://other.example/token"))
    too_long = client_assertion(netsuite.credentials(), now=time.time() + 7200)
    async with httpx.AsyncClient(base_url=netsuite.base_url) as http:
        for assertion in (elsewhere, too_long, "not-a-jwt"):
            answer = await http.post(
                TOKEN_PATH,
                data={
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion,
                },
            )
            assert (answer.status_code, answer.json()) == (400, {"error": "invalid_client"})
    assert len(netsuite.state.token_refusals) == 7 and not netsuite.state.core.tokens.valid
    async with httpx.AsyncClient(base_url=netsuite.base_url) as http:
        forged = await http.get(f"{RECORD}/invoice/101", headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert forged.json()["o:errorDetails"][0]["o:errorCode"] == "INVALID_LOGIN"


async def test_the_suiteql_change_feed_reports_a_payment_entered_in_netsuite_once(netsuite: NetSuite) -> None:
    connector = netsuite.connector()
    accountant = await netsuite.accountant()
    try:
        ours = invoice()
        synced = await connector.upsert_invoice(ours, idempotency_key="i")
        customer_id = netsuite.state.books.records["invoice"][synced.external_id]["entity"]
        first = await connector.changes_since(None)
        assert first.payments == ()

        async def enter(amount: str) -> str:
            """A bank line reconciled in NetSuite: a customer payment made through its own REST API."""
            created = await accountant.post(
                f"{RECORD}/customerpayment",
                json={
                    "customer": {"id": customer_id},
                    "payment": amount,
                    "tranDate": "2026-06-20",
                    "memo": "Bank transfer 4711",
                    "apply": {
                        "items": [{"doc": {"id": synced.external_id}, "apply": True, "amount": amount}]
                    },
                },
            )
            assert created.status_code == 204, created.text
            return created.headers["Location"].rsplit("/", 1)[-1]

        payment_id = await enter("1000.00")
        found = await connector.changes_since(first.next_cursor)
        assert [
            (p.external_id, p.invoice_external_id, p.amount, p.currency, p.deleted) for p in found.payments
        ] == [(payment_id, synced.external_id, D("1000.00"), "USD", False)]
        assert found.invoice_external_ids == (synced.external_id,) and found.next_cursor != first.next_cursor
        assert (await connector.changes_since(found.next_cursor)).payments == ()  # once
        later = await enter("369.99")
        again = await connector.changes_since(found.next_cursor)
        assert [p.external_id for p in again.payments] == [later]
        assert (await connector.changes_since(again.next_cursor)).payments == ()
        [fetched] = await connector.fetch_payment(payment_id)
        assert (fetched.amount, fetched.date, fetched.reference) == (
            D("1000.00"),
            date(2026, 6, 20),
            "Bank transfer 4711",
        )
        netsuite.state.books.void_payment(payment_id)
        voided = await connector.changes_since(again.next_cursor)
        assert [(p.external_id, p.deleted) for p in voided.payments] == [(payment_id, True)]
        queries = netsuite.state.calls_to("POST", "/query/v1/suiteql")
        assert queries and all(c.headers.get("prefer") == "transient" for c in queries)
    finally:
        await accountant.aclose()
        await connector.aclose()


async def test_the_dev_stand_in_and_settings_connect_through_open_connection(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """`invoiceflow dev --accounting netsuite` wiring: the dev key, the stand-in that maps its public half,
    the INVOICEFLOW_NETSUITE_* settings, and the connection the worker opens from them."""
    from accounting.connection import open_connection
    from accounting.tokens import NotConnected, resolve_tenant
    from core.settings import Settings
    from standins.accounting.dev import PROVIDERS, netsuite_dev_key
    from standins.server import serve

    key = netsuite_dev_key(tmp_path / "netsuite-dev-key.pem")
    assert key.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("INVOICEFLOW_NETSUITE_PRIVATE_KEY_FILE", str(key))
    dev = PROVIDERS["netsuite"]
    app, state = dev.app()
    with serve(app) as served:
        for name, value in {
            **dev.env(served.base_url),
            "INVOICEFLOW_ACCOUNTING_PROVIDER": "netsuite",
        }.items():
            monkeypatch.setenv(name, value)
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        assert resolve_tenant(settings) == dev.tenant
        connection = open_connection(settings, dev.tenant)
        try:
            made = await connection.connector.ensure_customer(
                netsuite_support.customer(), idempotency_key="k"
            )
            assert made.external_id in state.books.records["customer"]
            assert [r["grant_type"] for r in state.token_requests] == ["client_credentials"]
        finally:
            await connection.aclose()
    monkeypatch.delenv("INVOICEFLOW_NETSUITE_ACCOUNT_ID")
    with pytest.raises(NotConnected, match="INVOICEFLOW_NETSUITE_ACCOUNT_ID"):
        resolve_tenant(Settings(_env_file=None))  # type: ignore[call-arg]


async def test_a_changed_invoice_replaces_its_lines_instead_of_appending(netsuite: NetSuite) -> None:
    """NetSuite appends lines sent on an update (a non-keyed sublist) unless asked to replace them."""
    from dataclasses import replace

    connector = netsuite.connector()
    try:
        ours = invoice()
        synced = await connector.upsert_invoice(ours, idempotency_key="r1")
        fewer = replace(
            ours,
            lines=ours.lines[:1],
            totals=replace(ours.totals, subtotal=D("1875.00"), tax=D("375.00"), total=D("2250.00")),
        )
        again = await connector.upsert_invoice(fewer, idempotency_key="r2", external_id=synced.external_id)
        theirs = await connector.fetch_invoice(again.external_id)
        assert [line.description for line in theirs.lines] == ["Consulting, June"]
        assert drift(fewer, theirs) == [] and again.status == SyncStatus.UPDATED
        # Without replace=item the same PUT would have appended: the stand-in models NetSuite's merge.
        await connector.http.call(
            "PUT",
            f"{RECORD}/invoice/eid:{ours.invoice_id}",
            body={"item": {"items": [connector._line(ours.lines[1])]}},
        )
        assert len((await connector.fetch_invoice(again.external_id)).lines) == 2
    finally:
        await connector.aclose()


async def test_a_refused_asynchronous_write_surfaces_netsuites_message(netsuite: NetSuite) -> None:
    """The job fails (more applied than is due): its task result's error is raised, nothing is written."""
    from accounting.errors import ValidationFailed

    connector = netsuite.connector()
    try:
        synced = await connector.upsert_invoice(invoice(), idempotency_key="i")
        too_much = payment(synced.external_id, "9999.00")
        with pytest.raises(ValidationFailed, match="exceeds the amount due"):
            await connector.record_payment(too_much, idempotency_key=f"payment:{too_much.payment_id}")
        assert (
            netsuite.state.books.records["customerpayment"] == {} and netsuite.state.books.applications == []
        )
    finally:
        await connector.aclose()


def test_netsuite_error_bodies_map_to_what_the_caller_should_do() -> None:
    from accounting.errors import NotFound, RateLimited, ValidationFailed
    from accounting.netsuite_http import IdempotencyConflict, error_from

    def body(code: str, status: int = 400) -> dict[str, object]:
        return {
            "type": "t",
            "title": "x",
            "status": status,
            "o:errorDetails": [{"detail": "d", "o:errorCode": code}],
        }

    limited = error_from(400, body("SSS_REQUEST_LIMIT_EXCEEDED"), {"Retry-After": "3"})
    assert isinstance(limited, RateLimited) and limited.retry_after_seconds == 3.0  # the RESTlet-style 400
    conflict = error_from(400, body("IDEMPOTENCY_ERROR"), {"Location": "/services/rest/async/v1/job/7"})
    assert isinstance(conflict, IdempotencyConflict) and conflict.location.endswith("/job/7")
    assert isinstance(error_from(404, body("NONEXISTENT_ID", 404), {}), NotFound)
    refused = error_from(400, body("USER_ERROR"), {})
    assert type(refused) is ValidationFailed and refused.code == "USER_ERROR" and not refused.retryable
