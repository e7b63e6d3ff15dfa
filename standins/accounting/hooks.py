"""Webhooks the accounting stand-ins send after a committed change, built and signed as each provider
builds and signs them, to a URL configured as one configures it at the provider.

Deliveries leave from a thread of their own, in order, after the stand-in's lock is released (a
provider never holds a write open on its subscriber); a refused or failed delivery is retried a few
times with a short backoff, as the providers retry. ``deliveries`` keeps every attempt's status for
tests, and ``enabled`` switches sending off (the poller's test: the books change, no webhook comes).

- Xero: JSON ``{"events": [...], "firstEventSequence", "lastEventSequence", "entropy"}``, one event per
  change, ``x-xero-signature`` = base64 HMAC-SHA256 of the body with the webhook key.
- QBO: JSON ``{"eventNotifications": [{"realmId", "dataChangeEvent": {"entities": [...]}}]}``,
  ``intuit-signature`` = base64 HMAC-SHA256 of the body with the verifier token.
- FreshBooks: a form ``name=<event>&object_id=...&account_id=...&business_id=...&identity_id=...&user_id=...``
  whose ``X-FreshBooks-Hmac-SHA256`` is base64 HMAC-SHA256 of ``json.dumps(form)`` with the callback's
  verifier; the first POST to a new callback is ``name=callback.verify`` carrying the verifier, and the
  callback sends events only once that verifier was PUT back through the API.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

RETRIES = 3


def b64_hmac(key: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()).decode()


@dataclass
class Outgoing:
    body: bytes
    headers: dict[str, str]
    url: str = ""


@dataclass
class Delivery:
    url: str
    body: bytes
    status: int  # 0: no answer


@dataclass
class WebhookOutbox:
    """One stand-in's webhook subscription (URL + signing secret) and its sender thread."""

    url: str | None = None
    secret: str = ""
    enabled: bool = True
    deliveries: list[Delivery] = field(default_factory=list)
    _queue: queue.Queue[Outgoing | None] = field(default_factory=queue.Queue)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, url: str, secret: str) -> None:
        self.url, self.secret = url, secret

    def send(self, build: Callable[[str], Outgoing], *, url: str | None = None) -> None:
        """Queue one delivery to ``url`` (else the configured one), ``build(secret)`` making its body and
        headers; a no-op when no URL is known or sending is switched off."""
        target = url or self.url
        if not target or not self.enabled:
            return
        item = build(self.secret)
        item.url = target
        self._queue.put(item)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="standin-webhooks", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=10.0) as client:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                url = item.url
                for attempt in range(RETRIES):
                    try:
                        status = client.post(url, content=item.body, headers=item.headers).status_code
                    except httpx.HTTPError:
                        status = 0
                    self.deliveries.append(Delivery(url, item.body, status))
                    if 200 <= status < 300 or status == 401:
                        break
                    time.sleep(0.5 * (attempt + 1))
                self._queue.task_done()

    def wait_idle(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.05)


def _utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class XeroEvents:
    """Xero's events: INVOICE / CONTACT / CREDITNOTE with CREATE or UPDATE (a payment updates its invoice)."""

    def __init__(self, tenant_id: str) -> None:
        self.tenant_id = tenant_id
        self.sequence = 0

    def build(self, category: str, event_type: str, resource_id: str) -> Callable[[str], Outgoing]:
        self.sequence += 1
        sequence = self.sequence
        plural = {"INVOICE": "Invoices", "CONTACT": "Contacts", "CREDITNOTE": "CreditNotes"}[category]

        def make(key: str) -> Outgoing:
            payload = {
                "events": [
                    {
                        "resourceUrl": f"https://api.xero.com/api.xro/2.0/{plural}/{resource_id}",
                        "resourceId": resource_id,
                        "eventDateUtc": _utc(),
                        "eventType": event_type,
                        "eventCategory": category,
                        "tenantId": self.tenant_id,
                        "tenantType": "ORGANISATION",
                    }
                ],
                "firstEventSequence": sequence,
                "lastEventSequence": sequence,
                "entropy": secrets.token_urlsafe(15).upper(),
            }
            body = json.dumps(payload).encode()
            return Outgoing(
                body, {"Content-Type": "application/json", "x-xero-signature": b64_hmac(key, body)}
            )

        return make


def xero_intent_to_receive(key: str, *, correct: bool) -> Outgoing:
    """The "intent to receive" check: no events, signed with the key (or not)."""
    body = json.dumps(
        {"events": [], "firstEventSequence": 0, "lastEventSequence": 0, "entropy": secrets.token_hex(10)}
    ).encode()
    signature = b64_hmac(key if correct else key + "-wrong", body)
    return Outgoing(body, {"Content-Type": "application/json", "x-xero-signature": signature})


def qbo_event(realm_id: str, name: str, entity_id: str, operation: str) -> Callable[[str], Outgoing]:
    def make(verifier: str) -> Outgoing:
        payload = {
            "eventNotifications": [
                {
                    "realmId": realm_id,
                    "dataChangeEvent": {
                        "entities": [
                            {"name": name, "id": entity_id, "operation": operation, "lastUpdated": _utc()}
                        ]
                    },
                }
            ]
        }
        body = json.dumps(payload).encode()
        return Outgoing(
            body, {"Content-Type": "application/json", "intuit-signature": b64_hmac(verifier, body)}
        )

    return make


def freshbooks_form(fields: dict[str, str], verifier: str) -> Outgoing:
    body = urllib.parse.urlencode(fields).encode()
    signature = b64_hmac(verifier, json.dumps(fields).encode())
    return Outgoing(
        body,
        {"Content-Type": "application/x-www-form-urlencoded", "X-FreshBooks-Hmac-SHA256": signature},
    )


@dataclass
class Callback:
    callback_id: int
    event: str
    uri: str
    verifier: str
    verified: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "callbackid": self.callback_id,
            "event": self.event,
            "uri": self.uri,
            "verified": self.verified,
        }

    def wants(self, event: str) -> bool:
        """``payment`` covers every payment event, ``payment.create`` only itself."""
        return self.verified and (event == self.event or event.split(".", 1)[0] == self.event)
