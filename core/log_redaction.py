"""Secrets never reach a log line: a logging filter that redacts link tokens and credentials.

Link tokens are bearer credentials (whoever has ``/i/<token>`` sees the invoice, ``/approvals/<token>``
decides for an approver), and the aging page accepts the operator token as ``?token=``. The access log
writes every request line, so without this filter each of them landed in the log in clear. The filter
rewrites the formatted message of every record that passes a handler it is attached to:

- path segments after ``/i/``, ``/approvals/`` and ``/estimates/view/`` become ``[redacted]``;
- query parameters that carry secrets (``token``, ``signature``, ``code``, ``state``, ``key``,
  ``access_token``, ``refresh_token``, ``client_secret``) keep their name and lose their value;
- ``Bearer <token>`` and ``Basic <credentials>`` lose the credentials.

``redacted_log_config()`` is uvicorn's own logging configuration with the filter on both its handlers
(``invoiceflow api`` and the dev stack use it).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "[redacted]"
_TOKEN_PATHS = re.compile(r"(/(?:i|approvals|estimates/view)/)[^/?#\s\"]+")
_SECRET_QUERY = re.compile(
    r"([?&](?:token|signature|code|state|key|access_token|refresh_token|client_secret)=)[^&#\s\"]*",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with link tokens, secret query values and authorization credentials replaced."""
    text = _TOKEN_PATHS.sub(rf"\g<1>{REDACTED}", text)
    text = _SECRET_QUERY.sub(rf"\g<1>{REDACTED}", text)
    return _AUTH_HEADER.sub(rf"\g<1> {REDACTED}", text)


class RedactSecrets(logging.Filter):
    """Formats the record's message once, redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
                # Keep uvicorn's access-log arguments (its formatter colours them): redact the path only.
                client, method, path, version, status = record.args
                record.args = (client, method, redact(str(path)), version, status)
            else:
                record.msg, record.args = clean, ()
        return True


def redacted_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with ``RedactSecrets`` on every handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "core.log_redaction.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config


def install(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
