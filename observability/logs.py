"""Logging for every invoiceflow process: JSON lines (``INVOICEFLOW_LOG_FORMAT=json``) or readable
console lines (the default), through structlog's formatter on the standard library's logging.

Every record, ours or a library's (uvicorn, SQLAlchemy, Temporal's SDK and its Rust core, forwarded),
goes through one chain: context bound for the request or activity (request id, invoice id, workflow id
and run id, activity type and attempt), the ``extra`` fields of the call, Temporal's own log context
flattened, then redaction (``observability.redact``) of every string, then the renderer. So a secret
cannot reach a log line by a path nobody thought of: it is removed at the last step, whatever logged it."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Literal

import structlog
from structlog.typing import EventDict, WrappedLogger

from observability.redact import Redactor, secrets_of

REDACTOR = Redactor()
DROPPED = {"color_message"}  # uvicorn's copy of the message with terminal colours
INVOICE_WORKFLOW = re.compile(r"^invoice-([0-9a-f\-]{36})$")
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}


def _flatten_temporal(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Temporal's ``workflow.logger``/``activity.logger`` put their context in one dict: lift it up."""
    for key in ("temporal_workflow", "temporal_activity"):
        data = event.pop(key, None)
        if not isinstance(data, dict):
            continue
        event.setdefault("workflow_id", data.get("workflow_id"))
        event.setdefault("run_id", data.get("run_id") or data.get("workflow_run_id"))
        if "activity_type" in data:
            event.setdefault("activity_type", data.get("activity_type"))
            event.setdefault("attempt", data.get("attempt"))
        else:
            event.setdefault("workflow_type", data.get("workflow_type"))
    match = INVOICE_WORKFLOW.match(str(event.get("workflow_id") or ""))
    if match:
        event.setdefault("invoice_id", match.group(1))
    return event


def _extras(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    record: logging.LogRecord | None = event.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_") and key not in event:
                event[key] = value
    return event


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return REDACTOR.text(value)
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return REDACTOR.text(str(value))


def _redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return {k: (v if k.startswith("_") else _scrub(v)) for k, v in event.items()}


def _drop_none(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    return {k: v for k, v in event.items() if v is not None and k not in DROPPED}


def configure(
    fmt: Literal["json", "console"] = "console",
    level: str | int = "INFO",
    *,
    settings: object | None = None,
    stream: Any = None,
) -> None:
    """Route all logging of this process through the chain above; ``settings`` names the secrets."""
    if settings is not None:
        REDACTOR.add(secrets_of(settings))
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _extras,
        _flatten_temporal,
    ]
    renderer: Any
    if fmt == "json":
        tail: list[Any] = [structlog.processors.format_exc_info, _drop_none, _redact]
        renderer = structlog.processors.JSONRenderer(default=str)
    else:
        tail = [structlog.processors.format_exc_info, _drop_none, _redact]
        renderer = structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[*tail, structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings become log lines too (JSON, redacted), not stray stderr text
    for noisy, noisy_level in (
        ("httpx", logging.WARNING),
        ("httpcore", logging.WARNING),
        ("alembic", logging.WARNING),
    ):
        logging.getLogger(noisy).setLevel(noisy_level)
    # uvicorn's own handlers would print unredacted raw paths: everything goes to the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    structlog.configure(
        processors=[*shared[:4], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def configure_from_settings(settings: Any) -> None:
    configure(settings.log_format, settings.log_level, settings=settings)
