"""Verification of inbound webhook signatures, one function per provider scheme.

Pure and stdlib-only (``hmac``, ``hashlib``, ``base64``, ``json``, ``re``): no I/O, no framework imports.
A receiver reads the **raw** request body (``await request.body()``) *before* any JSON parsing and calls
the provider's ``verify_*`` function with:

- ``headers``: any ``Mapping[str, str]``; header names are matched case-insensitively;
- ``body``: the raw body bytes exactly as received;
- ``secret``: one secret, or a sequence of secrets during rotation (success if any of them matches);
- ``now``: the current time in unix seconds, injected so that tests control the clock.

Every ``verify_*`` returns ``None`` on success and raises :class:`SignatureError` otherwise. Its
``reason`` is one of:

=====================  ==========================================================================
``missing_header``     a required header (or the PandaDoc ``signature`` query parameter) is absent
``malformed_header``   a header is present but cannot be parsed (not hex/base64, bad timestamp, ...)
``bad_signature``      well-formed but no secret produces it (also: wrong Basic-auth credentials)
``stale_timestamp``    the signed timestamp is outside the replay window, in the past *or* future
``missing_field``      a required body field is absent (Linear ``webhookTimestamp``, Dropbox Sign
                       ``event_hash`` / ``event_time`` / ``event_type``)
``malformed_body``     the body cannot be parsed where the scheme needs to read it (Linear)
=====================  ==========================================================================

Messages never contain a secret or an expected signature. A misconfiguration (no secret, an empty
secret) raises ``ValueError`` instead: that is a server error, not a bad request.

Signatures are checked before timestamps (as the Stripe and Linear SDKs do), so ``stale_timestamp``
is only reported for a request that was otherwise authentic. All digests are compared as decoded
bytes with :func:`hmac.compare_digest`.

Schemes (HMAC is always HMAC-SHA256 keyed with the UTF-8 secret):

=============  ===============================================  ==============================  ========
Provider       Header(s)                                        Signed message / encoding       Window
=============  ===============================================  ==============================  ========
HubSpot v3     ``X-HubSpot-Signature-v3``,                      ``method + uri + body + ts``,   300 s
               ``X-HubSpot-Request-Timestamp`` (unix **ms**)    base64
Pipedrive      ``Authorization: Basic base64(user:pass)``       (no signature; webhooks v2)     none
Jira           ``X-Hub-Signature: sha256=<hex>``                body, hex                       none
Linear         ``Linear-Signature: <hex>``                      body, hex; plus the body's      60 s
                                                                ``webhookTimestamp`` (unix ms)
GitHub         ``X-Hub-Signature-256: sha256=<hex>``            body, hex                       none
Asana          ``X-Hook-Signature: <hex>`` (handshake:          body, hex                       none
               ``X-Hook-Secret``, echoed back)
DocuSign       ``X-DocuSign-Signature-1`` .. ``-N``             body, base64; any header may    none
                                                                match any key
Dropbox Sign   body field ``event.event_hash``                  ``event_time + event_type``,    none
                                                                hex, keyed by the API key
PandaDoc       query parameter ``?signature=<hex>``             body, hex                       none
Stripe         ``Stripe-Signature: t=<s>,v1=<hex>[,v1=...]``    ``f"{t}." + body``, hex         300 s
Invoiceflow    ``X-Invoiceflow-Timestamp``,                     ``f"{ts}." + body``, hex        300 s
(generic)      ``X-Invoiceflow-Signature: v1=<hex>``
=============  ===============================================  ==============================  ========

Generic scheme (``verify_generic`` / ``sign_generic``), for any tool without its own scheme
-----------------------------------------------------------------------------------------------

The sender shares a secret with us and adds two headers to each POST::

    X-Invoiceflow-Timestamp: <unix seconds, decimal digits>
    X-Invoiceflow-Signature: v1=<hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body))>

- The signed message is the timestamp header's exact text, one ``.`` and the raw body bytes.
- The hex digest is lowercase (uppercase is accepted). During secret rotation the sender may send
  several comma-separated entries, ``v1=<hex>,v1=<hex>``; one matching entry suffices. Entries with
  another version prefix are ignored.
- The receiver rejects a timestamp more than 300 s away from its clock, in either direction.

Example (Python)::

    ts = str(int(time.time()))
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    headers = {"X-Invoiceflow-Timestamp": ts, "X-Invoiceflow-Signature": f"v1={sig}"}

Each HMAC scheme has a ``sign_*`` counterpart that builds what the provider sends (headers, or the
value the provider puts elsewhere), for tests, the demo command and the benchmark. ``sign_*`` take a
``timestamp`` in unix seconds where the scheme has one (HubSpot's is converted to milliseconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "SignatureError",
    "Secret",
    "verify_hubspot_v3",
    "sign_hubspot_v3",
    "hubspot_v3_signed_uri",
    "verify_pipedrive_basic_auth",
    "sign_pipedrive_basic_auth",
    "verify_jira",
    "sign_jira",
    "verify_linear",
    "sign_linear",
    "verify_github",
    "sign_github",
    "verify_asana",
    "sign_asana",
    "asana_handshake_response",
    "verify_docusign",
    "sign_docusign",
    "verify_dropbox_sign",
    "sign_dropbox_sign",
    "verify_pandadoc",
    "sign_pandadoc",
    "verify_stripe",
    "sign_stripe",
    "verify_generic",
    "sign_generic",
]

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
