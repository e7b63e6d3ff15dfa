"""Webhook receivers: `/webhooks/<provider>` for CRMs, PM tools, e-signature and the generic scheme.

Every receiver does the same four steps, in this order, so nothing is lost and nothing bills twice:

1. **Verify** the provider's real scheme on the raw body (constant-time compare, the provider's replay
   window). A provider with no secret configured answers 404; a bad or stale signature 401.
2. **Parse and normalise** the body into `InboundEvent`s (422 naming the field when it is not the shape
   the provider sends; 200 with ``ignored`` for deliveries that bill nothing).
3. **Record and route**, in one transaction: each event goes into the webhook inbox (deduplicated on
   the provider's delivery/event id) and is routed to its project; an event no project knows is kept as
   ``unmatched`` (202).
4. **Answer** 2xx (``accepted``) as soon as that transaction commits: the event is durably accepted.
   The inbox dispatcher (`api.webhooks.dispatcher`, in the API or a process of its own) is woken and
   hands it to Temporal with signal-with-start on the project's workflow, then marks it dispatched. No
   Temporal call is on the request's path: while Temporal is unreachable the answer is still 2xx, the event
   waits ``received`` in the inbox (with the error in its note) and the dispatcher retries with backoff.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.orm import Session

from api.deps import Db
from api.errors import unprocessable
from api.validation import BadJson, load_json
from api.webhooks import jira_worklogs, normalize, signatures
from api.webhooks.dispatcher import InboxDispatcher
from api.webhooks.normalize import MalformedPayload
from core.settings import Settings, split_secrets
from integrations import asana as asana_api
from persistence import webhook_inbox as inbox
from persistence.models import WebhookSecret
from persistence.webhook_inbox import InboundEvent

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

# Replay windows for signed timestamps the provider does not bound itself: longer than the provider's
# own retry period (so a legitimate late retry still lands), short enough that an old capture is refused.
JIRA_MAX_AGE_S = 2 * 86400
DOCUSIGN_MAX_AGE_S = 7 * 86400
DROPBOX_SIGN_MAX_AGE_S = 4 * 86400
DROPBOX_SIGN_REPLY = "Hello API Event Received"


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _secret(request: Request, provider: str) -> list[str]:
    value = getattr(_settings(request), f"{provider}_webhook_secret")
    secrets = split_secrets(value)
    if not secrets:
        raise HTTPException(
            404,
            detail=f"the {provider} webhook is not configured "
            f"(INVOICEFLOW_{provider.upper()}_WEBHOOK_SECRET)",
        )
    return secrets


def _unauthorized(exc: signatures.SignatureError) -> HTTPException:
    return HTTPException(401, detail={"reason": exc.reason, "message": str(exc)})


def _malformed(message: str) -> HTTPException:
    return unprocessable(["body"], message)


def _json(body: bytes) -> Any:
    """Parsed only after the signature holds; bounded depth, finite numbers, storable text."""
    try:
        return load_json(body)
    except BadJson as exc:
        raise _malformed(str(exc)) from None


def _check_age(seconds_ago: float, limit: float, provider: str) -> None:
    if seconds_ago > limit:
        raise HTTPException(
            401, detail={"reason": "stale", "message": f"{provider} event is older than {int(limit)} s"}
        )


def _normalise(fn: Callable[[], list[InboundEvent]]) -> list[InboundEvent]:
    try:
        return fn()
    except MalformedPayload as exc:
        raise _malformed(str(exc)) from None


async def ingest(
    db: Db, dispatcher: InboxDispatcher, events: list[InboundEvent], payload: Any
) -> dict[str, Any]:
    """Record and route the events in one transaction, then wake the dispatcher; the result lists what
    became of each (for the 2xx body): ``accepted`` (routed, the dispatcher hands it over), ``duplicate``
    (already handed over) or ``unmatched``."""

    notify = dispatcher.notifies_processes()

    def record(session: Session) -> list[dict[str, str]]:
        results: dict[int, dict[str, str]] = {}
        # Rows are locked in one order whatever the provider's order, so two batches cannot deadlock.
        for i, event in sorted(enumerate(events), key=lambda e: (e[1].provider, e[1].dedupe_key)):
            row = inbox.record_routed(session, event, payload, notify=notify)
            if row.status == "dispatched":
                results[i] = {"event": str(row.id), "status": "duplicate"}
            elif row.status == "unmatched":
                results[i] = {"event": str(row.id), "status": "unmatched"}
            else:
                results[i] = {"event": str(row.id), "status": "accepted", "project_id": str(row.project_id)}
        return [results[i] for i in range(len(events))]

    results = await db.run(record) if events else []
    if any(r["status"] == "accepted" for r in results):
        dispatcher.wake()
    return {"status": "ok" if events else "ignored", "events": results}


def _respond(result: dict[str, Any]) -> JSONResponse:
    unmatched = any(r["status"] == "unmatched" for r in result["events"])
    return JSONResponse(result, status_code=202 if unmatched else 200)


def _deps(request: Request) -> tuple[Db, InboxDispatcher]:
    return request.app.state.db, request.app.state.dispatcher


async def _receive(
    request: Request,
    provider: str,
    verify: Callable[[bytes, list[str]], None],
    normalise: Callable[[Any], list[InboundEvent]],
    check: Callable[[Any], None] | None = None,
) -> Response:
    """The common path: secret → verify the raw body → parse → (replay window) → normalise → ingest."""
    secrets = _secret(request, provider)
    body = await request.body()
    try:
        verify(body, secrets)
    except signatures.SignatureError as exc:
        raise _unauthorized(exc) from None
    payload = _json(body)
    if check is not None:
        check(payload)
    events = _normalise(lambda: normalise(payload))
    return _respond(await ingest(*_deps(request), events, payload))


def _signed_timestamp_check(
    field: str, limit: float, provider: str, scale: float = 1.0
) -> Callable[[Any], None]:
    def check(payload: Any) -> None:
        if isinstance(payload, dict) and isinstance(payload.get(field), int):
            _check_age(time.time() - payload[field] / scale, limit, provider)

    return check


# --- CRM -------------------------------------------------------------------------------------------


@router.post("/hubspot", summary="HubSpot: deal moved to a won stage (signature v3)")
async def hubspot(request: Request) -> Response:
    settings = _settings(request)
    url = (
        settings.public_url.rstrip("/")
        + request.url.path
        + (f"?{request.url.query}" if request.url.query else "")
    )
    won = set(split_secrets(settings.hubspot_won_stages))
    return await _receive(
        request,
        "hubspot",
        lambda body, secrets: signatures.verify_hubspot_v3(
            request.headers, body, secrets, method="POST", url=url, now=time.time()
        ),
        lambda payload: normalize.hubspot(payload, won),
    )


@router.post("/pipedrive", summary="Pipedrive: deal won (webhooks v2, HTTP basic auth)")
async def pipedrive(request: Request) -> Response:
    user = _settings(request).pipedrive_webhook_user
    return await _receive(
        request,
        "pipedrive",
        lambda _body, secrets: signatures.verify_pipedrive_basic_auth(
            request.headers, username=user, password=secrets
        ),
        normalize.pipedrive,
    )


# --- PM tools --------------------------------------------------------------------------------------


@router.post(
    "/jira", summary="Jira: issue or epic moved to a done status, worklogs as time entries (X-Hub-Signature)"
)
async def jira(request: Request) -> Response:
    done = set(split_secrets(_settings(request).jira_done_statuses))
    return await _receive(
        request,
        "jira",
        lambda body, secrets: signatures.verify_jira(request.headers, body, secrets),
        lambda payload: (
            jira_worklogs.worklog(payload, request.headers)
            if jira_worklogs.is_worklog(payload)
            else normalize.jira(payload, request.headers, done)
        ),
        check=_signed_timestamp_check("timestamp", JIRA_MAX_AGE_S, "Jira", scale=1000),
    )


@router.post(
    "/linear", summary="Linear: issue or project milestone completed (Linear-Signature, 60 s window)"
)
async def linear(request: Request) -> Response:
    return await _receive(
        request,
        "linear",
        lambda body, secrets: signatures.verify_linear(request.headers, body, secrets, now=time.time()),
        lambda payload: normalize.linear(payload, request.headers),
    )


@router.post("/github", summary="GitHub: milestone closed (X-Hub-Signature-256)")
async def github(request: Request) -> Response:
    return await _receive(
        request,
        "github",
        lambda body, secrets: signatures.verify_github(request.headers, body, secrets),
        lambda payload: normalize.github(payload, request.headers),
    )


@router.post("/asana", summary="Asana: X-Hook-Secret handshake, then task completed (X-Hook-Signature)")
async def asana(request: Request, token: str = "") -> Response:
    configured = _secret(request, "asana")
    if not any(hmac.compare_digest(token.encode(), c.encode()) for c in configured):
        raise HTTPException(
            401,
            detail={
                "reason": "bad_token",
                "message": "the Asana target URL needs ?token=<INVOICEFLOW_ASANA_WEBHOOK_SECRET>",
            },
        )
    db: Db = request.app.state.db
    handshake = signatures.asana_handshake_response(request.headers)
    if handshake is not None:
        secret = handshake["X-Hook-Secret"]

        def store(session: Session) -> None:
            exists = session.query(WebhookSecret).filter_by(provider="asana", secret=secret).first()
            if exists is None:
                session.add(WebhookSecret(provider="asana", secret=secret))

        await db.run(store)
        return Response(status_code=204, headers=handshake)
    body = await request.body()
    hook_secrets = await db.run(
        lambda s: [row.secret for row in s.query(WebhookSecret).filter_by(provider="asana").all()]
    )
    if not hook_secrets:
        raise HTTPException(
            401, detail={"reason": "no_handshake", "message": "no Asana handshake has been completed"}
        )
    try:
        signatures.verify_asana(request.headers, body, hook_secrets)
    except signatures.SignatureError as exc:
        raise _unauthorized(exc) from None
    payload = _json(body)
    events = _normalise(lambda: normalize.asana(payload))
    return _respond(await ingest(*_deps(request), await _completed_tasks(request, events), payload))


async def _completed_tasks(request: Request, events: list[InboundEvent]) -> list[InboundEvent]:
    """Asana says only that `completed` changed: keep the events whose task is completed now."""
    settings = _settings(request)
    if not events:
        return events
    if not settings.asana_api_token:
        # Cannot tell completing from un-completing: keep the events for an operator, bill nothing.
        return [
            InboundEvent(
                e.provider,
                e.dedupe_key,
                e.kind,
                e.system,
                e.ref,
                e.summary,
                e.hints | {"unconfirmed": "set INVOICEFLOW_ASANA_API_TOKEN to confirm completion"},
            )
            for e in events
        ]
    kept = []
    for event in events:
        try:
            task = await asana_api.fetch_task(
                settings.asana_api_base_url, settings.asana_api_token, event.ref
            )
        except asana_api.AsanaError as exc:
            raise HTTPException(503, detail=f"cannot confirm Asana task {event.ref}: {exc}") from None
        if task is not None and task.completed:
            kept.append(event)
    return kept


# --- e-signature -----------------------------------------------------------------------------------


def _docusign_age(payload: Any) -> None:
    generated = payload.get("generatedDateTime") if isinstance(payload, dict) else None
    if isinstance(generated, str):
        try:
            at = datetime.fromisoformat(generated[:26].rstrip("Z") + "+00:00")
        except ValueError:
            raise _malformed("generatedDateTime: not an ISO 8601 time") from None
        _check_age(time.time() - at.timestamp(), DOCUSIGN_MAX_AGE_S, "DocuSign")


@router.post("/docusign", summary="DocuSign Connect: envelope completed (X-DocuSign-Signature-N)")
async def docusign(request: Request) -> Response:
    return await _receive(
        request,
        "docusign",
        lambda body, secrets: signatures.verify_docusign(request.headers, body, secrets),
        normalize.docusign,
        check=_docusign_age,
    )


@router.post("/dropbox-sign", summary="Dropbox Sign: signature request all signed (event_hash)")
async def dropbox_sign(request: Request) -> Response:
    secrets = _secret(request, "dropbox_sign")
    form = await request.form()
    raw = form.get("json")
    if not isinstance(raw, str):
        raise _malformed("json: Dropbox Sign posts multipart/form-data with a `json` field")
    payload = _json(raw.encode())
    if not isinstance(payload, dict):
        raise _malformed("json: expected an object")
    try:
        signatures.verify_dropbox_sign(payload, secrets)
    except signatures.SignatureError as exc:
        raise _unauthorized(exc) from None
    event_time = str((payload.get("event") or {}).get("event_time", ""))
    if event_time.isdigit():
        _check_age(time.time() - int(event_time), DROPBOX_SIGN_MAX_AGE_S, "Dropbox Sign")
    events = _normalise(lambda: normalize.dropbox_sign(payload))
    await ingest(*_deps(request), events, payload)
    # Dropbox Sign retries for days unless the reply is exactly this text.
    return PlainTextResponse(DROPBOX_SIGN_REPLY)


@router.post("/pandadoc", summary="PandaDoc: document completed (?signature=)")
async def pandadoc(request: Request, signature: str | None = None) -> Response:
    return await _receive(
        request,
        "pandadoc",
        lambda body, secrets: signatures.verify_pandadoc(signature, body, secrets, headers=request.headers),
        lambda payload: normalize.pandadoc(payload, request.headers),
    )


# --- generic ---------------------------------------------------------------------------------------


@router.post(
    "/generic", summary="Any tool: the generic signed webhook (X-Invoiceflow-Signature, 300 s window)"
)
async def generic(request: Request) -> Response:
    return await _receive(
        request,
        "generic",
        lambda body, secrets: signatures.verify_generic(request.headers, body, secrets, now=time.time()),
        normalize.generic,
    )
