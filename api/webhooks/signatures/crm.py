"""CRM webhooks: HubSpot (v3 signature over method, URI, body, timestamp) and Pipedrive (basic auth)."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Mapping

from api.webhooks.signatures.common import (
    Secret,
    SignatureError,
    _b64_digest,
    _bad_signature,
    _check_window,
    _header,
    _hmac,
    _matches_any,
    _parse_timestamp,
    _secrets,
    _single_secret,
)

HUBSPOT_SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
HUBSPOT_TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"

# HubSpot's request-validation page lists these percent-encodings as decoded in the signed URI.
_HUBSPOT_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_HUBSPOT_ENCODED = re.compile("|".join(_HUBSPOT_DECODED), re.IGNORECASE)


def hubspot_v3_signed_uri(url: str) -> str:
    """The request URI as HubSpot v3 signs it: the full URL with the listed ``%xx`` decoded."""
    return _HUBSPOT_ENCODED.sub(lambda m: _HUBSPOT_DECODED[m.group(0).upper()], url)


def _hubspot_message(method: str, uri: str, body: bytes, timestamp: str) -> bytes:
    return method.upper().encode("utf-8") + uri.encode("utf-8") + body + timestamp.encode("ascii")


def verify_hubspot_v3(
    headers: Mapping[str, str],
    body: bytes,
    secret: Secret,
    *,
    method: str,
    url: str,
    now: float,
    tolerance: float = 300,
) -> None:
    """HubSpot v3: base64 HMAC of ``method + uri + body + timestamp_ms``, keyed by the app client secret.

    ``url`` is the full public URL HubSpot called (scheme, host, path, query) — behind a proxy, the
    configured target URL, not the internal one. Both the URL with HubSpot's listed ``%xx`` decoded
    and the URL as given are tried. The timestamp header is in milliseconds.
    """
    keys = _secrets(secret)
    signature = _header(headers, HUBSPOT_SIGNATURE_HEADER)
    ts_text = _header(headers, HUBSPOT_TIMESTAMP_HEADER)
    ts_ms = _parse_timestamp(ts_text, HUBSPOT_TIMESTAMP_HEADER)
    given = _b64_digest(signature)
    if given is None:
        raise SignatureError("malformed_header", f"{HUBSPOT_SIGNATURE_HEADER} is not a base64 SHA-256 digest")
    uris = dict.fromkeys([hubspot_v3_signed_uri(url), url])
    if not any(_matches_any(keys, _hubspot_message(method, uri, body, ts_text), [given]) for uri in uris):
        raise _bad_signature("HubSpot v3")
    _check_window(ts_ms / 1000.0, now, tolerance)


def sign_hubspot_v3(body: bytes, secret: str, *, method: str, url: str, timestamp: float) -> dict[str, str]:
    """Headers HubSpot sends; ``timestamp`` is unix seconds (sent as milliseconds)."""
    ts_text = str(int(round(timestamp * 1000)))
    mac = _hmac(_single_secret(secret), _hubspot_message(method, hubspot_v3_signed_uri(url), body, ts_text))
    return {
        HUBSPOT_SIGNATURE_HEADER: base64.b64encode(mac).decode("ascii"),
        HUBSPOT_TIMESTAMP_HEADER: ts_text,
    }


# ---------------------------------------------------------------------------------------------------
# Pipedrive (webhooks v2): HTTP Basic auth, no signature


def verify_pipedrive_basic_auth(headers: Mapping[str, str], *, username: str, password: Secret) -> None:
    """Pipedrive webhooks v2 carry only ``Authorization: Basic base64(user:pass)``.

    ``password`` may be a sequence during rotation. Wrong credentials give ``bad_signature``.
    """
    expected_user = _single_secret(username, "username")
    passwords = _secrets(password, "password")
    value = _header(headers, "Authorization")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise SignatureError("malformed_header", "Authorization is not HTTP Basic")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise SignatureError(
            "malformed_header", "Authorization Basic credentials are not valid base64"
        ) from None
    if ":" not in decoded:
        raise SignatureError("malformed_header", "Authorization Basic credentials have no ':'")
    user, _, pwd = decoded.partition(":")
    user_ok = hmac.compare_digest(user.encode("utf-8"), expected_user)
    pwd_ok = False
    for candidate in passwords:
        pwd_ok |= hmac.compare_digest(pwd.encode("utf-8"), candidate)
    if not (user_ok and pwd_ok):
        raise SignatureError("bad_signature", "Pipedrive Basic credentials do not match")


def sign_pipedrive_basic_auth(username: str, password: str) -> dict[str, str]:
    """The ``Authorization`` header Pipedrive sends for the configured ``http_auth_*`` fields."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


# ---------------------------------------------------------------------------------------------------
# body-only hex HMAC schemes: Jira, GitHub, Asana, Linear, PandaDoc
