"""Project tools: Jira, GitHub, Asana (handshake, then HMAC), Linear (signature and timestamp), PandaDoc."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping

from api.webhooks.signatures.common import (
    Secret,
    SignatureError,
    _bad_signature,
    _check_window,
    _header,
    _hex,
    _hex_digest,
    _lower_headers,
    _matches_any,
    _secrets,
    _single_secret,
)


def _verify_prefixed_hex(
    headers: Mapping[str, str], body: bytes, secret: Secret, header: str, provider: str
) -> None:
    keys = _secrets(secret)
    value = _header(headers, header)
    algo, sep, digest = value.partition("=")
    if not sep or algo.strip().lower() != "sha256":
        raise SignatureError("malformed_header", f"{header} is not of the form sha256=<hex>")
    given = _hex_digest(digest.strip(), header)
    if not _matches_any(keys, body, [given]):
        raise _bad_signature(provider)


def _verify_plain_hex(value: str, body: bytes, keys: list[bytes], name: str, provider: str) -> None:
    given = _hex_digest(value, name)
    if not _matches_any(keys, body, [given]):
        raise _bad_signature(provider)


def verify_jira(headers: Mapping[str, str], body: bytes, secret: Secret) -> None:
    """Jira (Cloud admin webhooks with a secret, and Data Center): ``X-Hub-Signature: sha256=<hex>``."""
    _verify_prefixed_hex(headers, body, secret, "X-Hub-Signature", "Jira")


def sign_jira(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hub-Signature": "sha256=" + _hex(_single_secret(secret), body)}


def verify_github(headers: Mapping[str, str], body: bytes, secret: Secret) -> None:
    """GitHub: ``X-Hub-Signature-256: sha256=<hex>``; the legacy SHA-1 ``X-Hub-Signature`` is ignored."""
    _verify_prefixed_hex(headers, body, secret, "X-Hub-Signature-256", "GitHub")


def sign_github(body: bytes, secret: str) -> dict[str, str]:
    """Both headers GitHub sends when a secret is set (SHA-256, and the legacy SHA-1)."""
    key = _single_secret(secret)
    return {
        "X-Hub-Signature-256": "sha256=" + _hex(key, body),
        "X-Hub-Signature": "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest(),
    }


def verify_asana(headers: Mapping[str, str], body: bytes, secret: Secret) -> None:
    """Asana events: ``X-Hook-Signature`` = hex HMAC of the body, keyed by the handshake ``X-Hook-Secret``.

    Call :func:`asana_handshake_response` first: the handshake request carries no signature.
    """
    keys = _secrets(secret)
    _verify_plain_hex(_header(headers, "X-Hook-Signature"), body, keys, "X-Hook-Signature", "Asana")


def sign_asana(body: bytes, secret: str) -> dict[str, str]:
    return {"X-Hook-Signature": _hex(_single_secret(secret), body)}


def asana_handshake_response(headers: Mapping[str, str]) -> dict[str, str] | None:
    """For Asana's handshake request (it has ``X-Hook-Secret``), the header to echo back; else ``None``.

    The receiver must persist the value: it is the key of every later ``X-Hook-Signature``.
    """
    value = _lower_headers(headers).get("x-hook-secret")
    if value is None or not str(value).strip():
        return None
    return {"X-Hook-Secret": str(value).strip()}


LINEAR_SIGNATURE_HEADER = "Linear-Signature"
LINEAR_TIMESTAMP_FIELD = "webhookTimestamp"


def verify_linear(
    headers: Mapping[str, str], body: bytes, secret: Secret, *, now: float, tolerance: float = 60
) -> None:
    """Linear: ``Linear-Signature`` = hex HMAC of the body; then the body's ``webhookTimestamp`` (unix ms)
    must be within ``tolerance`` seconds of ``now`` in either direction (the ``@linear/sdk`` rule:
    reject when ``|now_ms - webhookTimestamp| > 60_000``). The body is parsed only after the
    signature holds. Unlike the SDK, a missing ``webhookTimestamp`` is rejected (``missing_field``).
    """
    keys = _secrets(secret)
    _verify_plain_hex(
        _header(headers, LINEAR_SIGNATURE_HEADER), body, keys, LINEAR_SIGNATURE_HEADER, "Linear"
    )
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SignatureError("malformed_body", "Linear body is not JSON") from None
    if not isinstance(payload, dict) or LINEAR_TIMESTAMP_FIELD not in payload:
        raise SignatureError("missing_field", f"Linear body has no {LINEAR_TIMESTAMP_FIELD}")
    ts_ms = payload[LINEAR_TIMESTAMP_FIELD]
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int | float) or ts_ms != ts_ms:
        raise SignatureError("malformed_body", f"Linear {LINEAR_TIMESTAMP_FIELD} is not a number")
    _check_window(ts_ms / 1000.0, now, tolerance)


def sign_linear(body: bytes, secret: str) -> dict[str, str]:
    """The header Linear sends (the body must already carry ``webhookTimestamp`` in unix ms)."""
    return {LINEAR_SIGNATURE_HEADER: _hex(_single_secret(secret), body)}


def verify_pandadoc(
    query_signature: str | None,
    body: bytes,
    secret: Secret,
    *,
    headers: Mapping[str, str] | None = None,
) -> None:
    """PandaDoc: the ``signature`` query parameter = hex HMAC of the body, keyed by the shared key.

    When the query parameter is absent and ``headers`` are given, an ``X-PD-Signature`` header is used
    instead (mentioned by some third-party descriptions; the query parameter is preferred).
    """
    keys = _secrets(secret)
    value = (query_signature or "").strip()
    name = "signature query parameter"
    if not value and headers is not None:
        value = str(_lower_headers(headers).get("x-pd-signature") or "").strip()
        name = "X-PD-Signature"
    if not value:
        raise SignatureError("missing_header", "missing signature query parameter")
    _verify_plain_hex(value, body, keys, name, "PandaDoc")


def sign_pandadoc(body: bytes, secret: str) -> str:
    """The value PandaDoc appends to the webhook URL as ``?signature=``."""
    return _hex(_single_secret(secret), body)


# ---------------------------------------------------------------------------------------------------
# DocuSign Connect
