"""How an email's outbox row bounds duplicates when the worker dies mid-send (SMTP is not exactly-once).

SMTP has a window no client can close (RFC 1047): after the final ``.`` of DATA the server may accept
the message while the client never hears its ``250`` (the worker is killed, the connection drops). A
retry cannot know whether the first copy went out. So the row records how far each attempt got:

- ``sending``: the attempt is prepared; nothing that could be delivered has been sent yet. A retry
  that finds it sends again: nothing was delivered, so this is no duplicate.
- ``data_sent``: written and committed just *before* the final dot goes out (``MarkingSMTP``): from
  here on, a crash leaves the outcome unknown. A retry that finds it records ``outcome_unknown`` on the
  timeline and resends, after ``INVOICEFLOW_EMAIL_UNKNOWN_RESEND_DELAY_S``, at most
  ``INVOICEFLOW_EMAIL_MAX_UNKNOWN_RESENDS`` times (default 1, with the same Message-ID, so mail clients
  collapse a duplicate); past that the row becomes ``uncertain``: the email **may have been delivered**,
  the timeline says so and the activity waits for an operator (``POST /outbox/{key}/resend`` or
  ``/mark-delivered``), looking again every ``INVOICEFLOW_EMAIL_OPERATOR_POLL_S``.
- ``unknown``: a resend is due at ``payload.resend_after``; ``resend``: an operator asked for one more.

So an email goes out at most ``1 + max_unknown_resends`` times (an operator's resend adds one), and is
never silently dropped: until it is ``done`` (or ``failed``/``skipped``), its step does not complete.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from temporalio.exceptions import ApplicationError

from core.settings import Settings
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import OutboxEntry

WAITING_FOR_OPERATOR = "EmailOutcomeUnknown"
MAY_HAVE_BEEN_DELIVERED = "may have been delivered"


class MarkingSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose DATA calls ``before_final_dot`` after the message and before its dot.

    The same bytes as ``smtplib.SMTP.data`` (dot-stuffed, CRLF, then ``.``); only the hook is new."""

    before_final_dot: Callable[[], None] | None = None

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.putcmd("data")
        code, repl = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, repl)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode("ascii")  # type: ignore[attr-defined]
        quoted = smtplib._quote_periods(msg)  # type: ignore[attr-defined]
        if quoted[-2:] != smtplib.bCRLF:
            quoted += smtplib.bCRLF
        self.send(quoted)
        if self.before_final_dot is not None:
            self.before_final_dot()
        self.send(b"." + smtplib.bCRLF)
        return self.getreply()


def _event(session: Any, row: OutboxEntry, suffix: str, data: dict[str, Any], dedupe: str) -> None:
    if row.invoice_id is None:
        return  # estimates have no invoice timeline
    kind = (row.payload or {}).get("kind") or row.kind.removeprefix("email.")
    repo.add_event(
        session,
        row.invoice_id,
        f"email.{kind}.{suffix}",
        actor="workflow",
        data={"key": row.key} | data,
        dedupe_key=f"email:{row.key}:{dedupe}",
    )


def waiting(message: str, delay_s: float) -> ApplicationError:
    """A retryable error that makes Temporal try again in ``delay_s`` (not sooner, not on its backoff)."""
    return ApplicationError(
        message, type=WAITING_FOR_OPERATOR, next_retry_delay=timedelta(seconds=max(delay_s, 0.001))
    )


def gate(session: Any, row: OutboxEntry, settings: Settings) -> bool | ApplicationError:
    """Decide, under the row's lock, whether this attempt may send: True when a copy may already exist
    (the send is a resend), False when none can. An ``ApplicationError`` (``waiting``) when it must not
    send now: the caller commits what changed on the row, then raises it."""
    payload = dict(row.payload or {})
    now = datetime.now(UTC)
    if row.status == "data_sent":
        unknown = int(payload.get("unknown_outcomes", 0)) + 1
        payload["unknown_outcomes"] = unknown
        resends = int(payload.get("unknown_resends", 0))
        _event(
            session,
            row,
            "outcome_unknown",
            {"message_id": payload.get("message_id", ""), "attempt": row.attempts},
            f"unknown:{row.attempts}",
        )
        if resends >= settings.email_max_unknown_resends:
            row.status, row.payload = "uncertain", payload
            row.last_error = f"{MAY_HAVE_BEEN_DELIVERED}: the outcome of {unknown} send(s) is unknown"
            _event(
                session,
                row,
                "may_have_been_delivered",
                {
                    "message_id": payload.get("message_id", ""),
                    "to": payload.get("to", []),
                    "note": f"{MAY_HAVE_BEEN_DELIVERED}; an operator resends it or marks it delivered",
                },
                f"uncertain:{row.attempts}",
            )
            return waiting(
                f"{MAY_HAVE_BEEN_DELIVERED}; waiting for an operator", settings.email_operator_poll_s
            )
        row.status, row.payload = (
            "unknown",
            payload
            | {"resend_after": (now + timedelta(seconds=settings.email_unknown_resend_delay_s)).isoformat()},
        )
        return waiting(
            f"email {row.key}: the last send's outcome is unknown; resending once it is due",
            settings.email_unknown_resend_delay_s,
        )
    if row.status == "uncertain":
        return waiting(f"{MAY_HAVE_BEEN_DELIVERED}; waiting for an operator", settings.email_operator_poll_s)
    if row.status == "unknown":
        due = datetime.fromisoformat(payload.get("resend_after") or now.isoformat())
        if now < due:
            return waiting("resend after an unknown outcome is not due yet", (due - now).total_seconds())
        payload["unknown_resends"] = int(payload.get("unknown_resends", 0)) + 1
        row.payload = payload
        return True
    if row.status == "resend":
        return True
    return False  # new, or "sending": nothing that could have been delivered went out


def mark(url: str, key: str, status: str) -> None:
    """Move the row to ``status`` in its own committed transaction (``data_sent`` before the dot,
    ``sending`` back when the server answered a refusal: then nothing was delivered)."""
    with session_scope(url) as session:
        row = session.scalars(select(OutboxEntry).where(OutboxEntry.key == key).with_for_update()).one()
        row.status = status
        if status == "data_sent":
            row.payload = dict(row.payload or {}) | {"data_sent_at": datetime.now(UTC).isoformat()}


def operator_resend(session: Any, key: str, actor: str) -> OutboxEntry | None:
    """An operator asks for one more send of an email in doubt; None when there is no such email."""
    row = _locked(session, key)
    if row is None:
        return None
    if row.status not in ("uncertain", "unknown"):
        raise ValueError(f"email {key} is {row.status}; only an email in doubt is resent")
    row.status, row.last_error = "resend", None
    _event(session, row, "resend_requested", {"actor": actor}, f"resend:{row.attempts}")
    return row


def operator_mark_delivered(session: Any, key: str, actor: str) -> OutboxEntry | None:
    """An operator confirms an email in doubt arrived (the client has it): it is done, not sent again."""
    row = _locked(session, key)
    if row is None:
        return None
    if row.status not in ("uncertain", "unknown"):
        raise ValueError(f"email {key} is {row.status}; only an email in doubt is marked delivered")
    payload = row.payload or {}
    row.status, row.last_error, row.completed_at = "done", None, datetime.now(UTC)
    row.result = {"message_id": payload.get("message_id", ""), "to": payload.get("to", []), "by": actor}
    _event(
        session,
        row,
        "sent",
        {"message_id": payload.get("message_id", ""), "note": f"marked delivered by {actor}"},
        "sent",
    )
    return row


def _locked(session: Any, key: str) -> OutboxEntry | None:
    return session.scalars(
        select(OutboxEntry).where(OutboxEntry.key == key, OutboxEntry.kind.like("email.%")).with_for_update()
    ).one_or_none()
