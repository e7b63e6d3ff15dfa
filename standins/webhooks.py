"""Webhook deliveries built the way each provider builds them: body shape, headers, signature.

Used by the receiver tests, by `invoiceflow demo` (which fires them at a running `invoiceflow dev`) and by
the webhook benchmark. Payload shapes follow provider-apis.md §1; signatures come from
`api.webhooks.signatures`, whose sign/verify pairs are pinned independently against each provider's spec
in tests/webhooks.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from api.webhooks import signatures


@dataclass
class Delivery:
    provider: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None  # Dropbox Sign posts multipart/form-data
    query: dict[str, str] = field(default_factory=dict)

    def with_body(self, body: bytes) -> Delivery:
        """The same headers over another body (a tampered or malformed delivery, in tests)."""
        return Delivery(self.provider, self.path, body, dict(self.headers), self.form, dict(self.query))


def _dumps(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


async def send(client: httpx.AsyncClient, delivery: Delivery) -> httpx.Response:
    """POST it as the provider would (JSON body, or a multipart form for Dropbox Sign)."""
    if delivery.form is not None:
        files = {name: (None, value) for name, value in delivery.form.items()}
        return await client.post(delivery.path, params=delivery.query, files=files, headers=delivery.headers)
    headers = {"Content-Type": "application/json", **delivery.headers}
    return await client.post(delivery.path, params=delivery.query, content=delivery.body, headers=headers)


def hubspot_deal_won(
    deal_id: str,
    secret: str,
    *,
    public_url: str,
    event_id: int | None = None,
    now: float | None = None,
    stage: str = "closedwon",
    portal_id: int = 62515,
) -> Delivery:
    """A batch with one ``deal.propertyChange`` to the won stage, signed v3 over the public URL."""
    now = time.time() if now is None else now
    payload = [
        {
            "eventId": event_id or uuid.uuid4().int % 10**10,
            "subscriptionId": 123456,
            "portalId": portal_id,
            "appId": 54321,
            "occurredAt": int(now * 1000),
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal_id),
            "propertyName": "dealstage",
            "propertyValue": stage,
            "changeSource": "CRM_UI",
        }
    ]
    body = _dumps(payload)
    url = public_url.rstrip("/") + "/webhooks/hubspot"
    headers = signatures.sign_hubspot_v3(body, secret, method="POST", url=url, timestamp=now)
    return Delivery("hubspot", "/webhooks/hubspot", body, headers | {"X-HubSpot-Signature-Version": "v3"})


def pipedrive_deal_won(
    deal_id: int,
    user: str,
    password: str,
    *,
    title: str = "ACME rollout",
    value: int = 12000,
    currency: str = "USD",
    meta_id: int | None = None,
    now: float | None = None,
) -> Delivery:
    now = time.time() if now is None else now
    payload = {
        "meta": {
            "action": "change",
            "entity": "deal",
            "version": "2.0",
            "company_id": 12882925,
            "user_id": 18487521,
            "id": meta_id or uuid.uuid4().int % 10**8,
            "entity_id": deal_id,
            "webhook_id": 99,
            "webhook_owner_id": 18487521,
            "permitted_user_ids": [18487521],
            "attempt": 1,
            "host": "company.pipedrive.com",
            "timestamp": int(now),
            "change_source": "app",
        },
        "data": {
            "id": deal_id,
            "title": title,
            "value": value,
            "currency": currency,
            "status": "won",
            "stage_id": 5,
            "pipeline_id": 1,
            "owner_id": 18487521,
            "person_id": 3,
            "org_id": 2,
        },
        "previous": {"status": "open"},
    }
    return Delivery(
        "pipedrive",
        "/webhooks/pipedrive",
        _dumps(payload),
        signatures.sign_pipedrive_basic_auth(user, password),
    )


def jira_issue_done(
    issue_key: str,
    secret: str,
    *,
    status: str = "Done",
    identifier: str | None = None,
    now: float | None = None,
) -> Delivery:
    now = time.time() if now is None else now
    payload = {
        "timestamp": int(now * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5b10ac8d82e05b22cc7d4ef5", "displayName": "Ana"},
        "issue": {
            "id": "10027",
            "key": issue_key,
            "fields": {
                "summary": "Milestone",
                "status": {"name": status, "id": "10001"},
                "project": {"key": issue_key.split("-")[0]},
            },
        },
        "changelog": {
            "id": str(uuid.uuid4().int % 10**6),
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "from": "3",
                    "fromString": "In Progress",
                    "to": "10001",
                    "toString": status,
                }
            ],
        },
    }
    body = _dumps(payload)
    headers = signatures.sign_jira(body, secret) | {
        "X-Atlassian-Webhook-Identifier": identifier or str(uuid.uuid4().int % 10**12),
        "X-Atlassian-Webhook-Flow": "Primary",
    }
    return Delivery("jira", "/webhooks/jira", body, headers)


def linear_issue_completed(
    identifier: str, secret: str, *, delivery: str | None = None, now: float | None = None
) -> Delivery:
    now = time.time() if now is None else now
    payload = {
        "action": "update",
        "type": "Issue",
        "organizationId": "org-uuid",
        "webhookId": "wh-uuid",
        "webhookTimestamp": int(now * 1000),
        "createdAt": "2024-06-10T12:00:00.000Z",
        "url": f"https://linear.app/acme/issue/{identifier}",
        "actor": {"id": "user-uuid", "name": "Ana"},
        "data": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, identifier)),
            "identifier": identifier,
            "title": "Phase 2",
            "stateId": "state-done",
            "state": {"id": "state-done", "name": "Done", "type": "completed"},
            "completedAt": "2024-06-10T12:00:00.000Z",
            "projectId": "proj-uuid",
        },
        "updatedFrom": {"stateId": "state-inprogress", "completedAt": None},
    }
    body = _dumps(payload)
    headers = signatures.sign_linear(body, secret) | {
        "Linear-Delivery": delivery or str(uuid.uuid4()),
        "Linear-Event": "Issue",
    }
    return Delivery("linear", "/webhooks/linear", body, headers)


def github_milestone_closed(
    repo: str, number: int, secret: str, *, delivery: str | None = None, title: str = "v1.0"
) -> Delivery:
    payload = {
        "action": "closed",
        "milestone": {
            "id": 1002604,
            "number": number,
            "title": title,
            "state": "closed",
            "open_issues": 0,
            "closed_issues": 12,
            "created_at": "2024-05-01T00:00:00Z",
            "closed_at": "2024-06-10T12:00:00Z",
            "html_url": f"https://github.com/{repo}/milestone/{number}",
        },
        "repository": {"id": 1296269, "full_name": repo},
        "sender": {"login": "octocat", "id": 1},
        "installation": {"id": 42},
    }
    body = _dumps(payload)
    headers = signatures.sign_github(body, secret) | {
        "X-GitHub-Event": "milestone",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "42",
    }
    return Delivery("github", "/webhooks/github", body, headers)


def asana_handshake(token: str, hook_secret: str) -> Delivery:
    return Delivery("asana", "/webhooks/asana", b"", {"X-Hook-Secret": hook_secret}, query={"token": token})


def asana_task_completed(
    gid: str, hook_secret: str, token: str, *, created_at: str = "2024-06-10T12:00:00.000Z"
) -> Delivery:
    payload = {
        "events": [
            {
                "user": {"gid": "1201", "resource_type": "user"},
                "created_at": created_at,
                "action": "changed",
                "resource": {"gid": gid, "resource_type": "task", "resource_subtype": "milestone"},
                "parent": None,
                "change": {"field": "completed", "action": "changed"},
            }
        ]
    }
    body = _dumps(payload)
    return Delivery(
        "asana", "/webhooks/asana", body, signatures.sign_asana(body, hook_secret), query={"token": token}
    )


def docusign_envelope_completed(
    envelope_id: str,
    secret: str,
    *,
    custom_fields: dict[str, str] | None = None,
    generated: str | None = None,
) -> Delivery:
    generated = generated or time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    payload = {
        "event": "envelope-completed",
        "apiVersion": "v2.1",
        "uri": f"/restapi/v2.1/accounts/f8c2/envelopes/{envelope_id}",
        "retryCount": 0,
        "configurationId": 10556,
        "generatedDateTime": generated,
        "data": {
            "accountId": "f8c2",
            "userId": "7a1d",
            "envelopeId": envelope_id,
            "envelopeSummary": {
                "status": "completed",
                "emailSubject": "Please sign: SOW #12",
                "completedDateTime": generated,
                "customFields": {
                    "textCustomFields": [{"name": k, "value": v} for k, v in (custom_fields or {}).items()]
                },
            },
        },
    }
    body = _dumps(payload)
    return Delivery("docusign", "/webhooks/docusign", body, signatures.sign_docusign(body, secret))


def dropbox_sign_all_signed(
    request_id: str, api_key: str, *, metadata: dict[str, str] | None = None, event_time: int | None = None
) -> Delivery:
    event_time = int(time.time()) if event_time is None else event_time
    event_type = "signature_request_all_signed"
    payload = {
        "event": {
            "event_type": event_type,
            "event_time": str(event_time),
            "event_hash": signatures.sign_dropbox_sign(event_time, event_type, api_key),
            "event_metadata": {
                "related_signature_id": None,
                "reported_for_account_id": "6152",
                "reported_for_app_id": "ff33",
            },
        },
        "account_guid": "6152",
        "client_id": "ff33",
        "signature_request": {
            "signature_request_id": request_id,
            "test_mode": False,
            "title": "SOW #12",
            "is_complete": True,
            "metadata": metadata or {},
            "signatures": [
                {
                    "signer_email_address": "cfo@client.example.com",
                    "status_code": "signed",
                    "signed_at": event_time - 11,
                }
            ],
        },
    }
    return Delivery("dropbox_sign", "/webhooks/dropbox-sign", form={"json": json.dumps(payload)})


def pandadoc_document_completed(
    document_id: str, secret: str, *, metadata: dict[str, str] | None = None, event_id: str | None = None
) -> Delivery:
    payload = [
        {
            "event": "document_state_changed",
            "data": {
                "id": document_id,
                "name": "SOW #12",
                "status": "document.completed",
                "date_created": "2024-07-31T16:06:09.114744Z",
                "date_modified": "2024-07-31T16:06:09.157758Z",
                "grand_total": {"amount": "12000.00", "currency": "USD"},
                "metadata": metadata or {},
                "tokens": [],
                "pricing": {},
            },
        }
    ]
    body = _dumps(payload)
    return Delivery(
        "pandadoc",
        "/webhooks/pandadoc",
        body,
        {"X-PandaDoc-Webhook-Event-Id": event_id or str(uuid.uuid4())},
        query={"signature": signatures.sign_pandadoc(body, secret)},
    )


def generic_event(
    event_id: str,
    event_type: str,
    secret: str,
    *,
    project_id: str | None = None,
    milestone_key: str | None = None,
    ref: dict[str, str] | None = None,
    now: float | None = None,
    fields: dict[str, Any] | None = None,
) -> Delivery:
    payload: dict[str, Any] = {"id": event_id, "type": event_type, **(fields or {})}
    if project_id:
        payload["project_id"] = project_id
    if milestone_key:
        payload["milestone_key"] = milestone_key
    if ref:
        payload["ref"] = ref
    body = _dumps(payload)
    return Delivery(
        "generic",
        "/webhooks/generic",
        body,
        signatures.sign_generic(body, secret, time.time() if now is None else now),
    )


def stripe_event(
    event_type: str,
    obj: dict[str, Any],
    secret: str,
    *,
    event_id: str | None = None,
    now: float | None = None,
    api_version: str = "2024-06-20",
) -> Delivery:
    """A Stripe event envelope around ``obj`` (``data.object``), signed ``t=...,v1=...``."""
    now = time.time() if now is None else now
    payload = {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": api_version,
        "created": int(now),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
        "data": {"object": obj},
    }
    body = _dumps(payload)
    return Delivery("stripe", "/webhooks/stripe", body, signatures.sign_stripe(body, secret, now))


def stripe_payment_objects(
    invoice_id: str, amount_minor: int, currency: str = "usd", *, intent: str | None = None
) -> dict[str, dict[str, Any]]:
    """The same payment as each event type shows it: PaymentIntent, Checkout Session, Stripe invoice."""
    intent = intent or f"pi_{uuid.uuid4().hex[:24]}"
    meta = {"invoiceflow_invoice_id": invoice_id}
    return {
        "payment_intent.succeeded": {
            "id": intent,
            "object": "payment_intent",
            "amount": amount_minor,
            "amount_received": amount_minor,
            "currency": currency,
            "status": "succeeded",
            "metadata": meta,
            "latest_charge": f"ch_{intent[3:]}",
        },
        "checkout.session.completed": {
            "id": f"cs_{intent[3:]}",
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "amount_total": amount_minor,
            "currency": currency,
            "client_reference_id": invoice_id,
            "payment_intent": intent,
            "metadata": meta,
        },
        "invoice.paid": {
            "id": f"in_{intent[3:]}",
            "object": "invoice",
            "amount_due": amount_minor,
            "amount_paid": amount_minor,
            "amount_remaining": 0,
            "currency": currency,
            "status": "paid",
            "payment_intent": intent,
            "metadata": meta,
            "lines": {"object": "list", "data": []},
        },
    }


def stripe_refund_objects(
    intent: str,
    amount_minor: int,
    currency: str = "usd",
    *,
    refund_id: str | None = None,
    status: str = "succeeded",
) -> dict[str, dict[str, Any]]:
    """One refund of the PaymentIntent ``intent`` as each event type shows it: the Refund object
    (``refund.created``/``refund.updated``) and the Charge with its ``refunds`` list (``charge.refunded``,
    API versions that still embed it)."""
    refund_id = refund_id or f"re_{uuid.uuid4().hex[:24]}"
    charge = f"ch_{intent[3:]}"
    refund = {
        "id": refund_id,
        "object": "refund",
        "amount": amount_minor,
        "currency": currency,
        "status": status,
        "payment_intent": intent,
        "charge": charge,
        "reason": "requested_by_customer",
    }
    return {
        "refund.created": refund,
        "charge.refunded": {
            "id": charge,
            "object": "charge",
            "payment_intent": intent,
            "amount_refunded": amount_minor,
            "currency": currency,
            "refunded": False,
            "refunds": {"object": "list", "data": [refund], "has_more": False},
        },
    }


# --- time tracking ---------------------------------------------------------------------------------


def toggl_time_entry(
    entry_id: int,
    toggl_project_id: int,
    seconds: int,
    secret: str,
    *,
    start: str = "2026-12-01T09:00:00+00:00",
    description: str = "Development",
    user_id: int = 6,
    event_id: int | None = None,
    action: str = "created",
) -> Delivery:
    """A Toggl Track webhook event for a stopped time entry, signed as Toggl signs (HMAC-SHA256 of the
    raw body with the subscription secret, ``sha256=<hex>``)."""
    from api.webhooks.time_tracking import sign_toggl

    payload = {
        "event_id": event_id if event_id is not None else entry_id * 10 + 1,
        "created_at": start,
        "creator_id": user_id,
        "metadata": {
            "action": action,
            "event_user_id": user_id,
            "model": "time_entry",
            "path": "/time_entries",
        },
        "payload": {
            "id": entry_id,
            "workspace_id": 1234,
            "project_id": toggl_project_id,
            "start": start,
            "stop": start,
            "duration": seconds,
            "description": description,
            "billable": True,
            "user_id": user_id,
        },
        "subscription_id": 6,
        "timestamp": start,
    }
    body = _dumps(payload)
    return Delivery("toggl", "/webhooks/toggl", body, sign_toggl(body, secret))


def toggl_ping(secret: str, validation_code: str) -> Delivery:
    from api.webhooks.time_tracking import sign_toggl

    body = _dumps(
        {"event_id": 0, "payload": "ping", "validation_code": validation_code, "subscription_id": 6}
    )
    return Delivery("toggl", "/webhooks/toggl", body, sign_toggl(body, secret))


def clockify_time_entry(
    entry_id: str, clockify_project_id: str, start: str, end: str, token: str, *, user: str = "Ada"
) -> Delivery:
    """A Clockify NEW_TIME_ENTRY webhook: the webhook's token in Clockify-Signature."""
    payload = {
        "id": entry_id,
        "description": "Development",
        "userId": "5a0ab5acb07987125438b60f",
        "billable": True,
        "projectId": clockify_project_id,
        "timeInterval": {"start": start, "end": end, "duration": None},
        "workspaceId": "64a687e29ae1f428e7ebe303",
        "user": {"id": "5a0ab5acb07987125438b60f", "name": user},
    }
    body = _dumps(payload)
    headers = {"Clockify-Signature": token, "Clockify-Webhook-Event-Type": "NEW_TIME_ENTRY"}
    return Delivery("clockify", "/webhooks/clockify", body, headers)


def jira_worklog(
    worklog_id: str,
    issue_id: str,
    seconds: int,
    secret: str,
    *,
    event: str = "worklog_created",
    started: str = "2026-12-01T09:00:00.000+0000",
    author: str = "Ada Lovelace",
    comment: Any = "Development",
    identifier: str | None = None,
    now: float | None = None,
) -> Delivery:
    """A Jira Cloud admin webhook's worklog event (``worklog_created`` / ``_updated`` / ``_deleted``):
    the worklog names its issue by id only; signed like every Jira admin webhook with a secret,
    ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``."""
    now = time.time() if now is None else now
    site = "https://your-domain.atlassian.net"
    payload = {
        "timestamp": int(now * 1000),
        "webhookEvent": event,
        "worklog": {
            "self": f"{site}/rest/api/2/issue/{issue_id}/worklog/{worklog_id}",
            "author": {"accountId": "5b10a2844c20165700ede21g", "displayName": author, "active": True},
            "updateAuthor": {"accountId": "5b10a2844c20165700ede21g", "displayName": author},
            "comment": comment,
            "created": started,
            "updated": time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime(now)),
            "started": started,
            "timeSpent": f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds // 60}m",
            "timeSpentSeconds": seconds,
            "id": worklog_id,
            "issueId": issue_id,
        },
    }
    body = _dumps(payload)
    headers = signatures.sign_jira(body, secret) | {
        "X-Atlassian-Webhook-Identifier": identifier or str(uuid.uuid4().int % 10**12),
        "X-Atlassian-Webhook-Flow": "Primary",
    }
    return Delivery("jira", "/webhooks/jira", body, headers)
