"""Jira Cloud worklogs as time entries: ``worklog_created``, ``worklog_updated``, ``worklog_deleted``.

They arrive on the Jira receiver (`api.webhooks.receivers.jira`): same admin webhook, same secret, same
``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`` and ``timestamp`` window as issue events.
Jira's worklog payload names the issue by its numeric id only (``worklog.issueId``), so a project is
linked with the ref ``jira_issue_id`` (one id, or several comma-separated). The entry: hours are
``timeSpentSeconds`` / 3600 rounded half-up to 0.01 h, the person the author's display name, the date
the day ``started`` names (the author's own offset), the description the comment (plain text, or the text
of an Atlassian Document Format comment), and the worklog id the external id: a worklog is stored once,
an update changes it while it is unbilled, a deletion withdraws it while it is unbilled.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from api.webhooks.normalize import MalformedPayload
from persistence.webhook_inbox import InboundEvent
from workflows.payloads import TriggerKind

EVENTS = {"worklog_created": "created", "worklog_updated": "updated", "worklog_deleted": "deleted"}
HUNDREDTH = Decimal("0.01")
MAX_COMMENT = 1000


def is_worklog(payload: Any) -> bool:
    return isinstance(payload, Mapping) and payload.get("webhookEvent") in EVENTS


def _text(value: Any, path: str) -> str:
    if value is None or isinstance(value, bool | dict | list) or not str(value).strip():
        raise MalformedPayload(f"{path}: required")
    return str(value).strip()


def _adf_text(node: Any) -> str:
    """The text of an Atlassian Document Format node (comments in REST v3 payloads)."""
    if isinstance(node, Mapping):
        own = str(node.get("text") or "") if node.get("type") == "text" else ""
        return own + " ".join(_adf_text(child) for child in node.get("content") or [] if child)
    return ""


def _comment(value: Any) -> str:
    text = _adf_text(value) if isinstance(value, Mapping) else str(value or "")
    return " ".join(text.split())[:MAX_COMMENT] or "Time"


def worklog(payload: Any, headers: Mapping[str, str]) -> list[InboundEvent]:
    body: Mapping[str, Any] = payload
    action = EVENTS[str(body["webhookEvent"])]
    log = body.get("worklog")
    if not isinstance(log, Mapping):
        raise MalformedPayload("worklog: expected an object")
    worklog_id = _text(log.get("id"), "worklog.id")
    issue_id = _text(log.get("issueId"), "worklog.issueId")
    summary = {"external_id": worklog_id, "action": action}
    if action != "deleted":
        seconds = log.get("timeSpentSeconds")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise MalformedPayload("worklog.timeSpentSeconds: expected a whole number of seconds above 0")
        try:
            started = datetime.fromisoformat(_text(log.get("started"), "worklog.started"))
        except ValueError:
            raise MalformedPayload("worklog.started: not an ISO 8601 time") from None
        author = log.get("author") if isinstance(log.get("author"), Mapping) else {}
        summary |= {
            "hours": str((Decimal(seconds) / Decimal(3600)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)),
            "date": started.date().isoformat(),
            "person": str(author.get("displayName") or author.get("accountId") or "unknown")[:200],
            "description": _comment(log.get("comment")),
        }
    identifier = headers.get("X-Atlassian-Webhook-Identifier") or headers.get(
        "x-atlassian-webhook-identifier"
    )
    dedupe = (
        f"worklog:{identifier}" if identifier else f"worklog:{worklog_id}:{action}:{log.get('updated', '')}"
    )
    return [InboundEvent("jira", dedupe, TriggerKind.TIME_LOGGED, "jira_issue_id", issue_id, summary)]
