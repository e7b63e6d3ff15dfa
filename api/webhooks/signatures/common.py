"""What every scheme shares: secrets (rotated lists), headers, constant-time comparison, timestamps."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

Secret = str | Sequence[str]
"""One secret, or several accepted at once during rotation."""

_SHA256_LEN = 32
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]{1,19}")


class SignatureError(Exception):
    """A webhook request failed verification.

    ``reason`` is short and machine-readable (see the module docstring); ``str(err)`` is a human
    message that never contains a secret or an expected signature.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"SignatureError(reason={self.reason!r}, message={self.message!r})"


# ---------------------------------------------------------------------------------------------------
# helpers


def _secrets(secret: Secret, what: str = "secret") -> list[bytes]:
    """The configured secret(s) as HMAC keys; fail closed on a misconfiguration."""
    if isinstance(secret, str):
        items: Iterable[Any] = [secret]
    elif isinstance(secret, bytes | bytearray):
        raise TypeError(f"{what} must be a str or a sequence of str, not bytes")
    else:
        items = secret
    keys: list[bytes] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{what} must be a str or a sequence of str")
        if not item:
            raise ValueError(f"an empty {what} is configured")
        keys.append(item.encode("utf-8"))
    if not keys:
        raise ValueError(f"no {what} is configured")
    return keys


def _single_secret(secret: str, what: str = "secret") -> bytes:
    if not isinstance(secret, str):
        raise TypeError(f"{what} must be a str")
    return _secrets(secret, what)[0]


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # ``items()`` works for dicts and for Starlette's ``Headers`` (which may repeat a name: first wins).
    out: dict[str, str] = {}
    for name, value in headers.items():
        out.setdefault(str(name).lower(), value)
    return out


def _header(headers: Mapping[str, str], name: str) -> str:
    value = _lower_headers(headers).get(name.lower())
    if value is None or not str(value).strip():
        raise SignatureError("missing_header", f"missing header {name}")
    return str(value).strip()


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _hex_digest(value: str, name: str) -> bytes:
    if not _HEX64.fullmatch(value):
        raise SignatureError("malformed_header", f"{name} is not a hex SHA-256 digest")
    return bytes.fromhex(value)


def _b64_digest(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == _SHA256_LEN else None


def _matches_any(keys: list[bytes], message: bytes, candidates: Iterable[bytes]) -> bool:
    """True if HMAC(key, message) equals any candidate for any key (constant-time per comparison)."""
    candidates = list(candidates)
    found = False
    for key in keys:
        expected = _hmac(key, message)
        for candidate in candidates:
            # no early exit: the time taken does not depend on which key or candidate matched
            found |= hmac.compare_digest(expected, candidate)
    return found


def _parse_timestamp(value: str, name: str) -> int:
    if not _DIGITS.fullmatch(value):
        raise SignatureError("malformed_header", f"{name} is not a unix timestamp")
    return int(value)


def _check_window(timestamp_s: float, now: float, tolerance: float) -> None:
    if abs(now - timestamp_s) > tolerance:
        where = "too old" if timestamp_s < now else "too far in the future"
        raise SignatureError("stale_timestamp", f"timestamp is {where} (tolerance {tolerance:g} s)")


def _bad_signature(provider: str) -> SignatureError:
    return SignatureError("bad_signature", f"{provider} signature does not match")


def _hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------------------------------
# HubSpot v3
