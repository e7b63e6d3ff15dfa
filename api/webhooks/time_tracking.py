"""Time-tracking webhooks: Toggl Track and Clockify time entries become a project's time entries.

Both go the receivers' way (`api.webhooks.receivers`): verify the raw body, normalise, record and route
in the webhook inbox in one transaction, answer; the inbox dispatcher hands a ``time_logged`` trigger to
the project's workflow, whose billing activity stores the entry (deduplicated on the tool's entry id)
and bills it when the project's threshold is reached.

- **Toggl Track** signs the raw body: ``X-Webhook-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``
  with the subscription's secret; a new subscription is validated with a ``ping`` event whose
  ``validation_code`` is echoed back. Time entries come as ``metadata.model = time_entry`` with the
  entry in ``payload`` (``duration`` in seconds, negative while the timer runs).
- **Clockify** sends the webhook's own token in ``Clockify-Signature`` (compared in constant time with
  the configured tokens) and the event in ``Clockify-Webhook-Event-Type``; ``NEW_TIME_ENTRY`` and
  ``TIMER_STOPPED`` carry the entry (``timeInterval`` with start, end and an ISO 8601 duration).

A tool's project is linked to an invoiceflow project with the ref ``toggl_project`` / ``clockify_project``
in the project's ``external_refs``. Hours are the tracked seconds / 3600, rounded half-up to 0.01 h.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.webhooks import receivers
from api.webhooks.normalize import MalformedPayload
from api.webhooks.signatures import SignatureError
from persistence.webhook_inbox import InboundEvent
from workflows.payloads import TriggerKind

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

TOGGL_SIGNATURE_HEADER = "X-Webhook-Signature-256"
CLOCKIFY_SIGNATURE_HEADER = "Clockify-Signature"
CLOCKIFY_EVENT_HEADER = "Clockify-Webhook-Event-Type"
CLOCKIFY_TIME_EVENTS = {"NEW_TIME_ENTRY", "TIMER_STOPPED"}
HUNDREDTH = Decimal("0.01")
_ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$")


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower())
    if not value:
        raise SignatureError("missing_signature", f"{name} header is missing")
    return value


def verify_toggl(headers: Mapping[str, str], body: bytes, secrets: list[str]) -> None:
    value = _header(headers, TOGGL_SIGNATURE_HEADER).strip()
    if not value.startswith("sha256="):
        raise SignatureError("bad_signature", f"{TOGGL_SIGNATURE_HEADER}: expected sha256=<hex>")
    given = value.removeprefix("sha256=").lower()
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError("bad_signature", "Toggl signature does not match")


def sign_toggl(body: bytes, secret: str) -> dict[str, str]:
    return {TOGGL_SIGNATURE_HEADER: "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def verify_clockify(headers: Mapping[str, str], secrets: list[str]) -> None:
    given = _header(headers, CLOCKIFY_SIGNATURE_HEADER).strip().encode()
    if not any(hmac.compare_digest(given, s.encode()) for s in secrets):
        raise SignatureError("bad_signature", "Clockify-Signature is not this webhook's token")


def _hours(seconds: Decimal) -> Decimal:
    return (seconds / Decimal(3600)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)


def _text(value: Any, path: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, dict | list):
        raise MalformedPayload(f"{path}: required")
    return str(value).strip()


def _date_of(value: Any, path: str) -> str:
    try:
        return datetime.fromisoformat(_text(value, path).replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        raise MalformedPayload(f"{path}: not an ISO 8601 time") from None


def toggl(payload: Any) -> list[InboundEvent]:
    if not isinstance(payload, dict):
        raise MalformedPayload("body: expected an object")
    metadata = payload.get("metadata") or {}
    entry = payload.get("payload")
    if not isinstance(metadata, dict) or metadata.get("model") != "time_entry" or not isinstance(entry, dict):
        return []
    if metadata.get("action") not in ("created", "updated"):
        return []
    duration = entry.get("duration")
    if not isinstance(duration, int) or isinstance(duration, bool):
        raise MalformedPayload("payload.duration: expected whole seconds")
    if duration <= 0 or entry.get("stop") is None:
        return []  # a running timer bills nothing until it stops
    project = _text(entry.get("project_id"), "payload.project_id")
    entry_id = _text(entry.get("id"), "payload.id")
    summary = {
        "external_id": entry_id,
        "hours": str(_hours(Decimal(duration))),
        "date": _date_of(entry.get("start"), "payload.start"),
        "person": str(entry.get("user_name") or entry.get("user_id") or "unknown"),
        "description": str(entry.get("description") or "Time"),
        "billable": "false" if entry.get("billable") is False else "true",
    }
    event_id = _text(payload.get("event_id"), "event_id")
    return [
        InboundEvent(
            "toggl", f"{event_id}:{entry_id}", TriggerKind.TIME_LOGGED, "toggl_project", project, summary
        )
    ]


def _seconds(interval: Mapping[str, Any]) -> Decimal:
    if interval.get("start") and interval.get("end"):
        try:
            start = datetime.fromisoformat(str(interval["start"]).replace("Z", "+00:00"))
            end = datetime.fromisoformat(str(interval["end"]).replace("Z", "+00:00"))
        except ValueError:
            raise MalformedPayload("timeInterval: start and end must be ISO 8601 times") from None
        return Decimal(int((end - start).total_seconds()))
    match = _ISO_DURATION.match(str(interval.get("duration") or ""))
    if match is None:
        raise MalformedPayload("timeInterval.duration: expected an ISO 8601 duration such as PT8H")
    h, m, s = (int(g or 0) for g in match.groups())
    return Decimal(h * 3600 + m * 60 + s)


def clockify(payload: Any, event_type: str) -> list[InboundEvent]:
    if event_type not in CLOCKIFY_TIME_EVENTS:
        return []
    if not isinstance(payload, dict):
        raise MalformedPayload("body: expected an object")
    interval = payload.get("timeInterval")
    if not isinstance(interval, dict):
        raise MalformedPayload("timeInterval: required")
    if not interval.get("end"):
        return []  # still running
    seconds = _seconds(interval)
    if seconds <= 0:
        return []
    entry_id = _text(payload.get("id"), "id")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    summary = {
        "external_id": entry_id,
        "hours": str(_hours(seconds)),
        "date": _date_of(interval.get("start"), "timeInterval.start"),
        "person": str(user.get("name") or payload.get("userId") or "unknown"),
        "description": str(payload.get("description") or "Time"),
        "billable": "false" if payload.get("billable") is False else "true",
    }
    project = _text(payload.get("projectId"), "projectId")
    return [
        InboundEvent("clockify", f"{entry_id}", TriggerKind.TIME_LOGGED, "clockify_project", project, summary)
    ]


@router.post("/toggl", summary="Toggl Track: time entry created or updated (X-Webhook-Signature-256)")
async def toggl_webhook(request: Request) -> Response:
    secrets = receivers._secret(request, "toggl")
    body = await request.body()
    try:
        verify_toggl(request.headers, body, secrets)
    except SignatureError as exc:
        raise receivers._unauthorized(exc) from None
    payload = receivers._json(body)
    if isinstance(payload, dict) and payload.get("payload") == "ping":
        return JSONResponse({"validation_code": payload.get("validation_code")})
    events = receivers._normalise(lambda: toggl(payload))
    return receivers._respond(await receivers.ingest(*receivers._deps(request), events, payload))


@router.post("/clockify", summary="Clockify: new time entry or timer stopped (Clockify-Signature token)")
async def clockify_webhook(request: Request) -> Response:
    secrets = receivers._secret(request, "clockify")
    try:
        verify_clockify(request.headers, secrets)
    except SignatureError as exc:
        raise receivers._unauthorized(exc) from None
    payload = receivers._json(await request.body())
    event_type = request.headers.get(CLOCKIFY_EVENT_HEADER, "")
    events = receivers._normalise(lambda: clockify(payload, event_type))
    return receivers._respond(await receivers.ingest(*receivers._deps(request), events, payload))
