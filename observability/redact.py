"""Keep secrets out of logs: configured secret values, signed link tokens, credentials in URLs.

Two layers, because neither alone is enough. Known values (every secret setting: API token, secret key,
SMTP password, webhook secrets, client secrets) are replaced wherever they appear in a log line. Values
nobody configured but that are secrets all the same (signed approval/estimate/invoice-page links, OAuth
codes and tokens, a webhook's ``?token=``) are recognised by shape and by the name they travel under."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words; no real secret is that short

# Query and form parameters whose value is a credential at some provider or in our own links.
SENSITIVE_PARAMS = re.compile(
    r"(token|secret|signature|sig|password|passwd|key|code|state|auth|credential|session)", re.IGNORECASE
)
# itsdangerous tokens (our signed links): base64url payload . timestamp . signature
SIGNED_TOKEN = re.compile(r"[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{16,}(\.[A-Za-z0-9_\-]+)?")
#: The shortest text SIGNED_TOKEN matches: 8 + "." + 4 + "." + 16.
SIGNED_TOKEN_MIN_LENGTH = 30
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}")
QUERY_CREDENTIAL = re.compile(
    r"(?i)([?&][a-z_\-]*(?:token|secret|signature|sig|password|key|code|state|auth)[a-z_\-]*=)[^&\s\"']+"
)
URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^/\s:@]+):([^/\s@]+)@")
# Paths whose last segment is a signed token whatever its shape (approval, estimate, hosted invoice pages).
TOKEN_PATHS = re.compile(r"^(/(?:approvals/change-orders|approvals|estimates/view|i)/)[^/?]+")

SECRET_SETTINGS = (
    "api_token",
    "secret_key",
    "token_key",
    "smtp_password",
    "temporal_api_key",
    "metrics_token",
    "hubspot_webhook_secret",
    "pipedrive_webhook_secret",
    "jira_webhook_secret",
    "linear_webhook_secret",
    "github_webhook_secret",
    "asana_webhook_secret",
    "docusign_webhook_secret",
    "dropbox_sign_webhook_secret",
    "pandadoc_webhook_secret",
    "generic_webhook_secret",
    "stripe_webhook_secret",
    "hubspot_api_token",
    "asana_api_token",
    "pipedrive_api_token",
    "xero_client_secret",
    "qbo_client_secret",
    "freshbooks_client_secret",
    "admin_password",
    "xero_webhook_key",
    "qbo_webhook_verifier",
    "freshbooks_webhook_verifier",
    "netsuite_private_key",
    "toggl_webhook_secret",
    "clockify_webhook_secret",
)


def secrets_of(settings: object) -> list[str]:
    """Every secret value in ``settings`` (comma-separated lists split), longest first."""
    values: set[str] = set()
    for name in SECRET_SETTINGS:
        value = getattr(settings, name, None)
        if hasattr(value, "get_secret_value"):  # pydantic SecretStr: its text, not its mask
            value = value.get_secret_value()
        if not value:
            continue
        value = str(value)
        values.add(value)
        values |= {part.strip() for part in value.split(",")}
    database_url = getattr(settings, "database_url", None) or ""
    match = re.search(r"://[^:/@]+:([^@]+)@", database_url)
    if match:
        values.add(match.group(1))
    return sorted((v for v in values if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


class Redactor:
    """Applies both layers to free text; ``known`` grows as secrets become known (settings at start)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known: list[str] = []
        self.add(known)

    def add(self, values: Iterable[str]) -> None:
        merged = set(self.known) | {v for v in values if v and len(v) >= MIN_SECRET_LENGTH}
        self.known = sorted(merged, key=len, reverse=True)

    def text(self, value: str) -> str:
        """``value`` with both layers applied. Most of a log line's strings are short words, ids and
        numbers that no pattern can match: each pattern runs only when the characters it needs are there
        (a log line's redaction was a sixth of its formatting on a busy API)."""
        if len(value) < MIN_SECRET_LENGTH:  # shorter than any known secret and than every pattern
            return value
        for secret in self.known:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if "@" in value and "://" in value:
            value = URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", value)
        if "=" in value and ("?" in value or "&" in value):
            value = QUERY_CREDENTIAL.sub(lambda m: m.group(1) + REDACTED, value)
        value = BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        if "." in value and len(value) >= SIGNED_TOKEN_MIN_LENGTH:
            value = SIGNED_TOKEN.sub(REDACTED, value)
        return value


def query(qs: str) -> str:
    """A query string with every credential-named parameter's value replaced."""
    if not qs:
        return ""
    pairs = parse_qsl(qs, keep_blank_values=True)
    return urlencode([(k, REDACTED if SENSITIVE_PARAMS.search(k) else v) for k, v in pairs], safe="[]")


def path(raw_path: str, qs: str = "") -> str:
    """A request target fit for an access log: link tokens in the path and credentials in the query out."""
    cleaned = TOKEN_PATHS.sub(lambda m: m.group(1) + REDACTED, raw_path)
    cleaned = SIGNED_TOKEN.sub(REDACTED, cleaned)
    redacted_query = query(qs)
    return f"{cleaned}?{redacted_query}" if redacted_query else cleaned


def url(value: str) -> str:
    """A full URL (``scheme://host/path?query``) with the same treatment as ``path``."""
    base, _, qs = value.partition("?")
    match = re.match(r"^([a-z][a-z0-9+.\-]*://[^/]+)(.*)$", base, re.IGNORECASE)
    if match is None:
        return path(base, qs)
    return URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{REDACTED}@", match.group(1)) + path(
        match.group(2) or "", qs
    )
