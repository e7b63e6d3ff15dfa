"""The accounting sync activity: push an issued invoice, a payment, a credit note, a refund, a write-off
or a void to the configured provider (the money movements after issue live in ``activities.books_money``).

Async, unlike the database activities: it spends its time waiting on the provider's HTTP API and on
the organisation's shared rate limiter, which only works for tasks on one event loop. Database work
(short transactions) runs on threads via ``asyncio.to_thread``.

Why it is safe to retry at any point:

- Every provider write carries an idempotency key derived from stable facts: the invoice id and
  revision plus a digest of what is sent (so a corrected mapping is a new request, not a replay of the
  refused one), our payment id, the invoice id for a void. A retry after a timeout whose write did
  happen gets the stored answer, or the connector finds the object by its natural key.
- ``accounting_syncs`` remembers the provider's ids: a synced invoice is updated, never created again,
  and a synced payment or void is not sent again at all.
- Customers' provider ids go to ``customer_external_ids`` as soon as they are known.

Errors become Temporal retry behaviour: a 429 waits ``Retry-After`` (``next_retry_delay``); timeouts,
5xx and QBO's stale SyncToken retry with the policy's backoff; a 401 refreshes the token, then the retry
uses the new one; a refusal of the data or of our access (``ValidationFailed``, ``AccessDenied``, a
missing tax code, a broken connection) records ``sync_failed`` with the provider's message and is
non-retryable (type ``AccountingValidation``) until someone fixes the cause and retries.
"""

from __future__ import annotations

import asyncio
import math
import uuid
import weakref
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from accounting.base import AccountingPayment, SyncResult, SyncStatus
from accounting.connection import Connection, open_connection
from accounting.errors import (
    AccessDenied,
    AuthExpired,
    LockedByPayments,
    RateLimited,
    StaleObject,
    Transient,
    ValidationFailed,
)
from accounting.reconcile import customer_system, invoice_for_sync
from accounting.tokens import ConnectionProblem, resolve_tenant, tokens_used
from activities.accounting_rows import _InvoiceSnapshot, _PaymentSnapshot, _refused, _SyncRow, fingerprint
from activities.books_money import MOVING, BooksMoney
from activities.books_money import SyncTarget as _Target
from core.settings import Settings
from persistence import invoices as repo
from persistence.books_inbound import provider_payment_id
from persistence.db import session_scope
from persistence.models import AccountingSync, CustomerExternalId, Payment
from workflows.payloads import (
    AccountingAction,
    AccountingSyncRequest,
    AccountingSyncResult,
    ActivityName,
)

T = TypeVar("T")

PENDING, SYNCED, SYNC_FAILED = "pending", "synced", "sync_failed"


HEARTBEAT_EVERY_S = 2.0


async def _heartbeat_every(seconds: float) -> None:
    if not activity.in_activity():
        return  # called directly (tests, a script): nobody to tell
    while True:
        activity.heartbeat()
        await asyncio.sleep(seconds)


class AccountingActivities(BooksMoney):
    """One instance per worker process; it holds that process's connector per event loop, so all
    concurrent syncs of the organisation share one HTTP client, token store and rate limiter."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._connections: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Connection] = (
            weakref.WeakKeyDictionary()
        )

    async def aclose(self) -> None:
        """Close the HTTP clients (worker shutdown, tests)."""
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            await connection.aclose()

    async def _connection(self) -> Connection:
        loop = asyncio.get_running_loop()
        connection = self._connections.get(loop)
        if connection is None:
            tenant_id = await asyncio.to_thread(resolve_tenant, self._settings)
            mine = open_connection(self._settings, tenant_id)
            connection = self._connections.setdefault(loop, mine)
            if connection is not mine:  # another task got there first while we read the tenant
                await mine.aclose()
        return connection

    async def _db(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with session_scope(self._settings.require_database_url()) as session:
                return fn(session)

        return await asyncio.to_thread(run)

    # --- the activity ------------------------------------------------------------------------------

    @activity.defn(name=ActivityName.SYNC_ACCOUNTING)
    async def sync_accounting(self, request: AccountingSyncRequest) -> AccountingSyncResult:
        """Heartbeats while it works, so a worker that dies mid-call is noticed within the heartbeat
        timeout (not the 2-minute start-to-close) and the sync is retried soon, idempotently."""
        beat = asyncio.create_task(_heartbeat_every(HEARTBEAT_EVERY_S))
        try:
            return await self._sync(request)
        finally:
            beat.cancel()

    async def _sync(self, request: AccountingSyncRequest) -> AccountingSyncResult:
        provider = self._settings.accounting_provider
        if provider == "none":
            return AccountingSyncResult(status="skipped", detail="no accounting provider configured")
        try:
            invoice_id = uuid.UUID(request.invoice_id)
            payment_id = uuid.UUID(request.payment_id) if request.payment_id else None
        except ValueError as exc:
            raise _refused(f"bad id in {request}: {exc}") from exc
        if request.action == AccountingAction.PAYMENT and payment_id is None:
            raise _refused("a payment sync needs payment_id")
        try:
            connection = await self._connection()
        except ConnectionProblem as exc:
            raise _refused(exc.message) from exc
        credit_note_id: uuid.UUID | None = None
        if request.action == AccountingAction.CREDIT_NOTE:
            try:
                credit_note_id = uuid.UUID(request.credit_note_id or "")
            except ValueError as exc:
                raise _refused(f"a credit note sync needs credit_note_id: {exc}") from exc
        refund_id: uuid.UUID | None = None
        if request.action == AccountingAction.REFUND:
            try:
                refund_id = uuid.UUID(request.refund_id or "")
            except ValueError as exc:
                raise _refused(f"a refund sync needs refund_id: {exc}") from exc
        target = _Target("invoice", invoice_id, invoice_id)
        with tokens_used() as used:
            try:
                if request.action == AccountingAction.INVOICE:
                    result = await self._sync_invoice(connection, invoice_id, target)
                elif request.action == AccountingAction.PAYMENT:
                    assert payment_id is not None
                    result = await self._sync_payment(connection, invoice_id, payment_id, target)
                elif request.action == AccountingAction.VOID:
                    result = await self._void(connection, invoice_id, target)
                elif request.action == AccountingAction.CREDIT_NOTE:
                    assert credit_note_id is not None
                    result = await self._sync_credit_note(connection, invoice_id, credit_note_id, target)
                elif request.action == AccountingAction.REFUND:
                    assert refund_id is not None
                    result = await self._sync_refund(connection, invoice_id, refund_id, target)
                elif request.action == AccountingAction.WRITE_OFF:
                    result = await self._write_off(connection, invoice_id, target)
                else:
                    raise _refused(f"unknown accounting action {request.action!r}")
            except RateLimited as exc:
                await self._note(connection, target, exc.message)
                delay = timedelta(seconds=max(1, math.ceil(exc.retry_after_seconds)))
                raise ApplicationError(
                    exc.message, type="AccountingRateLimited", next_retry_delay=delay
                ) from exc
            except AuthExpired as exc:
                await self._note(connection, target, exc.message)
                try:
                    await connection.store.refresh_after_rejection(used[-1] if used else None)
                except ConnectionProblem as problem:
                    await self._fail(connection, target, problem.message)
                    raise _refused(problem.message) from problem
                except Transient as transient:
                    raise ApplicationError(transient.message, type="AccountingTransient") from transient
                raise ApplicationError(
                    f"{exc.message}; token refreshed, the retry uses it", type="AccountingAuthExpired"
                ) from exc
            except (Transient, StaleObject) as exc:
                await self._note(connection, target, exc.message)
                raise ApplicationError(exc.message, type=f"Accounting{type(exc).__name__}") from exc
            except ValidationFailed as exc:
                await self._fail(connection, target, exc.provider_message)
                raise _refused(exc.provider_message) from exc
            except AccessDenied as exc:  # includes ConnectionProblem (not connected, invalid_grant)
                await self._fail(connection, target, exc.message)
                raise _refused(exc.message) from exc
            except repo.InvoiceNotFound as exc:  # nothing to record a failure on (the row needs the invoice)
                raise _refused(str(exc)) from exc
        return AccountingSyncResult(
            status=SYNCED,
            provider=connection.provider,
            external_id=result.external_id,
            detail=f"{result.status} {result.remote_status}".strip(),
        )

    # --- invoice -----------------------------------------------------------------------------------

    async def _sync_invoice(
        self, connection: Connection, invoice_id: uuid.UUID, target: _Target
    ) -> SyncResult:
        target.kind, target.object_id = "invoice", invoice_id
        provider, tenant_id = connection.provider, connection.tenant_id
        snap = await self._db(lambda s: self._load_invoice(s, invoice_id, provider, tenant_id))
        ours = snap.invoice
        row = snap.row
        if (
            row is not None
            and row.status == SYNCED
            and row.external_id
            and row.revision == snap.revision
            and row.fingerprint == fingerprint(ours)
            and row.remote_status != MOVING
        ):
            await self._apply_issued_credit(connection, invoice_id, row.external_id)
            return SyncResult(row.external_id, SyncStatus.EXISTING, row.remote_status)
        await self._mark_pending(connection, target)
        if ours.customer.external_id is None:
            customer = await connection.connector.ensure_customer(
                ours.customer, idempotency_key=f"customer:{snap.customer_id}"
            )
            await self._db(
                lambda s: self._store_customer_id(
                    s, snap.customer_id, provider, tenant_id, customer.external_id
                )
            )
            ours = replace(ours, customer=replace(ours.customer, external_id=customer.external_id))
        digest = fingerprint(ours)
        key = f"{invoice_id}:invoice:r{snap.revision}:{digest[:16]}"
        external_id = row.external_id if row else None
        try:
            if external_id and row is not None and row.remote_status == MOVING:
                raise LockedByPayments("a move of payments was under way", provider=provider)
            result = await connection.connector.upsert_invoice(
                ours, idempotency_key=key, external_id=external_id
            )
        except LockedByPayments:
            assert external_id is not None
            result = await self._update_locked_invoice(
                connection,
                invoice_id,
                ours,
                external_id=external_id,
                idempotency_key=key,
                revision=snap.revision,
                target=target,
            )
        await self._succeed(connection, target, result, revision=snap.revision, digest=digest)
        await self._apply_issued_credit(connection, invoice_id, result.external_id)
        return result

    @staticmethod
    def _row(
        session: Session, provider: str, tenant_id: str, kind: str, object_id: uuid.UUID
    ) -> _SyncRow | None:
        found = session.scalars(
            select(AccountingSync).where(
                AccountingSync.provider == provider,
                AccountingSync.tenant_id == tenant_id,
                AccountingSync.kind == kind,
                AccountingSync.object_id == object_id,
            )
        ).one_or_none()
        if found is None:
            return None
        return _SyncRow(
            found.status, found.external_id, found.remote_status, found.revision, found.fingerprint
        )

    def _load_invoice(
        self, session: Session, invoice_id: uuid.UUID, provider: str, tenant_id: str
    ) -> _InvoiceSnapshot:
        invoice = repo.get_invoice(session, invoice_id)
        return _InvoiceSnapshot(
            invoice=invoice_for_sync(invoice, self._settings, provider, tenant_id),
            revision=invoice.revision,
            customer_id=str(invoice.customer_id),
            row=self._row(session, provider, tenant_id, "invoice", invoice_id),
        )

    @staticmethod
    def _store_customer_id(
        session: Session, customer_id: str, provider: str, tenant_id: str, external_id: str
    ) -> None:
        """Keep the provider's customer id. Unique per (system, external id): when the provider matched
        two of our customers to one of its own (QBO matches by display name), the first keeps it."""
        session.execute(
            insert(CustomerExternalId)
            .values(
                customer_id=uuid.UUID(customer_id),
                system=customer_system(provider, tenant_id),
                external_id=external_id,
            )
            .on_conflict_do_nothing(constraint="uq_customer_external_ids_system_id")
        )

    # --- payment -----------------------------------------------------------------------------------

    async def _sync_payment(
        self, connection: Connection, invoice_id: uuid.UUID, payment_id: uuid.UUID, target: _Target
    ) -> SyncResult:
        provider, tenant_id = connection.provider, connection.tenant_id
        snap = await self._db(lambda s: self._load_payment(s, invoice_id, payment_id, provider, tenant_id))
        if snap.row is not None and snap.row.status == SYNCED and snap.row.external_id:
            return SyncResult(snap.row.external_id, SyncStatus.EXISTING, snap.row.remote_status)
        if snap.books_id is not None:  # entered in the books themselves: already there, never pushed back
            target.kind, target.object_id = "payment", payment_id
            result = SyncResult(snap.books_id, SyncStatus.EXISTING, "in the books")
            await self._succeed(connection, target, result)
            return result
        invoice_row = snap.invoice_row
        if invoice_row is None or invoice_row.status != SYNCED or not invoice_row.external_id:
            synced = await self._sync_invoice(connection, invoice_id, target)  # the books need it first
            invoice_external_id = synced.external_id
        else:
            invoice_external_id = invoice_row.external_id
        target.kind, target.object_id = "payment", payment_id
        await self._mark_pending(connection, target)
        timezone, customer_external = await self._db(
            lambda s: self._customer_facts(s, invoice_id, provider, tenant_id)
        )
        short = str(payment_id)[:8]
        # Our id in the reference keeps two payments with the same bank reference and amount apart (Xero
        # matches an earlier payment by reference + amount when its idempotency window has passed).
        reference = f"{snap.reference} [{short}]" if snap.reference else str(payment_id)
        payment = AccountingPayment(
            payment_id=str(payment_id),
            invoice_external_id=invoice_external_id,
            amount=snap.amount,
            date=snap.received_at.astimezone(ZoneInfo(timezone)).date(),
            reference=reference,
            currency=snap.currency,
            customer_external_id=customer_external,
        )
        result = await connection.connector.record_payment(payment, idempotency_key=f"payment:{payment_id}")
        await self._succeed(connection, target, result)
        return result

    def _load_payment(
        self, session: Session, invoice_id: uuid.UUID, payment_id: uuid.UUID, provider: str, tenant_id: str
    ) -> _PaymentSnapshot:
        payment = session.get(Payment, payment_id)
        if payment is None or payment.invoice_id != invoice_id:
            raise repo.InvoiceNotFound(f"payment {payment_id} of invoice {invoice_id} does not exist")
        return _PaymentSnapshot(
            payment_id=payment.id,
            amount=payment.amount,
            currency=payment.currency,
            reference=payment.reference,
            received_at=payment.received_at,
            row=self._row(session, provider, tenant_id, "payment", payment_id),
            invoice_row=self._row(session, provider, tenant_id, "invoice", invoice_id),
            books_id=provider_payment_id(payment.idempotency_key, provider, tenant_id),
        )

    @staticmethod
    def _customer_facts(
        session: Session, invoice_id: uuid.UUID, provider: str, tenant_id: str
    ) -> tuple[str, str | None]:
        """The customer's timezone (a payment's date is the customer's local date) and provider id."""
        customer = repo.get_invoice(session, invoice_id, children=False).customer
        system = customer_system(provider, tenant_id)
        return customer.timezone, next(
            (e.external_id for e in customer.external_ids if e.system == system), None
        )

    # --- void --------------------------------------------------------------------------------------

    async def _void(self, connection: Connection, invoice_id: uuid.UUID, target: _Target) -> SyncResult:
        provider, tenant_id = connection.provider, connection.tenant_id
        row = await self._db(lambda s: self._row(s, provider, tenant_id, "invoice", invoice_id))
        if row is not None and row.status == SYNCED and row.external_id and row.remote_status == "VOIDED":
            return SyncResult(row.external_id, SyncStatus.EXISTING, row.remote_status)
        if row is None or not row.external_id or row.status != SYNCED:
            # A numbered invoice belongs in the books even when voided (its number must not go missing).
            external_id = (await self._sync_invoice(connection, invoice_id, target)).external_id
        else:
            external_id = row.external_id
        target.kind, target.object_id = "invoice", invoice_id
        await self._mark_pending(connection, target)
        result = await connection.connector.void_invoice(external_id, idempotency_key=f"{invoice_id}:void")
        # Normalised: FreshBooks' delete leaves its status text as it was ("sent").
        await self._succeed(connection, target, replace(result, remote_status="VOIDED"))
        return result

    # --- sync state --------------------------------------------------------------------------------

    async def _upsert(
        self, connection: Connection, target: _Target, *, attempts_inc: int = 0, **values: Any
    ) -> None:
        """Insert or update the target's row with ``values`` (one statement, so concurrent retries of
        the same sync cannot create two rows)."""
        row = {
            "provider": connection.provider,
            "tenant_id": connection.tenant_id,
            "kind": target.kind,
            "object_id": target.object_id,
            "invoice_id": target.invoice_id,
            "status": PENDING,
            "remote_status": "",
            "fingerprint": "",
            "attempts": attempts_inc,
            **values,
        }

        def write(session: Session) -> None:
            stmt = insert(AccountingSync).values(**row)
            updates: dict[str, Any] = {key: getattr(stmt.excluded, key) for key in values}
            if attempts_inc:
                updates["attempts"] = AccountingSync.attempts + attempts_inc
            updates["updated_at"] = func.now()
            session.execute(stmt.on_conflict_do_update(constraint="uq_accounting_syncs_object", set_=updates))

        await self._db(write)

    async def _mark_pending(self, connection: Connection, target: _Target) -> None:
        """Before a write: the row says a sync is under way (a crash leaves ``pending``, not ``synced``)."""
        await self._upsert(connection, target, status=PENDING, attempts_inc=1)

    async def _note(self, connection: Connection, target: _Target, message: str) -> None:
        """A retryable failure: still pending, with the reason for whoever looks."""
        await self._upsert(connection, target, status=PENDING, last_error=message[:2000])

    async def _fail(self, connection: Connection, target: _Target, message: str) -> None:
        await self._upsert(connection, target, status=SYNC_FAILED, last_error=message[:2000])

    async def _succeed(
        self,
        connection: Connection,
        target: _Target,
        result: SyncResult,
        *,
        revision: int | None = None,
        digest: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": SYNCED,
            "external_id": result.external_id,
            "remote_status": result.remote_status[:40],
            "last_error": None,
            "synced_at": datetime.now(UTC),
        }
        if revision is not None:
            values["revision"] = revision
        if digest is not None:
            values["fingerprint"] = digest
        await self._upsert(connection, target, **values)
