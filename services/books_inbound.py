"""The books talk back: payments, voids, amount changes and credit notes made in the accounting system.

One path for every source (a webhook's thin event, a poll's change set): read what changed from the
provider, then

- a **payment** on one of our synced invoices is recorded on that invoice's workflow through the same
  ``record_payment`` Update as any payment, keyed by the provider's payment id (``books:<provider>:
  <organisation>:<id>``), so a poll and a webhook reporting it record it once; status, reminders,
  receipt and the next milestone follow from the workflow as for any payment. A payment our own sync
  pushed is recognised (its id in ``accounting_syncs``, or our marker in its text) and skipped; while a
  push of ours on the same invoice is still under way (its provider id not stored yet) the event is
  retried shortly instead of guessed;
- a **deleted payment**, a **void**, a **total changed** in the books, a **credit note** made there and
  a payment that cannot be applied (closed invoice, other currency) become a difference for an
  operator (``GET /accounting/differences``), never applied silently.

Deciding a difference is one call: ``accept`` of a void voids our invoice (the workflow's own
``void`` Update, refused while it holds payments); ``accept`` of anything else only acknowledges it,
because applying it here would be unsafe (un-recording a payment the client made, rewriting an issued
invoice, issuing a credit note that our sync would then push back as a second one): the operator fixes
what is wrong on whichever side is wrong. ``reject`` says the books are wrong and will be corrected.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from accounting.base import RemoteState
from accounting.changes import ChangeFeed, ChangeSet, RemotePayment
from accounting.errors import NotFound
from persistence import books_inbound as repo
from persistence.db import session_scope
from workflows.books import BooksEvent, BooksOutcome
from workflows.payloads import PaymentInput, PaymentOutcome, VoidInput

T = TypeVar("T")

CLOSED = ("paid", "void", "uncollectible", "credited")
ACKNOWLEDGE_ONLY = {
    "payment_deleted": "acknowledged: the payment stays recorded here; refund or credit it if the client "
    "really did not pay (un-recording a payment automatically would be unsafe)",
    "amount_changed": "acknowledged: an issued invoice is not rewritten; issue a credit note here (it is "
    "synced) or correct the books",
    "credit_note": "acknowledged: issue the credit note here if it is right (it is then synced to the "
    "books) and delete the one made there, else two would exist",
    "payment_not_applied": "acknowledged: the money is in the books only; record it here by hand, as "
    "customer credit or a payment on another invoice, if it belongs to us",
}


class PushInFlight(Exception):
    """A payment of ours on this invoice is being pushed: its provider id is not known yet."""


class DifferenceNotFound(Exception):
    pass


class DifferenceDecided(Exception):
    """The difference was decided already, or cannot be accepted (the reason is the message)."""


@dataclass
class Books:
    """One organisation's books, as the use cases see them."""

    provider: str
    tenant_id: str
    feed: ChangeFeed
    database_url: str
    temporal: Client

    async def db(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with session_scope(self.database_url) as session:
                return fn(session)

        return await asyncio.to_thread(run)


# --- reading what changed --------------------------------------------------------------------------


async def poll(books: Books) -> BooksOutcome:
    """Read the changes since the stored cursor, record them, then move the cursor."""
    cursor = await books.db(lambda s: repo.get_cursor(s, books.provider, books.tenant_id))
    changes = await books.feed.changes_since(cursor)
    outcome = await apply_changes(books, changes)
    await books.db(lambda s: repo.save_cursor(s, books.provider, books.tenant_id, changes.next_cursor))
    return outcome


async def changes_of_events(books: Books, events: list[BooksEvent]) -> ChangeSet:
    """What webhook events name, read from the provider (the events themselves carry no data)."""
    payments: list[RemotePayment] = []
    invoices: list[str] = []
    notes: list[str] = []
    for event in events:
        if event.category == "payment":
            try:
                payments += await books.feed.fetch_payment(event.resource_id)
            except NotFound:  # deleted at the provider (QBO's Delete): the difference check needs its id
                payments.append(
                    RemotePayment(
                        event.resource_id,
                        "",
                        Decimal(0),
                        date.today(),
                        "",
                        deleted=True,
                        payment_id=event.resource_id,
                    )
                )
        elif event.category == "invoice":
            invoices.append(event.resource_id)
            listed = getattr(books.feed, "invoice_payments", None)
            if listed is not None:  # Xero: a payment is an update of its invoice
                payments += await listed(event.resource_id)
        elif event.category == "credit_note":
            notes.append(event.resource_id)
    return ChangeSet(tuple(payments), tuple(dict.fromkeys(invoices)), tuple(dict.fromkeys(notes)))


async def apply_events(books: Books, events: list[BooksEvent]) -> BooksOutcome:
    return await apply_changes(books, await changes_of_events(books, events))


# --- recording what changed ------------------------------------------------------------------------


async def apply_changes(books: Books, changes: ChangeSet) -> BooksOutcome:
    outcome = BooksOutcome()
    seen: set[str] = set()
    for payment in changes.payments:
        if payment.external_id in seen:
            continue
        seen.add(payment.external_id)
        await _payment(books, payment, outcome)
    for external_id in changes.invoice_external_ids:
        await _invoice(books, external_id, outcome)
    for external_id in changes.credit_note_external_ids:
        await _credit_note(books, external_id, outcome)
    return outcome


async def _difference(books: Books, outcome: BooksOutcome, **values: Any) -> None:
    if await books.db(
        lambda s: repo.record_difference(s, provider=books.provider, tenant_id=books.tenant_id, **values)
    ):
        outcome.differences += 1


async def _payment(books: Books, payment: RemotePayment, outcome: BooksOutcome) -> None:
    provider, tenant = books.provider, books.tenant_id
    key = repo.payment_key(provider, tenant, payment.external_id)
    provider_id = payment.payment_id or payment.external_id

    def facts(session: Session) -> tuple[repo.OurInvoice | None, bool, bool, bool]:
        ours = (
            repo.invoice_by_external_id(session, provider, tenant, payment.invoice_external_id)
            if payment.invoice_external_id
            else None
        )
        earlier = (
            repo.recorded_by_provider_id(session, provider, tenant, provider_id) if payment.deleted else []
        )
        recorded = repo.recorded_payment(session, key) is not None or bool(earlier)
        if ours is None and earlier:  # a deletion names no invoice (QBO): the one we recorded it on
            ours = repo.invoice_by_id(session, earlier[0].invoice_id)
        pushed = repo.pushed_by_us(
            session, provider, tenant, provider_id, payment.memo, ours.invoice_id if ours else None
        )
        in_flight = ours is not None and repo.push_in_flight(session, provider, tenant, ours.invoice_id)
        return ours, recorded, pushed, in_flight

    ours, recorded, pushed, in_flight = await books.db(facts)
    if payment.deleted:
        if recorded or pushed:
            await _difference(
                books,
                outcome,
                kind="payment_deleted",
                external_id=provider_id,
                invoice_id=ours.invoice_id if ours else None,
                detail=f"payment {provider_id} was deleted in {provider}; it is still recorded here",
            )
        return
    if ours is None or payment.amount <= 0:
        return  # not an invoice of ours (made in the books by hand), or no money: nothing to record
    if recorded:
        outcome.duplicates += 1
        return
    if pushed:
        outcome.ours += 1
        return
    if in_flight:
        raise PushInFlight(f"a payment of invoice {ours.number} is being pushed to {provider}; retrying")
    problem = None
    if ours.status in CLOSED:
        problem = f"invoice {ours.number} is {ours.status}; it takes no more payments"
    elif payment.currency and payment.currency.upper() != ours.currency.upper():
        problem = f"the payment is in {payment.currency}, invoice {ours.number} in {ours.currency}"
    if problem is None:
        problem = await _record(books, ours, payment, key)
        if problem is None:
            outcome.recorded += 1
            return
    await _difference(
        books,
        outcome,
        kind="payment_not_applied",
        external_id=payment.external_id,
        invoice_id=ours.invoice_id,
        detail=f"{provider} payment of {payment.amount} {payment.currency} not applied: {problem}",
        data={
            "amount": str(payment.amount),
            "date": payment.date.isoformat(),
            "reference": payment.reference,
        },
    )


async def _record(books: Books, ours: repo.OurInvoice, payment: RemotePayment, key: str) -> str | None:
    """The workflow's own Update, as for any payment; the reason when the workflow refuses it."""
    paid_on = datetime.combine(payment.date, time(12), UTC)
    handle = books.temporal.get_workflow_handle(ours.workflow_id)
    try:
        await handle.execute_update(
            "record_payment",
            PaymentInput(
                amount=str(payment.amount),
                idempotency_key=key,
                method="bank_transfer",
                reference=f"{books.provider} {payment.reference}".strip()[:200],
                currency=payment.currency.upper() or None,
                received_at=min(paid_on, datetime.now(UTC)),
                actor=f"books:{books.provider}",
            ),
            result_type=PaymentOutcome,
        )
    except WorkflowUpdateFailedError as exc:
        return getattr(exc.cause, "message", None) or str(exc.cause)
    except RPCError as exc:
        if "completed" in exc.message.lower() or "not found" in exc.message.lower():
            return f"the invoice's workflow has ended ({exc.message})"
        raise
    return None


async def _invoice(books: Books, external_id: str, outcome: BooksOutcome) -> None:
    ours = await books.db(
        lambda s: repo.invoice_by_external_id(s, books.provider, books.tenant_id, external_id)
    )
    if ours is None:
        return
    remote = await books.feed.fetch_invoice(external_id)  # type: ignore[attr-defined]
    if remote.state == RemoteState.VOIDED and ours.status != "void":
        await _difference(
            books,
            outcome,
            kind="invoice_voided",
            external_id=external_id,
            signature="voided",
            invoice_id=ours.invoice_id,
            detail=f"invoice {ours.number} was voided in {books.provider}; it is {ours.status} here",
        )
    elif (
        remote.state != RemoteState.VOIDED
        and remote.total != ours.total
        and remote.state != RemoteState.DRAFT
    ):
        await _difference(
            books,
            outcome,
            kind="amount_changed",
            external_id=external_id,
            signature=f"total:{remote.total}",
            invoice_id=ours.invoice_id,
            detail=f"invoice {ours.number}: total {remote.total} in {books.provider}, {ours.total} here",
            data={"theirs": str(remote.total), "ours": str(ours.total)},
        )


async def _credit_note(books: Books, external_id: str, outcome: BooksOutcome) -> None:
    if await books.db(lambda s: repo.credit_note_is_ours(s, books.provider, books.tenant_id, external_id)):
        return
    await _difference(
        books,
        outcome,
        kind="credit_note",
        external_id=external_id,
        detail=f"credit note {external_id} was made in {books.provider}, not here",
    )


# --- an operator decides ---------------------------------------------------------------------------


def difference_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "provider": row.provider,
        "tenant_id": row.tenant_id,
        "kind": row.kind,
        "external_id": row.external_id,
        "invoice_id": str(row.invoice_id) if row.invoice_id else None,
        "detail": row.detail,
        "data": row.data,
        "status": row.status,
        "resolution": row.resolution,
        "decided_by": row.decided_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "accept_applies": row.kind == "invoice_voided",
    }


async def list_differences(database_url: str, status: str | None) -> list[dict[str, Any]]:
    def run() -> list[dict[str, Any]]:
        with session_scope(database_url) as session:
            return [difference_view(r) for r in repo.list_differences(session, status or None)]

    return await asyncio.to_thread(run)


async def decide_difference(
    database_url: str, temporal: Client, difference_id: uuid.UUID, *, accept: bool, actor: str, note: str = ""
) -> dict[str, Any]:
    """Accept or reject one difference, once; accepting a void voids our invoice through its workflow."""

    def load() -> tuple[str, str, uuid.UUID | None, str | None]:
        with session_scope(database_url) as session:
            row = repo.get_difference(session, difference_id)
            if row is None:
                raise DifferenceNotFound(f"no difference {difference_id}")
            if row.status != repo.OPEN:
                raise DifferenceDecided(f"difference {difference_id} is {row.status} already")
            workflow_id = None
            if row.invoice_id is not None:
                from persistence.models import Invoice

                invoice = session.get(Invoice, row.invoice_id)
                workflow_id = invoice.workflow_id if invoice else None
            return row.kind, row.provider, row.invoice_id, workflow_id

    kind, provider, _, workflow_id = await asyncio.to_thread(load)
    if not accept:
        resolution = f"rejected: the books are wrong and will be corrected in {provider}. {note}".strip()
    elif kind == "invoice_voided":
        if workflow_id is None:
            raise DifferenceDecided("the difference names no invoice of ours to void")
        try:
            await temporal.get_workflow_handle(workflow_id).execute_update(
                "void", VoidInput(reason=f"voided in {provider}. {note}".strip(), actor=actor)
            )
        except WorkflowUpdateFailedError as exc:
            raise DifferenceDecided(
                f"cannot void: {getattr(exc.cause, 'message', None) or exc.cause}"
            ) from None
        resolution = "accepted: our invoice is voided too (and the void is synced)"
    else:
        resolution = ACKNOWLEDGE_ONLY.get(kind, "acknowledged")
        if note:
            resolution = f"{resolution}. {note}"

    def store() -> dict[str, Any]:
        with session_scope(database_url) as session:
            row = repo.get_difference(session, difference_id, lock=True)
            assert row is not None
            if row.status != repo.OPEN:
                raise DifferenceDecided(f"difference {difference_id} is {row.status} already")
            repo.decide(session, row, repo.ACCEPTED if accept else repo.REJECTED, resolution, actor)
            session.flush()
            return difference_view(row)

    return await asyncio.to_thread(store)
