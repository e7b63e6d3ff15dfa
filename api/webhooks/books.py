"""The books' webhooks: ``/webhooks/xero``, ``/webhooks/qbo`` and ``/webhooks/freshbooks``.

Each provider's scheme is verified on the raw body (``api.webhooks.books_signatures``); an event is
thin (which invoice, payment or credit note changed), so it is only recorded: one row per event in the
webhook inbox (``kind`` ``books.change``, deduplicated on the provider's event identity) in one
transaction, answered 2xx on commit. The inbox dispatcher's books lane hands each event to the
organisation's BooksInboundWorkflow, which reads the object from the provider's API and records what
it finds. A receiver whose secret is not set answers 404; a bad signature 401; an event dated outside
the replay window 401 (``stale``); a body not of the provider's shape 422 naming the field. Events of
another organisation than the connected one are answered 200 and dropped.

- Xero answers its "intent to receive" check (a body without events) with 200 when the signature is
  right and 401 when not, with empty bodies, well within its 5 s.
- FreshBooks: the first POST to a new callback is ``callback.verify`` with a verifier; it is sent back
  through FreshBooks' API (which accepts only the verifier it issued, so a forged one is 401) and kept,
  so the callback's later deliveries verify with it as well as with the configured ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from accounting.connection import open_connection
from accounting.errors import AccountingError
from accounting.tokens import ConnectionProblem, resolve_tenant
from api.deps import Db
from api.webhooks import books_signatures as sig
from api.webhooks.signatures import SignatureError
from core.settings import Settings, split_secrets
from persistence import webhook_inbox as inbox
from persistence.books_inbound import BOOKS_EVENT
from persistence.models import WebhookSecret
from persistence.webhook_inbox import InboundEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

MAX_AGE_S = 2 * 86400  # longer than the providers' retry periods, short enough to refuse an old capture
XERO_CATEGORIES = {"INVOICE": "invoice", "CREDITNOTE": "credit_note", "CONTACT": "contact"}
QBO_ENTITIES = {"payment": "payment", "invoice": "invoice", "creditmemo": "credit_note"}
FRESHBOOKS_NOUNS = {"payment": "payment", "invoice": "invoice", "credit_note": "credit_note"}


@dataclass(frozen=True)
class Change:
    tenant_id: str
    category: str
    resource_id: str
    dedupe_key: str
    event: str


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _keys(request: Request, setting: str) -> list[str]:
    keys = split_secrets(getattr(_settings(request), setting))
    if not keys:
        raise HTTPException(404, detail=f"this webhook is not configured (INVOICEFLOW_{setting.upper()})")
    return keys


def _unauthorized(exc: SignatureError) -> HTTPException:
    return HTTPException(401, detail={"reason": exc.reason, "message": str(exc)})


def _malformed(field: str, message: str) -> HTTPException:
    return HTTPException(
        422, detail=[{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}]
    )


def _stale(who: str, when: Any, field: str) -> None:
    try:
        at = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
    except ValueError:
        raise _malformed(field, "not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise _malformed(field, "an ISO 8601 time with its UTC offset")
    if time.time() - at.timestamp() > MAX_AGE_S:
        raise HTTPException(
            401, detail={"reason": "stale", "message": f"{who} event is older than {MAX_AGE_S} s"}
        )


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _malformed("body", f"not JSON: {exc}") from None


async def _our_tenant(settings: Settings, provider: str) -> str | None:
    if settings.accounting_provider != provider:
        return None
    try:
        return await asyncio.to_thread(resolve_tenant, settings)
    except ConnectionProblem:
        return None


async def _record(request: Request, provider: str, changes: list[Change], payload: Any) -> dict[str, Any]:
    """Keep the connected organisation's events in the inbox, in one transaction; wake the dispatcher."""
    tenant = await _our_tenant(_settings(request), provider)
    mine = [c for c in changes if tenant is not None and c.tenant_id == tenant and c.category != "contact"]

    def record(session: Session) -> list[dict[str, str]]:
        results = []
        for change in sorted(mine, key=lambda c: c.dedupe_key):
            row = inbox.record(
                session,
                InboundEvent(
                    provider,
                    change.dedupe_key[:300],
                    BOOKS_EVENT,
                    provider,
                    change.resource_id,
                    summary={"category": change.category, "tenant": change.tenant_id, "event": change.event},
                ),
                payload,
            )
            results.append(
                {"event": str(row.id), "status": "duplicate" if row.status == "dispatched" else "accepted"}
            )
        if any(r["status"] == "accepted" for r in results):
            request.app.state.dispatcher.wake_in(session)
        return results

    db: Db = request.app.state.db
    results = await db.run(record) if mine else []
    if any(r["status"] == "accepted" for r in results):
        request.app.state.dispatcher.wake()
    return {"status": "ok" if mine else "ignored", "events": results}


# --- Xero ------------------------------------------------------------------------------------------


def xero_changes(payload: Any) -> list[Change]:
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise _malformed("events", "Xero sends an object with an events list")
    changes = []
    for index, event in enumerate(payload["events"]):
        where = f"events.{index}"
        if not isinstance(event, dict):
            raise _malformed(where, "expected an object")
        for name in ("resourceId", "eventCategory", "eventType", "tenantId", "eventDateUtc"):
            if not isinstance(event.get(name), str) or not event[name]:
                raise _malformed(f"{where}.{name}", "required string")
        _stale("Xero", event["eventDateUtc"], f"{where}.eventDateUtc")
        category = XERO_CATEGORIES.get(event["eventCategory"].upper())
        if category is None:
            continue
        changes.append(
            Change(
                event["tenantId"],
                category,
                event["resourceId"],
                ":".join(
                    event[n] for n in ("tenantId", "eventCategory", "resourceId", "eventType", "eventDateUtc")
                ),
                f"{event['eventCategory']}.{event['eventType']}",
            )
        )
    return changes


@router.post("/xero", summary="Xero: invoice and credit note events (x-xero-signature, intent to receive)")
async def xero(request: Request) -> Response:
    keys = _keys(request, "xero_webhook_key")
    body = await request.body()
    try:
        sig.verify_xero(request.headers, body, keys)
    except SignatureError:
        return Response(status_code=401)  # Xero wants empty bodies, right or wrong
    payload = _json(body)
    changes = xero_changes(payload)
    if changes:
        await _record(request, "xero", changes, payload)
    return Response(status_code=200)


# --- QuickBooks Online -----------------------------------------------------------------------------


def qbo_changes(payload: Any) -> list[Change]:
    """The ``eventNotifications`` format, and the CloudEvents list Intuit is moving to."""
    changes = []
    if isinstance(
        payload, list
    ):  # CloudEvents: type "qbo.payment.created.v1", intuitentityid, intuitaccountid
        for index, event in enumerate(payload):
            where = str(index)
            if not isinstance(event, dict):
                raise _malformed(where, "expected an object")
            for name in ("id", "type", "intuitentityid", "intuitaccountid", "time"):
                if not isinstance(event.get(name), str) or not event[name]:
                    raise _malformed(f"{where}.{name}", "required string")
            _stale("QuickBooks Online", event["time"], f"{where}.time")
            parts = event["type"].split(".")
            category = QBO_ENTITIES.get(parts[1].lower()) if len(parts) > 2 else None
            if category:
                changes.append(
                    Change(
                        event["intuitaccountid"],
                        category,
                        event["intuitentityid"],
                        event["id"],
                        event["type"],
                    )
                )
        return changes
    if not isinstance(payload, dict) or not isinstance(payload.get("eventNotifications"), list):
        raise _malformed("eventNotifications", "QuickBooks Online sends an eventNotifications list")
    for index, notification in enumerate(payload["eventNotifications"]):
        where = f"eventNotifications.{index}"
        if not isinstance(notification, dict) or not isinstance(notification.get("realmId"), str):
            raise _malformed(f"{where}.realmId", "required string")
        entities = (notification.get("dataChangeEvent") or {}).get("entities")
        if not isinstance(entities, list):
            raise _malformed(f"{where}.dataChangeEvent.entities", "required list")
        for number, entity in enumerate(entities):
            at = f"{where}.dataChangeEvent.entities.{number}"
            if not isinstance(entity, dict):
                raise _malformed(at, "expected an object")
            for name in ("name", "id", "operation", "lastUpdated"):
                if not isinstance(entity.get(name), str) or not entity[name]:
                    raise _malformed(f"{at}.{name}", "required string")
            _stale("QuickBooks Online", entity["lastUpdated"], f"{at}.lastUpdated")
            category = QBO_ENTITIES.get(entity["name"].lower())
            if category:
                key = ":".join(
                    [
                        notification["realmId"],
                        entity["name"],
                        entity["id"],
                        entity["operation"],
                        entity["lastUpdated"],
                    ]
                )
                changes.append(
                    Change(
                        notification["realmId"],
                        category,
                        entity["id"],
                        key,
                        f"{entity['name']}.{entity['operation']}",
                    )
                )
    return changes


@router.post("/qbo", summary="QuickBooks Online: Payment, Invoice and CreditMemo changes (intuit-signature)")
async def qbo(request: Request) -> Response:
    keys = _keys(request, "qbo_webhook_verifier")
    body = await request.body()
    try:
        sig.verify_qbo(request.headers, body, keys)
    except SignatureError as exc:
        raise _unauthorized(exc) from None
    payload = _json(body)
    return JSONResponse(await _record(request, "qbo", qbo_changes(payload), payload))


# --- FreshBooks ------------------------------------------------------------------------------------


async def _freshbooks_verifiers(request: Request, configured: list[str]) -> list[str]:
    db: Db = request.app.state.db
    stored = await db.run(
        lambda s: [r.secret for r in s.query(WebhookSecret).filter_by(provider="freshbooks").all()]
    )
    return configured + stored


async def _freshbooks_handshake(request: Request, form: dict[str, str]) -> Response:
    """Send the verifier back through the API; FreshBooks refuses one it did not issue."""
    settings = _settings(request)
    verifier, callback_id = form.get("verifier", ""), form.get("object_id", "")
    if not verifier or not callback_id.isdigit():
        raise _malformed("verifier", "callback.verify carries a verifier and the callback id (object_id)")
    tenant = await _our_tenant(settings, "freshbooks")
    if tenant is None or form.get("account_id") != tenant:
        raise HTTPException(401, detail={"reason": "unknown_account", "message": "not the connected account"})
    connection = open_connection(settings, tenant)
    try:
        await connection.connector.verify_callback(callback_id, verifier)  # type: ignore[attr-defined]
    except AccountingError as exc:
        raise HTTPException(
            401, detail={"reason": "verification_refused", "message": f"FreshBooks refused it: {exc.message}"}
        ) from None
    finally:
        await connection.aclose()

    def store(session: Session) -> None:
        if session.query(WebhookSecret).filter_by(provider="freshbooks", secret=verifier).first() is None:
            session.add(WebhookSecret(provider="freshbooks", secret=verifier))

    await request.app.state.db.run(store)
    return JSONResponse({"status": "verified", "callback_id": callback_id})


@router.post("/freshbooks", summary="FreshBooks: callback verification, then payment/invoice events")
async def freshbooks(request: Request) -> Response:
    configured = _keys(request, "freshbooks_webhook_verifier")
    body = await request.body()
    form = sig.freshbooks_form(body)
    if form.get("name") == "callback.verify":
        return await _freshbooks_handshake(request, form)
    try:
        sig.verify_freshbooks(request.headers, body, await _freshbooks_verifiers(request, configured))
    except SignatureError as exc:
        raise _unauthorized(exc) from None
    for name in ("name", "object_id", "account_id"):
        if not form.get(name):
            raise _malformed(name, "required form field")
    noun = form["name"].split(".", 1)[0]
    category = FRESHBOOKS_NOUNS.get(noun)
    changes = []
    if category:
        # FreshBooks names no event id: a redelivery within the same minute collapses, later ones are
        # read again (harmless: what they name is read from the API and keyed by its id).
        bucket = int(time.time() // 60)
        digest = hashlib.sha256(body).hexdigest()[:16]
        changes.append(
            Change(form["account_id"], category, form["object_id"], f"{digest}:{bucket}", form["name"])
        )
    return JSONResponse(await _record(request, "freshbooks", changes, dict(form)))
