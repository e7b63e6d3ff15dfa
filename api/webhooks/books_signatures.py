"""Signatures of the accounting providers' webhooks, verified on the raw body in constant time.

- Xero: ``x-xero-signature`` = base64(HMAC-SHA256(webhook key, raw body)). The "intent to receive"
  check sends bodies with no events, signed rightly and wrongly: 200 for the first, 401 for the rest.
- QuickBooks Online: ``intuit-signature`` = base64(HMAC-SHA256(verifier token, raw body)).
- FreshBooks: the body is a form (``name=payment.create&object_id=...``); ``X-FreshBooks-Hmac-SHA256`` =
  base64(HMAC-SHA256(verifier, the form as a JSON object string)), the JSON written as Python's
  ``json.dumps`` writes it (``", "`` and ``": "`` separators, fields in the order sent), which is how
  FreshBooks' own example computes it.

Errors reuse ``api.webhooks.signatures.SignatureError`` (reason ``missing`` or ``mismatch``), whose text
never holds a secret or an expected signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping

from api.webhooks.signatures import SignatureError


def _b64_hmac(key: str, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest())


def _verify_b64(headers: Mapping[str, str], header: str, message: bytes, keys: list[str], who: str) -> None:
    given = next((v for k, v in headers.items() if k.lower() == header.lower()), "").strip()
    if not given:
        raise SignatureError("missing", f"{who}: no {header} header")
    found = False
    for key in keys:  # every key is tried, so the time taken does not tell which one matched
        found |= hmac.compare_digest(_b64_hmac(key, message), given.encode())
    if not found:
        raise SignatureError("mismatch", f"{who}: {header} does not match the body")


def verify_xero(headers: Mapping[str, str], body: bytes, keys: list[str]) -> None:
    _verify_b64(headers, "x-xero-signature", body, keys, "Xero")


def verify_qbo(headers: Mapping[str, str], body: bytes, keys: list[str]) -> None:
    _verify_b64(headers, "intuit-signature", body, keys, "QuickBooks Online")


def freshbooks_form(body: bytes) -> dict[str, str]:
    """The posted form, fields in the order sent (the signature depends on it)."""
    return dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def freshbooks_message(form: Mapping[str, str]) -> bytes:
    return json.dumps(dict(form)).encode()


def verify_freshbooks(headers: Mapping[str, str], body: bytes, keys: list[str]) -> None:
    message = freshbooks_message(freshbooks_form(body))
    _verify_b64(headers, "X-FreshBooks-Hmac-SHA256", message, keys, "FreshBooks")
