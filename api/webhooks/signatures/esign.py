"""E-signature: DocuSign Connect (HMAC keys, numbered headers) and Dropbox Sign (event hash in the body)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from api.webhooks.signatures.common import (
    Secret,
    SignatureError,
    _b64_digest,
    _bad_signature,
    _hex,
    _hex_digest,
    _hmac,
    _lower_headers,
    _matches_any,
    _secrets,
    _single_secret,
)

_DOCUSIGN_HEADER = re.compile(r"x-docusign-signature-([1-9][0-9]{0,2})")


def verify_docusign(headers: Mapping[str, str], body: bytes, secret: Secret) -> None:
    """DocuSign Connect HMAC: any ``X-DocuSign-Signature-<n>`` = base64 HMAC of the body under any key."""
    keys = _secrets(secret, "HMAC key")
    values = [
        str(value).strip()
        for name, value in _lower_headers(headers).items()
        if _DOCUSIGN_HEADER.fullmatch(name) and str(value).strip()
    ]
    if not values:
        raise SignatureError("missing_header", "missing header X-DocuSign-Signature-1")
    digests = [d for d in (_b64_digest(v) for v in values) if d is not None]
    if not digests:
        raise SignatureError("malformed_header", "no X-DocuSign-Signature-<n> is a base64 SHA-256 digest")
    if not _matches_any(keys, body, digests):
        raise _bad_signature("DocuSign")


def sign_docusign(body: bytes, secret: Secret) -> dict[str, str]:
    """DocuSign's headers: one ``X-DocuSign-Signature-<n>`` per active key, in order."""
    headers = {"X-Authorization-Digest": "HMACSHA256"}
    for n, key in enumerate(_secrets(secret, "HMAC key"), start=1):
        headers[f"X-DocuSign-Signature-{n}"] = base64.b64encode(_hmac(key, body)).decode("ascii")
    return headers


# ---------------------------------------------------------------------------------------------------
# Dropbox Sign


def _dropbox_text(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if value is None or isinstance(value, bool) or not isinstance(value, str | int):
        raise SignatureError("missing_field", f"Dropbox Sign event has no {field}")
    return str(value)


def verify_dropbox_sign(event: Mapping[str, Any], api_key: Secret) -> None:
    """Dropbox Sign: ``event_hash`` = hex HMAC of ``event_time + event_type`` keyed by the API key.

    ``event`` is the parsed ``json`` multipart field: either the whole payload (with an ``event``
    object) or that ``event`` object itself. Only the two fields are signed, not the body, and there is
    no replay window: re-fetch the signature request over the API before acting on it.
    """
    keys = _secrets(api_key, "API key")
    inner = event.get("event") if isinstance(event, Mapping) else None
    if isinstance(inner, Mapping):
        event = inner
    if not isinstance(event, Mapping):
        raise SignatureError("missing_field", "Dropbox Sign payload has no event object")
    given_text = event.get("event_hash")
    if not isinstance(given_text, str) or not given_text.strip():
        raise SignatureError("missing_field", "Dropbox Sign event has no event_hash")
    message = (_dropbox_text(event, "event_time") + _dropbox_text(event, "event_type")).encode("utf-8")
    given = _hex_digest(given_text.strip(), "event_hash")
    if not _matches_any(keys, message, [given]):
        raise _bad_signature("Dropbox Sign")


def sign_dropbox_sign(event_time: str | int, event_type: str, api_key: str) -> str:
    """The ``event_hash`` Dropbox Sign puts in the event."""
    return _hex(_single_secret(api_key, "API key"), f"{event_time}{event_type}".encode())


# ---------------------------------------------------------------------------------------------------
# t=..,v1=.. schemes: Stripe and our generic one
