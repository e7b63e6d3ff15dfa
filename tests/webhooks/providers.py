"""Each provider's scheme, rebuilt here from its spec (independently of ``api.webhooks.signatures``).

``sign`` builds a request the way the provider does, with hmac/hashlib/base64 directly; ``helper``
builds it with the module's own ``sign_*``; ``verify`` calls the module's ``verify_*``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from api.webhooks import signatures as sig

NOW = 1_718_035_200.0  # 2024-06-10T16:00:00Z
HUBSPOT_URL = "https://hooks.example.com/webhooks/hubspot?tenant=acme&range=a%3Ab%2Cc"


def hmac_hex(key: str, msg: bytes) -> str:
    return hmac.new(key.encode(), msg, hashlib.sha256).hexdigest()


def hmac_b64(key: str, msg: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), msg, hashlib.sha256).digest()).decode()


@dataclass
class Req:
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    query: str | None = None  # PandaDoc ?signature=
    event: dict[str, Any] | None = None  # Dropbox Sign


@dataclass
class Provider:
    name: str
    sign: Callable[[bytes, str], Req]
    helper: Callable[[bytes, str], Req]
    verify: Callable[[Req, Any], None]
    required: list[str]  # header names whose absence -> missing_header
    digests: Callable[[bytes, str], list[str]]  # expected digests, in every encoding sent
    body_signed: bool = True
    timestamped: bool = False


# --- HubSpot v3 ---------------------------------------------------------------------------------


def hubspot_sign(body: bytes, secret: str, *, ts_ms: int | None = None, url: str = HUBSPOT_URL) -> Req:
    ts = str(int(NOW * 1000) if ts_ms is None else ts_ms)
    # HubSpot decodes the listed %xx (here %3A and %2C) in the URI before signing.
    uri = url.replace("%3A", ":").replace("%2C", ",")
    msg = b"POST" + uri.encode() + body + ts.encode()
    return Req({"X-HubSpot-Signature-v3": hmac_b64(secret, msg), "X-HubSpot-Request-Timestamp": ts}, body)


def hubspot_verify(req: Req, secret: Any, now: float = NOW) -> None:
    sig.verify_hubspot_v3(req.headers, req.body, secret, method="POST", url=HUBSPOT_URL, now=now)


HUBSPOT = Provider(
    "hubspot",
    hubspot_sign,
    lambda b, s: Req(sig.sign_hubspot_v3(b, s, method="POST", url=HUBSPOT_URL, timestamp=NOW), b),
    hubspot_verify,
    ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"],
    lambda b, s: [hubspot_sign(b, s).headers["X-HubSpot-Signature-v3"]],
    timestamped=True,
)

# --- Pipedrive (Basic auth) ---------------------------------------------------------------------

PIPEDRIVE_USER = "invoiceflow"


def pipedrive_sign(body: bytes, secret: str) -> Req:
    token = base64.b64encode(f"{PIPEDRIVE_USER}:{secret}".encode()).decode()
    return Req({"Authorization": f"Basic {token}"}, body)


PIPEDRIVE = Provider(
    "pipedrive",
    pipedrive_sign,
    lambda b, s: Req(sig.sign_pipedrive_basic_auth(PIPEDRIVE_USER, s), b),
    lambda r, s: sig.verify_pipedrive_basic_auth(r.headers, username=PIPEDRIVE_USER, password=s),
    ["Authorization"],
    lambda b, s: [pipedrive_sign(b, s).headers["Authorization"].split()[1]],
    body_signed=False,
)

# --- Jira / GitHub / Asana / Linear / PandaDoc (hex of body) --------------------------------------

JIRA = Provider(
    "jira",
    lambda b, s: Req({"X-Hub-Signature": "sha256=" + hmac_hex(s, b)}, b),
    lambda b, s: Req(sig.sign_jira(b, s), b),
    lambda r, s: sig.verify_jira(r.headers, r.body, s),
    ["X-Hub-Signature"],
    lambda b, s: [hmac_hex(s, b)],
)

GITHUB = Provider(
    "github",
    lambda b, s: Req({"X-Hub-Signature-256": "sha256=" + hmac_hex(s, b), "X-GitHub-Event": "milestone"}, b),
    lambda b, s: Req(sig.sign_github(b, s), b),
    lambda r, s: sig.verify_github(r.headers, r.body, s),
    ["X-Hub-Signature-256"],
    lambda b, s: [hmac_hex(s, b)],
)

ASANA = Provider(
    "asana",
    lambda b, s: Req({"X-Hook-Signature": hmac_hex(s, b)}, b),
    lambda b, s: Req(sig.sign_asana(b, s), b),
    lambda r, s: sig.verify_asana(r.headers, r.body, s),
    ["X-Hook-Signature"],
    lambda b, s: [hmac_hex(s, b)],
)


def linear_body(data: Any = "x", ts_ms: int | float | None = None) -> bytes:
    ts = int(NOW * 1000) if ts_ms is None else ts_ms
    return json.dumps({"action": "update", "type": "Issue", "webhookTimestamp": ts, "data": data}).encode()


def linear_verify(req: Req, secret: Any, now: float = NOW) -> None:
    sig.verify_linear(req.headers, req.body, secret, now=now)


LINEAR = Provider(
    "linear",
    lambda b, s: Req({"Linear-Signature": hmac_hex(s, b), "Linear-Event": "Issue"}, b),
    lambda b, s: Req(sig.sign_linear(b, s), b),
    linear_verify,
    ["Linear-Signature"],
    lambda b, s: [hmac_hex(s, b)],
    timestamped=True,
)

PANDADOC = Provider(
    "pandadoc",
    lambda b, s: Req({}, b, query=hmac_hex(s, b)),
    lambda b, s: Req({}, b, query=sig.sign_pandadoc(b, s)),
    lambda r, s: sig.verify_pandadoc(r.query, r.body, s),
    [],  # the query parameter; tested separately
    lambda b, s: [hmac_hex(s, b)],
)

# --- DocuSign (base64 of body, numbered headers) --------------------------------------------------

DOCUSIGN = Provider(
    "docusign",
    lambda b, s: Req({"X-DocuSign-Signature-1": hmac_b64(s, b), "X-Authorization-Digest": "HMACSHA256"}, b),
    lambda b, s: Req(sig.sign_docusign(b, s), b),
    lambda r, s: sig.verify_docusign(r.headers, r.body, s),
    ["X-DocuSign-Signature-1"],
    lambda b, s: [hmac_b64(s, b)],
)

# --- Dropbox Sign (event_time + event_type) --------------------------------------------------------


def dropbox_event(body: bytes, secret: str, event_time: str = "1525470811") -> dict[str, Any]:
    # The "body" under test is the event_type text: it is what the scheme signs besides event_time.
    event_type = body.decode("latin-1")
    return {
        "event": {
            "event_type": event_type,
            "event_time": event_time,
            "event_hash": hmac_hex(secret, (event_time + event_type).encode()),
            "event_metadata": {"related_signature_id": None},
        },
        "signature_request": {"signature_request_id": "21bb8f", "is_complete": True},
    }


def dropbox_helper(body: bytes, secret: str) -> Req:
    event = dropbox_event(body, "unused")
    event["event"]["event_hash"] = sig.sign_dropbox_sign("1525470811", body.decode("latin-1"), secret)
    return Req({}, body, event=event)


def dropbox_verify(req: Req, secret: Any) -> None:
    # Re-derive the event from the (possibly tampered) body, keeping the hash that was sent.
    assert req.event is not None
    event = json.loads(json.dumps(req.event))
    event["event"]["event_type"] = req.body.decode("latin-1")
    sig.verify_dropbox_sign(event, secret)


DROPBOX_SIGN = Provider(
    "dropbox_sign",
    lambda b, s: Req({}, b, event=dropbox_event(b, s)),
    dropbox_helper,
    dropbox_verify,
    [],
    lambda b, s: [dropbox_event(b, s)["event"]["event_hash"]],
)

# --- Stripe and generic (t + "." + body) -----------------------------------------------------------


def stripe_sign(body: bytes, secret: str, t: int | None = None) -> Req:
    ts = str(int(NOW) if t is None else t)
    return Req({"Stripe-Signature": f"t={ts},v1={hmac_hex(secret, ts.encode() + b'.' + body)}"}, body)


def stripe_verify(req: Req, secret: Any, now: float = NOW) -> None:
    sig.verify_stripe(req.headers, req.body, secret, now=now)


STRIPE = Provider(
    "stripe",
    stripe_sign,
    lambda b, s: Req(sig.sign_stripe(b, s, NOW), b),
    stripe_verify,
    ["Stripe-Signature"],
    lambda b, s: [hmac_hex(s, str(int(NOW)).encode() + b"." + b)],
    timestamped=True,
)


def generic_sign(body: bytes, secret: str, t: int | None = None) -> Req:
    ts = str(int(NOW) if t is None else t)
    mac = hmac_hex(secret, f"{ts}.".encode() + body)
    return Req({"X-Invoiceflow-Timestamp": ts, "X-Invoiceflow-Signature": f"v1={mac}"}, body)


def generic_verify(req: Req, secret: Any, now: float = NOW) -> None:
    sig.verify_generic(req.headers, req.body, secret, now=now)


GENERIC = Provider(
    "generic",
    generic_sign,
    lambda b, s: Req(sig.sign_generic(b, s, NOW), b),
    generic_verify,
    ["X-Invoiceflow-Timestamp", "X-Invoiceflow-Signature"],
    lambda b, s: [hmac_hex(s, str(int(NOW)).encode() + b"." + b)],
    timestamped=True,
)

ALL = [HUBSPOT, PIPEDRIVE, JIRA, LINEAR, GITHUB, ASANA, DOCUSIGN, DROPBOX_SIGN, PANDADOC, STRIPE, GENERIC]
BODY_SIGNED = [p for p in ALL if p.body_signed]


def sample_body(p: Provider) -> bytes:
    if p is LINEAR:
        return linear_body({"id": "issue-uuid", "state": {"type": "completed"}})
    if p is DROPBOX_SIGN:
        return b"signature_request_all_signed"
    return b'{"id":"evt_1","type":"invoice.paid","amount":120000,"note":"caf\xc3\xa9"}'
