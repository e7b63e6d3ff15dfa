"""Provider payloads → `InboundEvent`s: which business event happened to which external object.

Each function takes the verified, parsed payload (and the headers that carry delivery ids) and returns
the billing-relevant events in it, an empty list for deliveries that bill nothing (another stage, an
issue moved back to "In progress", a heartbeat), or raises `MalformedPayload` naming what is wrong
(422). The dedupe key is the provider's own identity for the event (see provider-apis.md §0.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from billing.errors import MoneyError
from billing.money import parse_decimal
from persistence.webhook_inbox import InboundEvent
from workflows.payloads import TriggerKind


class MalformedPayload(ValueError):
    """The body verified but is not the shape the provider sends; the message says which field."""


def _obj(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedPayload(f"{path}: expected an object")
    return value


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value).strip() == "":
        raise MalformedPayload(f"{path}: expected a non-empty string or integer")
    return str(value).strip()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name) or headers.get(name.lower())
    return value.strip() if value and value.strip() else None


def _custom(values: Mapping[str, Any] | None) -> dict[str, str]:
    """Hints in a signature request's metadata / custom fields."""
    hints: dict[str, str] = {}
    for key in ("invoiceflow_project_id", "project_id"):
        if values and values.get(key):
            hints["project_id"] = str(values[key])
    if values and values.get("deal_id"):
        hints["deal_id"] = str(values["deal_id"])
    return hints


# --- CRM: deal won ---------------------------------------------------------------------------------


def hubspot(payload: Any, won_stages: set[str]) -> list[InboundEvent]:
    """A batch (JSON array) of thin events; a deal whose ``dealstage`` became a won stage is a deal won."""
    if not isinstance(payload, list):
        raise MalformedPayload("body: HubSpot sends a JSON array of events")
    events = []
    for i, raw in enumerate(payload):
        item = _obj(raw, f"[{i}]")
        event_id = _text(item.get("eventId"), f"[{i}].eventId")
        kind = str(item.get("subscriptionType", ""))
        if kind not in ("deal.propertyChange", "object.propertyChange"):
            continue
        if item.get("propertyName") != "dealstage" or str(item.get("propertyValue")) not in won_stages:
            continue
        if kind == "object.propertyChange" and str(item.get("objectTypeId", "0-3")) != "0-3":
            continue
        deal_id = _text(item.get("objectId"), f"[{i}].objectId")
        events.append(
            InboundEvent(
                "hubspot",
                event_id,
                TriggerKind.DEAL_WON,
                "hubspot_deal",
                deal_id,
                summary={"portal": str(item.get("portalId", "")), "stage": str(item.get("propertyValue"))},
            )
        )
    return events


def pipedrive(payload: Any) -> list[InboundEvent]:
    """Webhooks v2 ``change`` on a deal: won when ``data.status`` is ``won`` and was not before."""
    body = _obj(payload, "body")
    meta = _obj(body.get("meta"), "meta")
    if meta.get("entity") != "deal":
        return []
    data = _obj(body.get("data"), "data")
    previous = body.get("previous") or {}
    if not isinstance(previous, Mapping):
        raise MalformedPayload("previous: expected an object or null")
    if data.get("status") != "won" or previous.get("status", "") == "won" or "status" not in previous:
        return []
    deal_id = _text(data.get("id"), "data.id")
    # The business event is "deal D won": a retry of it carries the same meta.id and timestamp.
    dedupe = f"{_text(meta.get('id'), 'meta.id')}:{_text(meta.get('timestamp'), 'meta.timestamp')}"
    return [
        InboundEvent(
            "pipedrive",
            dedupe,
            TriggerKind.DEAL_WON,
            "pipedrive_deal",
            deal_id,
            summary={"title": str(data.get("title", "")), "company": str(meta.get("company_id", ""))},
        )
    ]


# --- PM tools: milestone done ----------------------------------------------------------------------


def jira(payload: Any, headers: Mapping[str, str], done_statuses: set[str]) -> list[InboundEvent]:
    """``jira:issue_updated`` whose changelog moves status into a done status (by name or id)."""
    body = _obj(payload, "body")
    if body.get("webhookEvent") != "jira:issue_updated":
        return []
    issue = _obj(body.get("issue"), "issue")
    key = _text(issue.get("key"), "issue.key")
    changelog = body.get("changelog") or {}
    items = _obj(changelog, "changelog").get("items") or []
    if not isinstance(items, list):
        raise MalformedPayload("changelog.items: expected a list")
    done = {s.casefold() for s in done_statuses}
    moved = [
        it
        for it in items
        if isinstance(it, Mapping)
        and it.get("field") == "status"
        and (str(it.get("toString", "")).casefold() in done or str(it.get("to", "")) in done_statuses)
    ]
    if not moved:
        return []
    identifier = _header(headers, "X-Atlassian-Webhook-Identifier")
    dedupe = identifier or f"{key}:{changelog.get('id', '')}"
    hints = {}
    epic = (issue.get("fields") or {}).get("parent") if isinstance(issue.get("fields"), Mapping) else None
    if isinstance(epic, Mapping) and epic.get("key"):
        hints["parent"] = str(epic["key"])
    return [
        InboundEvent(
            "jira",
            dedupe,
            TriggerKind.MILESTONE_DONE,
            "jira",
            key,
            summary={"status": str(moved[-1].get("toString", ""))},
            hints=hints,
        )
    ]


def linear(payload: Any, headers: Mapping[str, str]) -> list[InboundEvent]:
    """An Issue (or a project milestone / project) that moved into a completed state."""
    body = _obj(payload, "body")
    data = _obj(body.get("data"), "data")
    kind, action = body.get("type"), body.get("action")
    delivery = _header(headers, "Linear-Delivery")
    if action != "update":
        return []
    updated = body.get("updatedFrom") or {}
    if not isinstance(updated, Mapping):
        raise MalformedPayload("updatedFrom: expected an object")
    if kind == "Issue":
        state = _obj(data.get("state") or {}, "data.state")
        if state.get("type") != "completed" or "stateId" not in updated:
            return []
        ref = _text(data.get("identifier"), "data.identifier")
    elif kind in ("ProjectMilestone", "Project"):
        completed = data.get("completedAt") or (data.get("state") == "completed")
        if not completed or not ({"completedAt", "state", "status", "statusId"} & set(updated)):
            return []
        ref = _text(data.get("id"), "data.id")
    else:
        return []
    dedupe = delivery or f"{ref}:{body.get('webhookTimestamp', '')}"
    return [
        InboundEvent("linear", dedupe, TriggerKind.MILESTONE_DONE, "linear", ref, summary={"type": str(kind)})
    ]


def github(payload: Any, headers: Mapping[str, str]) -> list[InboundEvent]:
    """``milestone`` event with ``action: closed``; the ref is ``owner/repo#number``."""
    if (_header(headers, "X-GitHub-Event") or "") != "milestone":
        return []
    body = _obj(payload, "body")
    if body.get("action") != "closed":
        return []
    milestone = _obj(body.get("milestone"), "milestone")
    repo = _text(_obj(body.get("repository"), "repository").get("full_name"), "repository.full_name")
    number = _text(milestone.get("number"), "milestone.number")
    delivery = _header(headers, "X-GitHub-Delivery") or f"{repo}#{number}:{milestone.get('closed_at', '')}"
    return [
        InboundEvent(
            "github",
            delivery,
            TriggerKind.MILESTONE_DONE,
            "github",
            f"{repo}#{number}",
            summary={"title": str(milestone.get("title", ""))},
        )
    ]


def asana(payload: Any) -> list[InboundEvent]:
    """Compact events: a task whose ``completed`` field changed. Asana does not say to what, so the
    receiver confirms the task is completed before it bills (see `api.webhooks.receivers`)."""
    body = _obj(payload, "body")
    events = body.get("events")
    if not isinstance(events, list):
        raise MalformedPayload("events: expected a list (empty for a heartbeat)")
    out = []
    for i, raw in enumerate(events):
        item = _obj(raw, f"events[{i}]")
        resource = _obj(item.get("resource"), f"events[{i}].resource")
        change = item.get("change") or {}
        if (
            resource.get("resource_type") != "task"
            or not isinstance(change, Mapping)
            or change.get("field") != "completed"
        ):
            continue
        gid = _text(resource.get("gid"), f"events[{i}].resource.gid")
        created = _text(item.get("created_at"), f"events[{i}].created_at")
        out.append(
            InboundEvent(
                "asana",
                f"{gid}:{created}",
                TriggerKind.MILESTONE_DONE,
                "asana",
                gid,
                summary={"created_at": created},
            )
        )
    return out


# --- e-signature: contract signed ------------------------------------------------------------------


def docusign(payload: Any) -> list[InboundEvent]:
    body = _obj(payload, "body")
    if body.get("event") != "envelope-completed":
        return []
    data = _obj(body.get("data"), "data")
    envelope = _text(data.get("envelopeId"), "data.envelopeId")
    summary = data.get("envelopeSummary") or {}
    fields: dict[str, Any] = {}
    if isinstance(summary, Mapping):
        custom = summary.get("customFields") or {}
        for item in (custom.get("textCustomFields") or []) if isinstance(custom, Mapping) else []:
            if isinstance(item, Mapping) and item.get("name"):
                fields[str(item["name"])] = item.get("value")
    dedupe = f"{envelope}:envelope-completed:{body.get('generatedDateTime', '')}"
    return [
        InboundEvent(
            "docusign",
            dedupe,
            TriggerKind.CONTRACT_SIGNED,
            "docusign",
            envelope,
            summary={"subject": str(summary.get("emailSubject", "")) if isinstance(summary, Mapping) else ""},
            hints=_custom(fields),
        )
    ]


def dropbox_sign(payload: Any) -> list[InboundEvent]:
    body = _obj(payload, "body")
    event = _obj(body.get("event"), "event")
    if event.get("event_type") != "signature_request_all_signed":
        return []
    request = _obj(body.get("signature_request"), "signature_request")
    request_id = _text(request.get("signature_request_id"), "signature_request.signature_request_id")
    metadata = request.get("metadata") if isinstance(request.get("metadata"), Mapping) else {}
    return [
        InboundEvent(
            "dropbox_sign",
            _text(event.get("event_hash"), "event.event_hash"),
            TriggerKind.CONTRACT_SIGNED,
            "dropbox_sign",
            request_id,
            summary={"title": str(request.get("title", ""))},
            hints=_custom(metadata),
        )
    ]


def pandadoc(payload: Any, headers: Mapping[str, str]) -> list[InboundEvent]:
    if not isinstance(payload, list):
        raise MalformedPayload("body: PandaDoc sends a JSON array of events")
    event_id = _header(headers, "X-PandaDoc-Webhook-Event-Id")
    out = []
    for i, raw in enumerate(payload):
        item = _obj(raw, f"[{i}]")
        data = _obj(item.get("data"), f"[{i}].data")
        if item.get("event") != "document_state_changed" or data.get("status") != "document.completed":
            continue
        doc = _text(data.get("id"), f"[{i}].data.id")
        metadata = data.get("metadata") if isinstance(data.get("metadata"), Mapping) else {}
        dedupe = f"{event_id}:{i}" if event_id else f"{doc}:document.completed"
        out.append(
            InboundEvent(
                "pandadoc",
                dedupe,
                TriggerKind.CONTRACT_SIGNED,
                "pandadoc",
                doc,
                summary={"name": str(data.get("name", ""))},
                hints=_custom(metadata),
            )
        )
    return out


# --- generic ----------------------------------------------------------------------------------------

GENERIC_TYPES = {
    "deal.won": TriggerKind.DEAL_WON,
    "contract.signed": TriggerKind.CONTRACT_SIGNED,
    "milestone.completed": TriggerKind.MILESTONE_DONE,
    "time.logged": TriggerKind.TIME_LOGGED,
}
TIME_FIELDS = ("hours", "date", "person", "description", "rate", "role")


def _time_summary(body: Mapping[str, Any], event_id: str) -> dict[str, str]:
    """``time.logged``: the entry itself travels in the inbox row (hours, date and person required)."""
    summary = {"external_id": str(body.get("external_id") or event_id)}
    for name in TIME_FIELDS:
        value = body.get(name)
        if value is None:
            if name in ("hours", "date", "person"):
                raise MalformedPayload(f"{name}: required for time.logged")
            continue
        if not isinstance(value, str):
            raise MalformedPayload(f"{name}: expected a string")
        summary[name] = value
    try:
        date.fromisoformat(summary["date"])
        parse_decimal(summary["hours"], field="hours")
    except (ValueError, MoneyError) as exc:
        raise MalformedPayload(f"{'hours' if isinstance(exc, MoneyError) else 'date'}: {exc}") from None
    if body.get("billable") is False:
        summary["billable"] = "false"
    return summary


def generic(payload: Any) -> list[InboundEvent]:
    """``{"id": "...", "type": "milestone.completed", "project_id"?: "...", "milestone_key"?: "...",
    "ref"?: {"system": "...", "id": "..."}}``: for tools without a native receiver."""
    body = _obj(payload, "body")
    event_id = _text(body.get("id"), "id")
    kind = GENERIC_TYPES.get(str(body.get("type")))
    if kind is None:
        raise MalformedPayload(f"type: expected one of {', '.join(sorted(GENERIC_TYPES))}")
    ref = body.get("ref")
    system, ref_id = "generic", ""
    if ref is not None:
        ref_obj = _obj(ref, "ref")
        system, ref_id = _text(ref_obj.get("system"), "ref.system"), _text(ref_obj.get("id"), "ref.id")
    hints = {}
    if body.get("project_id") is not None:
        hints["project_id"] = _text(body.get("project_id"), "project_id")
    if body.get("milestone_key") is not None:
        hints["milestone_key"] = _text(body.get("milestone_key"), "milestone_key")
    if not ref_id and "project_id" not in hints:
        raise MalformedPayload("body: give project_id, or ref {system, id} of a linked object")
    if kind == TriggerKind.MILESTONE_DONE and not ref_id and "milestone_key" not in hints:
        raise MalformedPayload("milestone_key: required for milestone.completed with a project_id")
    summary = _time_summary(body, event_id) if kind == TriggerKind.TIME_LOGGED else {}
    return [InboundEvent("generic", event_id, kind, system, ref_id, summary=summary, hints=hints)]
