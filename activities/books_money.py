"""The sync activity's money movements after issue: refunds, write-offs and customer credit applied at
issue, so that everything that moves money on an invoice reaches the books (``AccountingActivities``
inherits these; the retry and idempotency rules of ``activities.accounting`` hold for each).

- **Refund** of an open invoice's payment: providers let a payment be deleted, not lowered (Xero says so
  outright), so the payment is removed and what is left of it after every refund so far is recorded
  again, under the refund's id (a retry finds both steps done); the payment's row then points at the new
  payment, so a second refund removes that one.
- **Write-off**: a bad-debt credit note applied to the invoice (``accounting.writeoff``).
- **Customer credit applied at issue** (a payment of method ``customer_credit``): taken at the provider
  from the customer's credit notes, oldest first, never as money received.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounting.base import (
    AccountingCreditApplication,
    AccountingCreditNote,
    AccountingInvoice,
    AccountingPayment,
    SyncResult,
    SyncStatus,
)
from accounting.errors import Transient, ValidationFailed
from accounting.reconcile import credit_note_for_sync, customer_system
from accounting.writeoff import write_off_for_sync
from persistence import invoices as repo
from persistence.models import AccountingSync, CreditNote, Payment, Refund

if TYPE_CHECKING:
    from accounting.connection import Connection
    from activities.accounting import AccountingActivities


@dataclass
class SyncTarget:
    """The ``accounting_syncs`` row an error belongs to (the payment flow may sync its invoice first)."""

    kind: str
    object_id: uuid.UUID
    invoice_id: uuid.UUID


SYNCED = "synced"
MOVING = "moving payments"  # an invoice row's remote_status while its payments are moved (see below)


@dataclass(frozen=True)
class _RefundFacts:
    payment_id: uuid.UUID
    payment_external_id: str | None
    invoice_external_id: str | None
    remaining: Decimal  # what is left of the payment after this refund and every earlier one
    currency: str
    reference: str
    paid_on: Any  # date
    customer_external_id: str | None


def _synced_id(
    session: Session, provider: str, tenant_id: str, kind: str, object_id: uuid.UUID
) -> str | None:
    return session.scalar(
        select(AccountingSync.external_id).where(
            AccountingSync.provider == provider,
            AccountingSync.tenant_id == tenant_id,
            AccountingSync.kind == kind,
            AccountingSync.object_id == object_id,
            AccountingSync.status == SYNCED,
        )
    )


def _customer_external(session: Session, invoice: Any, provider: str, tenant_id: str) -> str | None:
    system = customer_system(provider, tenant_id)
    return next((e.external_id for e in invoice.customer.external_ids if e.system == system), None)


class BooksMoney:
    """Mixed into ``AccountingActivities`` (which supplies ``_db``, ``_row``, ``_sync_invoice`` and the
    sync-state writers)."""

    # --- credit note -------------------------------------------------------------------------------

    async def _sync_credit_note(
        self: AccountingActivities,
        connection: Connection,
        invoice_id: uuid.UUID,
        credit_note_id: uuid.UUID,
        target: SyncTarget,
    ) -> SyncResult:
        """The credit note once (the connector finds it by number), applied to the synced invoice: Xero
        allocates an ACCRECCREDIT, QBO links a CreditMemo by a zero payment, FreshBooks pays from credit."""
        provider, tenant_id = connection.provider, connection.tenant_id
        row = await self._db(lambda s: self._row(s, provider, tenant_id, "credit_note", credit_note_id))
        if row is not None and row.status == SYNCED and row.external_id:
            return SyncResult(row.external_id, SyncStatus.EXISTING, row.remote_status)
        invoice_row = await self._db(lambda s: self._row(s, provider, tenant_id, "invoice", invoice_id))
        if invoice_row is None or invoice_row.status != SYNCED or not invoice_row.external_id:
            invoice_external_id = (await self._sync_invoice(connection, invoice_id, target)).external_id
        else:
            invoice_external_id = invoice_row.external_id
        target.kind, target.object_id = "credit_note", credit_note_id
        await self._mark_pending(connection, target)

        def load(session: Session) -> AccountingCreditNote:
            note = session.get(CreditNote, credit_note_id)
            if note is None or note.invoice_id != invoice_id:
                raise repo.InvoiceNotFound(
                    f"credit note {credit_note_id} of invoice {invoice_id} does not exist"
                )
            return credit_note_for_sync(note, self._settings, provider, tenant_id, invoice_external_id)

        note = await self._db(load)
        result = await connection.connector.record_credit_note(
            note, idempotency_key=f"credit_note:{credit_note_id}"
        )
        await self._succeed(connection, target, result)
        return result

    # --- refund ------------------------------------------------------------------------------------

    async def _sync_refund(
        self: AccountingActivities,
        connection: Connection,
        invoice_id: uuid.UUID,
        refund_id: uuid.UUID,
        target: SyncTarget,
    ) -> SyncResult:
        provider, tenant_id = connection.provider, connection.tenant_id
        row = await self._db(lambda s: self._row(s, provider, tenant_id, "refund", refund_id))
        if row is not None and row.status == SYNCED and row.external_id is not None:
            return SyncResult(row.external_id, SyncStatus.EXISTING, row.remote_status)

        def load(session: Session) -> _RefundFacts:
            refund = session.get(Refund, refund_id)
            if refund is None or refund.invoice_id != invoice_id:
                raise repo.InvoiceNotFound(f"refund {refund_id} of invoice {invoice_id} does not exist")
            payment = session.get(Payment, refund.payment_id)
            assert payment is not None
            refunded = session.scalar(
                select(func.coalesce(func.sum(Refund.amount), 0)).where(
                    Refund.payment_id == payment.id, Refund.created_at <= refund.created_at
                )
            )
            invoice = repo.get_invoice(session, invoice_id)
            return _RefundFacts(
                payment_id=payment.id,
                payment_external_id=_synced_id(session, provider, tenant_id, "payment", payment.id),
                invoice_external_id=_synced_id(session, provider, tenant_id, "invoice", invoice_id),
                remaining=payment.amount - Decimal(refunded),
                currency=payment.currency,
                reference=payment.reference,
                paid_on=payment.received_at.astimezone(ZoneInfo(invoice.customer.timezone)).date(),
                customer_external_id=_customer_external(session, invoice, provider, tenant_id),
            )

        facts = await self._db(load)
        if not facts.payment_external_id or not facts.invoice_external_id:
            raise Transient(  # its payment's sync comes first (another workflow may still run it)
                f"{provider}: refund {refund_id} waits for its payment to reach the books", provider=provider
            )
        target.kind, target.object_id = "refund", refund_id
        await self._mark_pending(connection, target)
        connector = connection.connector
        removed = await connector.remove_payment(
            facts.payment_external_id,
            invoice_external_id=facts.invoice_external_id,
            idempotency_key=f"refund:{refund_id}:remove",
        )
        result = SyncResult(removed.external_id, SyncStatus.REMOVED, "refunded")
        if facts.remaining > 0:
            short = str(refund_id)[:8]
            rest = await connector.record_payment(
                AccountingPayment(
                    payment_id=str(refund_id),
                    invoice_external_id=facts.invoice_external_id,
                    amount=facts.remaining,
                    date=facts.paid_on,
                    reference=f"{facts.reference or facts.payment_id} [{short}]",
                    currency=facts.currency,
                    customer_external_id=facts.customer_external_id,
                ),
                idempotency_key=f"refund:{refund_id}:rest",
            )
            result = SyncResult(rest.external_id, SyncStatus.UPDATED, "refunded in part")
        # The payment now lives at the provider as the re-recorded rest (or not at all).
        await self._upsert(
            connection,
            SyncTarget("payment", facts.payment_id, invoice_id),
            status=SYNCED,
            external_id=result.external_id,
            remote_status="refunded" if facts.remaining <= 0 else "refunded in part",
        )
        await self._succeed(connection, target, result)
        return result

    # --- write-off ---------------------------------------------------------------------------------

    async def _write_off(
        self: AccountingActivities, connection: Connection, invoice_id: uuid.UUID, target: SyncTarget
    ) -> SyncResult:
        provider, tenant_id = connection.provider, connection.tenant_id
        row = await self._db(lambda s: self._row(s, provider, tenant_id, "write_off", invoice_id))
        if row is not None and row.status == SYNCED and row.external_id:
            return SyncResult(row.external_id, SyncStatus.EXISTING, row.remote_status)
        invoice_row = await self._db(lambda s: self._row(s, provider, tenant_id, "invoice", invoice_id))
        if invoice_row is None or invoice_row.status != SYNCED or not invoice_row.external_id:
            invoice_external_id = (await self._sync_invoice(connection, invoice_id, target)).external_id
        else:
            invoice_external_id = invoice_row.external_id
        target.kind, target.object_id = "write_off", invoice_id
        await self._mark_pending(connection, target)
        note = await self._db(
            lambda s: write_off_for_sync(
                repo.get_invoice(s, invoice_id), self._settings, provider, tenant_id, invoice_external_id
            )
        )
        if note is None:
            result = SyncResult(invoice_external_id, SyncStatus.EXISTING, "nothing due")
        else:
            result = await connection.connector.record_credit_note(
                note, idempotency_key=f"{invoice_id}:write_off"
            )
        await self._succeed(connection, target, result)
        return result

    # --- customer credit applied at issue ----------------------------------------------------------

    async def _apply_issued_credit(
        self: AccountingActivities, connection: Connection, invoice_id: uuid.UUID, invoice_external_id: str
    ) -> None:
        """After the invoice is in the books: the credit applied to it at issue, taken there from the
        customer's credit notes. Waits (retryable) while one of them is still on its way to the books;
        refused when the books hold too little of it (credit from an overpayment is not there)."""
        provider, tenant_id = connection.provider, connection.tenant_id

        def load(session: Session) -> list[AccountingCreditApplication]:
            invoice = repo.get_invoice(session, invoice_id)
            credits = [p for p in invoice.payments if p.method == repo.CREDIT_METHOD]
            pending = [
                p for p in credits if _synced_id(session, provider, tenant_id, "payment", p.id) is None
            ]
            if not pending:
                return []
            notes = session.scalars(
                select(CreditNote)
                .where(
                    CreditNote.customer_id == invoice.customer_id,
                    CreditNote.currency == invoice.currency,
                    CreditNote.to_customer_credit > 0,
                )
                .order_by(CreditNote.issue_date, CreditNote.number)
            ).all()
            sources: list[tuple[str, str]] = []
            for note in notes:
                row = self._row(session, provider, tenant_id, "credit_note", note.id)
                if row is None or row.status == "sync_failed":
                    continue  # never on its way to the books (issued before the sync, or refused there)
                if row.status != SYNCED or not row.external_id:
                    raise Transient(
                        f"{provider}: credit note {note.number} is not in the books yet; the credit it gave "
                        f"is applied to {invoice.number} once it is",
                        provider=provider,
                    )
                sources.append((row.external_id, note.number))
            customer = _customer_external(session, invoice, provider, tenant_id) or ""
            zone = ZoneInfo(invoice.customer.timezone)
            return [
                AccountingCreditApplication(
                    application_id=str(p.id),
                    invoice_external_id=invoice_external_id,
                    customer_external_id=customer,
                    amount=p.amount,
                    date=p.received_at.astimezone(zone).date(),
                    currency=invoice.currency,
                    sources=tuple(sources),
                )
                for p in pending
            ]

        for application in await self._db(load):
            target = SyncTarget("payment", uuid.UUID(application.application_id), invoice_id)
            if not application.sources:
                raise ValidationFailed(
                    f"customer credit of {application.amount} applied at issue has no credit note in "
                    f"{provider} to come from (credit from an overpayment is not in the books)",
                    provider=provider,
                    status_code=None,
                )
            await self._mark_pending(connection, target)
            result = await connection.connector.apply_credit(
                application, idempotency_key=f"credit:{application.application_id}"
            )
            await self._succeed(connection, target, result)

    # --- an invoice the provider locked because it has payments ----------------------------------

    async def _update_locked_invoice(
        self: AccountingActivities,
        connection: Connection,
        invoice_id: uuid.UUID,
        ours: AccountingInvoice,
        *,
        external_id: str,
        idempotency_key: str,
        revision: int,
        target: SyncTarget,
    ) -> SyncResult:
        """Xero edits no invoice with payments on it (a late fee added after a part payment): its payments
        are removed, the invoice is updated, and each of our payments is recorded again as it stands
        (less its refunds), with its own reference. The invoice row says ``moving payments`` meanwhile,
        so a retry after a crash finishes the move (every step finds what it already did). Credit
        allocated there (credit notes, credit applied) cannot be moved: that stays a refusal."""
        provider, tenant_id, connector = connection.provider, connection.tenant_id, connection.connector
        remote = await connector.fetch_invoice(external_id)
        if remote.total - remote.amount_paid - remote.amount_due > 0:
            raise ValidationFailed(
                f"{provider} will not edit {ours.number}: it has credit allocated there; remove the "
                "allocation in the books, then retry",
                provider=provider,
                status_code=None,
            )
        await self._upsert(connection, target, status="pending", remote_status=MOVING)

        def load(session: Session) -> list[tuple[uuid.UUID, str | None, Decimal, str, Any]]:
            invoice = repo.get_invoice(session, invoice_id)
            zone = ZoneInfo(invoice.customer.timezone)
            moves = []
            for payment in invoice.payments:
                if payment.method == repo.CREDIT_METHOD:
                    continue
                refunded = session.scalar(
                    select(func.coalesce(func.sum(Refund.amount), 0)).where(Refund.payment_id == payment.id)
                )
                reference = payment.reference
                reference = f"{reference} [{str(payment.id)[:8]}]" if reference else str(payment.id)
                moves.append(
                    (
                        payment.id,
                        _synced_id(session, provider, tenant_id, "payment", payment.id),
                        payment.amount - Decimal(refunded),
                        reference,
                        payment.received_at.astimezone(zone).date(),
                    )
                )
            return moves

        moves = await self._db(load)
        for payment_id, payment_external, _, _, _ in moves:
            if payment_external:
                await connector.remove_payment(
                    payment_external,
                    invoice_external_id=external_id,
                    idempotency_key=f"payment:{payment_id}:move:r{revision}",
                )
        result = await connector.upsert_invoice(
            ours, idempotency_key=idempotency_key, external_id=external_id
        )
        for payment_id, payment_external, amount, reference, paid_on in moves:
            if not payment_external or amount <= 0:
                continue  # not in the books yet (its own sync follows), or refunded in full
            again = await connector.record_payment(
                AccountingPayment(
                    payment_id=str(payment_id),
                    invoice_external_id=external_id,
                    amount=amount,
                    date=paid_on,
                    reference=reference,
                    currency=ours.currency,
                    customer_external_id=ours.customer.external_id,
                ),
                idempotency_key=f"payment:{payment_id}:again:r{revision}",
            )
            await self._upsert(
                connection,
                SyncTarget("payment", payment_id, invoice_id),
                status=SYNCED,
                external_id=again.external_id,
                remote_status=again.remote_status[:40],
            )
        return result
