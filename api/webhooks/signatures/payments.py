"""Stripe (versioned signatures with a timestamp) and invoiceflow's own generic scheme."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from api.webhooks.signatures.common import (
    _HEX64,
    Secret,
    SignatureError,
    _bad_signature,
    _check_window,
    _header,
    _hex,
    _matches_any,
    _parse_timestamp,
    _secrets,
)


def _versioned_digests(parts: Iterable[str], version: str) -> list[bytes]:
    out = []
    for part in parts:
        name, sep, value = part.strip().partition("=")
        if sep and name.strip() == version and _HEX64.fullmatch(value.strip()):
            out.append(bytes.fromhex(value.strip()))
    return out


def verify_stripe(
    headers: Mapping[str, str], body: bytes, secret: Secret, *, now: float, tolerance: float = 300
) -> None:
    """Stripe: ``Stripe-Signature: t=<s>,v1=<hex>[,v1=<hex>...]``; HMAC of ``f"{t}." + body``.

    The key is the whole endpoint secret (``whsec_...`` included). Any ``v1`` may match; ``v0`` and
    unknown schemes are ignored; ``t`` must be within ``tolerance`` seconds of ``now`` either way.
    """
    keys = _secrets(secret)
    value = _header(headers, "Stripe-Signature")
    parts = value.split(",")
    timestamps = [p.strip()[2:] for p in parts if p.strip().startswith("t=")]
    if len(timestamps) != 1:
        raise SignatureError("malformed_header", "Stripe-Signature has no single t= timestamp")
    t = _parse_timestamp(timestamps[0].strip(), "Stripe-Signature t")
    if not any(p.strip().startswith("v1=") for p in parts):
        raise SignatureError("malformed_header", "Stripe-Signature has no v1 signature")
    digests = _versioned_digests(parts, "v1")
    if not _matches_any(keys, f"{timestamps[0].strip()}.".encode() + body, digests):
        raise _bad_signature("Stripe")
    _check_window(t, now, tolerance)


def sign_stripe(body: bytes, secret: Secret, timestamp: float) -> dict[str, str]:
    """``Stripe-Signature`` as Stripe sends it; several secrets give several ``v1`` (rotation)."""
    t = str(int(timestamp))
    message = f"{t}.".encode() + body
    sigs = ",".join(f"v1={_hex(key, message)}" for key in _secrets(secret))
    return {"Stripe-Signature": f"t={t},{sigs}"}


GENERIC_TIMESTAMP_HEADER = "X-Invoiceflow-Timestamp"
GENERIC_SIGNATURE_HEADER = "X-Invoiceflow-Signature"


def verify_generic(
    headers: Mapping[str, str], body: bytes, secret: Secret, *, now: float, tolerance: float = 300
) -> None:
    """Our own scheme (see the module docstring): ``X-Invoiceflow-Timestamp`` and
    ``X-Invoiceflow-Signature``."""
    keys = _secrets(secret)
    ts_text = _header(headers, GENERIC_TIMESTAMP_HEADER)
    value = _header(headers, GENERIC_SIGNATURE_HEADER)
    ts = _parse_timestamp(ts_text, GENERIC_TIMESTAMP_HEADER)
    parts = value.split(",")
    if not any(p.strip().startswith("v1=") for p in parts):
        raise SignatureError("malformed_header", f"{GENERIC_SIGNATURE_HEADER} has no v1= entry")
    digests = _versioned_digests(parts, "v1")
    if not digests:
        raise SignatureError("malformed_header", f"{GENERIC_SIGNATURE_HEADER} has no hex SHA-256 v1 entry")
    if not _matches_any(keys, f"{ts_text}.".encode() + body, digests):
        raise _bad_signature("Invoiceflow")
    _check_window(ts, now, tolerance)


def sign_generic(body: bytes, secret: Secret, timestamp: float) -> dict[str, str]:
    """Headers of the generic scheme; several secrets give several ``v1`` entries."""
    ts = str(int(timestamp))
    message = f"{ts}.".encode() + body
    sigs = ",".join(f"v1={_hex(key, message)}" for key in _secrets(secret))
    return {GENERIC_TIMESTAMP_HEADER: ts, GENERIC_SIGNATURE_HEADER: sigs}
