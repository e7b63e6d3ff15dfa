"""ASGI middleware of the API: request ids, per-route metrics, webhook and approval-link outcomes, and
the access log (one ``http.request`` line per request; a webhook delivery's one line, ``webhook.delivery``,
has the same fields and its outcome), with secrets redacted.

It replaces uvicorn's access log (which prints raw paths, signed link tokens and ``?token=`` included)
and reads outcomes from what the app answered, so no route needs to know about metrics: a webhook's
outcome is the ``status`` of its JSON answer (or the refusal's reason), an approval link's is its page's
status code. Labels are route templates, never raw paths, so their number stays bounded."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from observability import metrics, redact

log = logging.getLogger("invoiceflow.http")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
INVOICE_IN_PATH = re.compile(r"/invoices/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")
BODY_LIMIT = 64 * 1024
REFUSALS = {401: "signature", 403: "forbidden", 404: "not_configured", 409: "conflict", 422: "malformed"}
LINK_REFUSALS = {400: "tampered", 404: "not_found", 409: "used_or_superseded", 410: "expired", 422: "invalid"}
ACCEPTED = {"accepted", "recorded", "processed", "held", "released", "ok"}


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        raw_path: str = scope.get("path", "")
        context: dict[str, str] = {"request_id": request_id}
        invoice = INVOICE_IN_PATH.search(raw_path)
        if invoice:
            context["invoice_id"] = invoice.group(1)
        watch_body = raw_path.startswith("/webhooks/")
        status = 500
        body = bytearray()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            elif message["type"] == "http.response.body" and watch_body and len(body) < BODY_LIMIT:
                body.extend(message.get("body", b"")[: BODY_LIMIT - len(body)])
            await send(message)

        with structlog.contextvars.bound_contextvars(**context):
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                self._record(scope, status, time.perf_counter() - started, bytes(body))

    def _record(self, scope: Scope, status: int, elapsed: float, body: bytes) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "GET")
        metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
        metrics.HTTP_LATENCY.labels(method, template).observe(elapsed)
        target = redact.path(scope.get("path", ""), scope.get("query_string", b"").decode("latin-1"))
        client = scope.get("client")
        access = {
            "method": method,
            "path": target,
            "route": template,
            "status": status,
            "duration_ms": round(elapsed * 1000, 1),
            "client": client[0] if client else "",
        }
        if template.startswith("/webhooks/"):
            # One line, not two: formatting and redacting a line was a tenth of a delivery's CPU.
            self._webhook(template, status, body, access)
            return
        log.info("http.request", extra=access)
        if template.startswith("/approvals/{value}") and method == "POST":
            outcome, reason = (
                ("used", "") if status == 200 else ("refused", LINK_REFUSALS.get(status, str(status)))
            )
            metrics.APPROVAL_LINKS.labels(outcome, reason).inc()
            log.info("approval_link.decision", extra={"outcome": outcome, "reason": reason, "status": status})

    def _webhook(self, template: str, status: int, body: bytes, access: dict[str, Any]) -> None:
        provider = template.removeprefix("/webhooks/").split("/")[0] or "unknown"
        answer: Any = None
        try:
            answer = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            answer = None
        outcome, reason, events = _webhook_outcome(status, answer)
        metrics.WEBHOOK_DELIVERIES.labels(provider, outcome, reason).inc()
        log.info(
            "webhook.delivery",
            extra={
                **access,
                "provider": provider,
                "outcome": outcome,
                "reason": reason,
                "status": status,
                "events": events,
            },
        )


def _webhook_outcome(status: int, answer: Any) -> tuple[str, str, list[str]]:
    """(outcome, reason, event ids) of one delivery from the receiver's answer."""
    if status >= 500:
        return "error", str(status), []
    if status >= 400:
        reason = REFUSALS.get(status, str(status))
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if isinstance(detail, dict) and isinstance(detail.get("reason"), str):
            reason = detail["reason"][:40]  # a SignatureError's reason: bad_signature, stale, ...
        return "refused", reason, []
    if not isinstance(answer, dict):
        return ("handshake" if status == 204 else "accepted"), "", []
    events = answer.get("events") if isinstance(answer.get("events"), list) else []
    ids = [str(e.get("event", "")) for e in events if isinstance(e, dict)][:20]
    statuses = {e.get("status") for e in events if isinstance(e, dict)}
    top = str(answer.get("status", ""))
    if top == "ok" and statuses:
        for candidate in ("accepted", "unmatched", "duplicate"):
            if candidate in statuses:
                return candidate, "", ids
    if top in ACCEPTED:
        return "accepted", "", ids
    if top in ("duplicate", "unmatched", "ignored"):
        return top, "", ids
    return "accepted", "", ids
