"""Stripe payments: `/webhooks/stripe` turns `invoice.paid`, `payment_intent.succeeded` and
`checkout.session.completed` (or `checkout.session.async_payment_succeeded`) into a payment on our invoice.

- Verified with `Stripe-Signature` (any `v1`, 300 s tolerance) on the raw body.
- Matched to our invoice through the metadata key `invoiceflow_invoice_id` (Checkout: also
  `client_reference_id`).
- One payment per Stripe payment, whichever events report it and in whatever order: the payment's
  idempotency key is the PaymentIntent id when the event names one (so `payment_intent.succeeded`,
  `checkout.session.completed` and `invoice.paid` for the same money collapse), else the object id.
  Amounts are integers in minor units, converted with the currency's exponent, never through a float.
- A Checkout session paid by an asynchronous method (`payment_status: unpaid`) records nothing until
  `checkout.session.async_payment_succeeded`.
- A payment in flight holds the invoice's reminders, ``billing.dunning.payment_hold``:
  `payment_intent.processing` and a Checkout session completed with `payment_status: unpaid` (an async
  method) put a hold keyed by the payment on the invoice; it ends when that payment is recorded,
  when `payment_intent.payment_failed` or `checkout.session.async_payment_failed` arrives, or after
  the grace period at the latest.
- Money is never refused (``services.payments``): a payment for an invoice already paid or credited
  becomes the client's credit (200, ``credited``); one we cannot match or apply (no metadata, unknown
  or void invoice, a draft, another currency) is kept in the webhook inbox as unmatched with the reason,
  answered 202, and applied by an operator's replay. Only an unreachable Temporal is a 503 (retry).
- Refunds: `refund.created` / `refund.updated` (a Refund object) and `charge.refunded` (a Charge with
  `refunds.data`) record each *succeeded* refund once, keyed by its `re_` id whichever events report it,
  against our payment of the same PaymentIntent (semantics in `persistence.refunds`). Newer API versions
  no longer embed `refunds` in the Charge: such a `charge.refunded` is ignored and the Refund events carry
  it. A refund we cannot match or apply (a closed invoice without that much unused credit) goes to the
  inbox as unmatched with the reason, answered 202: the money has left, an operator has to look.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from api.errors import unprocessable
from api.validation import BadJson, load_json
from api.webhooks import signatures
from billing.currency import normalize_currency
from billing.dunning import payment_hold
from billing.errors import MoneyError
from billing.money import from_minor
from persistence import refunds as refund_repo
from persistence import webhook_inbox as inbox
from persistence.models import Invoice, Payment
from persistence.webhook_inbox import InboundEvent
from services.db import Db
from services.errors import Conflict, Invalid, Unavailable
from services.payments import Keep, ReceivedPayment, TemporalUnavailable, receive_payment
from services.refunds import refund_payment
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import HoldSpec, RefundInput, ReleaseInput

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

METADATA_KEY = "invoiceflow_invoice_id"
PAYMENT_EVENTS = {
    "invoice.paid",
    "payment_intent.succeeded",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
}


REFUND_EVENTS = {"refund.created", "refund.updated", "charge.refunded"}


def _malformed(message: str) -> HTTPException:
    return unprocessable(["body"], message)


def parse_payment(event: dict[str, Any]) -> dict[str, Any] | None:
    """What a payment event says: our invoice id, the amount (Decimal), currency, the payment's key.
    None for events that record no payment (other types, an async Checkout still unpaid)."""
    kind = event.get("type")
    if kind not in PAYMENT_EVENTS:
        return None
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise _malformed("data.object: expected an object")
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    invoice_id = metadata.get(METADATA_KEY) or (
        obj.get("client_reference_id") if kind.startswith("checkout.") else None
    )
    if kind == "invoice.paid":
        minor, intent = obj.get("amount_paid"), obj.get("payment_intent")
    elif kind == "payment_intent.succeeded":
        minor, intent = obj.get("amount_received", obj.get("amount")), obj.get("id")
    else:
        if kind == "checkout.session.completed" and obj.get("payment_status") != "paid":
            return None  # an async method: wait for async_payment_succeeded
        minor, intent = obj.get("amount_total"), obj.get("payment_intent")
    if isinstance(minor, bool) or not isinstance(minor, int) or minor <= 0:
        raise _malformed(f"data.object amount: expected a positive integer in minor units, got {minor!r}")
    currency = obj.get("currency")
    if not isinstance(currency, str):
        raise _malformed("data.object.currency: expected a currency code")
    try:
        code = normalize_currency(currency.upper())
        amount: Decimal = from_minor(minor, code)
    except MoneyError as exc:
        raise _malformed(f"data.object.currency: {exc}") from None
    object_id = obj.get("id")
    if not isinstance(object_id, str):
        raise _malformed("data.object.id: expected a string")
    intent_id = (
        intent if isinstance(intent, str) else (intent.get("id") if isinstance(intent, dict) else None)
    )
    return {
        "invoice_id": str(invoice_id) if invoice_id else None,
        "amount": amount,
        "currency": code,
        "key": f"stripe:{intent_id or object_id}",
        "reference": intent_id or object_id,
        "paid_at": event.get("created"),
    }


IN_FLIGHT_EVENTS = {"payment_intent.processing", "checkout.session.completed"}
FAILED_EVENTS = {"payment_intent.payment_failed", "checkout.session.async_payment_failed"}


def parse_in_flight(event: dict[str, Any]) -> dict[str, Any] | None:
    """A payment that started (``hold``) or failed (``release``): our invoice id and the payment's key
    (the same key its success records the payment under). None for every other event."""
    kind = event.get("type")
    if kind not in IN_FLIGHT_EVENTS and kind not in FAILED_EVENTS:
        return None
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise _malformed("data.object: expected an object")
    if kind == "checkout.session.completed" and obj.get("payment_status") != "unpaid":
        return None  # paid at once: parse_payment records it
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    invoice_id = metadata.get(METADATA_KEY) or (
        obj.get("client_reference_id") if kind.startswith("checkout.") else None
    )
    object_id = obj.get("id")
    if not isinstance(object_id, str):
        raise _malformed("data.object.id: expected a string")
    intent = object_id if kind.startswith("payment_intent.") else obj.get("payment_intent")
    intent_id = (
        intent if isinstance(intent, str) else (intent.get("id") if isinstance(intent, dict) else None)
    )
    key = f"stripe:{intent_id or object_id}"
    created = event.get("created")
    return {
        "invoice_id": str(invoice_id) if invoice_id else None,
        "key": key,
        "hold_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"invoiceflow:payment-hold:{key}")),
        "action": "hold" if kind in IN_FLIGHT_EVENTS else "release",
        "reference": intent_id or object_id,
        "started_at": datetime.fromtimestamp(created, UTC)
        if isinstance(created, int) and not isinstance(created, bool)
        else None,
    }


async def _payment_in_flight(request: Request, event: dict[str, Any], flight: dict[str, Any]) -> JSONResponse:
    db: Db = request.app.state.db
    invoice_id = _uuid(flight["invoice_id"])

    def match(session: Session) -> tuple[Invoice | None, bool]:
        invoice = session.get(Invoice, invoice_id) if invoice_id else None
        arrived = (
            session.scalars(select(Payment.id).where(Payment.idempotency_key == flight["key"])).first()
            is not None
        )
        return invoice, arrived

    invoice, arrived = await db.run(match)
    if invoice is None:
        return JSONResponse({"status": "unmatched", "event": event["id"]}, status_code=202)
    if arrived and flight["action"] == "hold":  # out of order: the payment succeeded already
        return JSONResponse({"status": "duplicate", "event": event["id"]})
    if invoice.number is None or invoice.status in ("paid", "void", "uncollectible"):
        return JSONResponse({"status": "ignored", "event": event["id"], "invoice_status": invoice.status})
    handle = request.app.state.temporal.get_workflow_handle(invoice.workflow_id)
    if flight["action"] == "hold":
        _, until = payment_hold(flight["started_at"] or datetime.now(UTC))
        update: Any = InvoiceWorkflow.hold
        arg: Any = HoldSpec(
            hold_id=flight["hold_id"],
            kind="payment",
            reason=f"Stripe payment {flight['reference']} processing",
            resume_at=until,
            payment_key=flight["key"],
            actor="stripe",
        )
    else:
        update, arg = (
            InvoiceWorkflow.release,
            ReleaseInput(hold_ids=[flight["hold_id"]], actor="stripe", reason="payment_failed"),
        )
    try:
        await handle.execute_update(update, arg)
    except WorkflowUpdateFailedError as exc:
        # No such hold (a failure reported twice, or before its processing event): nothing to do.
        return JSONResponse(
            {
                "status": "ignored",
                "event": event["id"],
                "detail": getattr(exc.cause, "message", None) or str(exc.cause),
            }
        )
    except (RPCError, RuntimeError) as exc:
        raise HTTPException(503, detail=f"Temporal is unavailable: {exc}") from None
    return JSONResponse(
        {
            "status": "held" if flight["action"] == "hold" else "released",
            "event": event["id"],
            "invoice_id": str(invoice.id),
        }
    )


@router.post("/stripe", summary="Stripe: invoice.paid, payment_intent.succeeded, checkout.session.completed")
async def stripe(request: Request) -> JSONResponse:
    settings = request.app.state.settings
    secrets = [s.strip() for s in (settings.stripe_webhook_secret or "").split(",") if s.strip()]
    if not secrets:
        raise HTTPException(
            404, detail="the stripe webhook is not configured (INVOICEFLOW_STRIPE_WEBHOOK_SECRET)"
        )
    body = await request.body()
    try:
        signatures.verify_stripe(request.headers, body, secrets, now=time.time())
    except signatures.SignatureError as exc:
        raise HTTPException(401, detail={"reason": exc.reason, "message": str(exc)}) from None
    try:
        event = load_json(body)
    except BadJson as exc:
        raise _malformed(str(exc)) from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise _malformed("body: a Stripe event has a string id and type")
    if event["type"] in REFUND_EVENTS:
        return await _refunds(request, event)
    flight = parse_in_flight(event)
    if flight is not None:
        return await _payment_in_flight(request, event, flight)
    payment = parse_payment(event)
    if payment is None:
        return JSONResponse({"status": "ignored", "type": event["type"]})
    paid_at = datetime.fromtimestamp(payment["paid_at"], UTC) if isinstance(payment["paid_at"], int) else None
    received = ReceivedPayment(
        invoice_id=_uuid(payment["invoice_id"]),
        amount=payment["amount"],
        currency=payment["currency"],
        key=payment["key"],
        method="stripe",
        reference=payment["reference"],
        actor="stripe",
        received_at=paid_at,
        invoice_ref=payment["invoice_id"] or "",
    )
    try:
        receipt = await receive_payment(
            request.app.state.db,
            request.app.state.temporal,
            received,
            keep=Keep("stripe", event["type"], event),
            max_amount=request.app.state.settings.max_amount,
        )
    except TemporalUnavailable as exc:
        raise HTTPException(503, detail=f"Temporal is unavailable: {exc}") from None
    if receipt.status == "kept":  # the money waits for an operator in the inbox: accepted, not refused
        return JSONResponse(
            {"status": "unmatched", "event": event["id"], "detail": receipt.note}, status_code=202
        )
    return JSONResponse(
        {
            "status": receipt.status,
            "event": event["id"],
            "invoice_id": str(receipt.invoice_id),
            "invoice_status": receipt.invoice_status,
        }
    )


def parse_refunds(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The succeeded refunds an event reports: ``id`` (re_), amount (Decimal), currency, the paid object's
    key (PaymentIntent id, else charge id). Pending, failed and canceled refunds record nothing yet."""
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise _malformed("data.object: expected an object")
    if event["type"] == "charge.refunded":
        listed = obj.get("refunds")
        items = listed.get("data") if isinstance(listed, dict) else None
        if not isinstance(items, list):
            return []  # newer API versions: the Refund events carry each refund
        raw = [
            dict(
                item,
                payment_intent=item.get("payment_intent") or obj.get("payment_intent"),
                charge=item.get("charge") or obj.get("id"),
                currency=item.get("currency") or obj.get("currency"),
            )
            for item in items
            if isinstance(item, dict)
        ]
    else:
        raw = [obj]
    found: list[dict[str, Any]] = []
    for item in raw:
        if item.get("status") != "succeeded":
            continue
        refund_id, minor, currency = item.get("id"), item.get("amount"), item.get("currency")
        if not isinstance(refund_id, str):
            raise _malformed("refund id: expected a string")
        if isinstance(minor, bool) or not isinstance(minor, int) or minor <= 0:
            raise _malformed(f"refund amount: expected a positive integer in minor units, got {minor!r}")
        if not isinstance(currency, str):
            raise _malformed("refund currency: expected a currency code")
        try:
            code = normalize_currency(currency.upper())
            amount = from_minor(minor, code)
        except MoneyError as exc:
            raise _malformed(f"refund currency: {exc}") from None
        intent, charge = item.get("payment_intent"), item.get("charge")
        intent_id = (
            intent if isinstance(intent, str) else (intent.get("id") if isinstance(intent, dict) else None)
        )
        charge_id = (
            charge if isinstance(charge, str) else (charge.get("id") if isinstance(charge, dict) else None)
        )
        if not (intent_id or charge_id):
            raise _malformed("refund: names neither a payment_intent nor a charge")
        found.append(
            {
                "id": refund_id,
                "amount": amount,
                "currency": code,
                "payment_keys": [f"stripe:{k}" for k in (intent_id, charge_id) if k],
            }
        )
    return found


async def _refunds(request: Request, event: dict[str, Any]) -> JSONResponse:
    db: Db = request.app.state.db
    results: list[dict[str, str]] = []
    for refund in parse_refunds(event):

        def match(session: Session, refund: dict[str, Any] = refund) -> Payment | None:
            if refund_repo.find(session, f"stripe-refund:{refund['id']}") is not None:
                return None
            return session.scalars(
                select(Payment).where(Payment.idempotency_key.in_(refund["payment_keys"]))
            ).first()

        def park(session: Session, note: str, refund: dict[str, Any] = refund) -> None:
            row = inbox.record(
                session,
                InboundEvent(
                    "stripe",
                    f"{event['id']}:{refund['id']}",
                    "refund",
                    "stripe",
                    refund["id"],
                    summary={"type": event["type"], "amount": str(refund["amount"])},
                ),
                event,
            )
            inbox.mark(session, row.id, "unmatched", note=note[:2000])

        payment = await db.run(match)
        if payment is None:
            if await db.run(lambda s, r=refund: refund_repo.find(s, f"stripe-refund:{r['id']}")) is not None:
                results.append({"refund": refund["id"], "status": "duplicate"})
                continue
            await db.run(lambda s: park(s, "no payment of ours for this refund's payment_intent/charge"))
            results.append({"refund": refund["id"], "status": "unmatched"})
            continue
        if refund["currency"] != payment.currency:
            raise _malformed(
                f"currency: the refund is in {refund['currency']}, the payment in {payment.currency}"
            )
        try:
            outcome = await refund_payment(
                db,
                request.app.state.temporal,
                payment.invoice_id,
                RefundInput(
                    payment_id=str(payment.id),
                    amount=str(refund["amount"]),
                    idempotency_key=f"stripe-refund:{refund['id']}",
                    reason="refunded in Stripe",
                    reference=refund["id"],
                    actor="stripe",
                ),
            )
        except (Conflict, Invalid) as exc:
            await db.run(lambda s, note=exc.message: park(s, f"refund not applied: {note}"))
            results.append({"refund": refund["id"], "status": "unmatched"})
            continue
        except (Unavailable, RPCError, RuntimeError) as exc:
            raise HTTPException(503, detail=f"Temporal is unavailable: {exc}") from None
        results.append(
            {
                "refund": refund["id"],
                "status": "duplicate" if outcome.duplicate else "recorded",
                "invoice_status": outcome.status,
            }
        )
    if not results:
        return JSONResponse({"status": "ignored", "type": event["type"], "event": event["id"]})
    unmatched = any(r["status"] == "unmatched" for r in results)
    return JSONResponse(
        {"status": "processed", "event": event["id"], "refunds": results},
        status_code=202 if unmatched else 200,
    )


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
