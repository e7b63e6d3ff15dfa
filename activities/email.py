"""Send invoice emails once per logical key, through an outbox row, with duplicates bounded.

The row moves ``sending`` → ``data_sent`` → ``done`` around the SMTP conversation:

- a retry that finds ``done`` returns the recorded Message-ID and sends nothing (the usual crash: the
  worker died after sending, before Temporal heard the activity completed);
- a retry that finds ``sending`` sends: the last attempt died before the final dot, nothing was delivered;
- a retry that finds ``data_sent`` cannot know whether the server accepted the first attempt (RFC 1047):
  it resends a bounded number of times, later, with the *same* deterministic Message-ID, then waits for
  an operator with the email shown as "may have been delivered" (``activities.email_delivery``).

Reminders and escalations re-check the invoice inside the same transaction, so nothing goes out for an
invoice that was paid, voided or written off while the timer was running.
"""

from __future__ import annotations

import hashlib
import smtplib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from sqlalchemy import select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import email_delivery as delivery
from activities.invoices import non_retryable
from billing.status import FINAL_STATUSES
from core.links import ApprovalToken, sign_approval, sign_estimate, token_id_for
from core.settings import Settings
from documents.builders import credit_note_context, email_context, estimate_context
from documents.rendering import RenderedEmail, render_email, render_named_email
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import CreditNote, Document, Estimate, OutboxEntry
from workflows.payloads import ActivityName, EmailRequest, EmailResult

CUSTOMER_KINDS = {"invoice", "reminder", "payment_receipt", "credit_note"}
DUNNING_KINDS = {"reminder", "escalation", "dunning_notice"}


def attach_einvoice_xml(session, message: EmailMessage, invoice) -> None:  # type: ignore[no-untyped-def]
    """The XML e-invoice (XRechnung, Peppol UBL) travels beside the PDF; a Factur-X one is the PDF."""
    key = invoice.einvoice_key
    if invoice.einvoice_status != "valid" or not key or not key.endswith(".xml"):
        return
    document = session.get(Document, key)
    if document is None:
        raise ApplicationError(f"document {key} is missing", type="MissingDocument")
    message.add_attachment(
        document.content, maintype="application", subtype="xml", filename=key.rsplit("/", 1)[-1]
    )


def attach_credit_note_xml(session: Session, message: EmailMessage, note: CreditNote) -> None:
    """A credit note's validated XML e-invoice, when one was stored beside its PDF."""
    from activities.einvoice import credit_note_einvoice_key
    from documents.einvoice.profiles import CUSTOMER_FORMAT

    fmt = CUSTOMER_FORMAT.get(note.invoice.customer.einvoice_format or "none")
    if fmt is None or fmt == "facturx":
        return
    key = credit_note_einvoice_key(note, fmt)
    document = session.get(Document, key)
    if document is not None:
        message.add_attachment(
            document.content, maintype="application", subtype="xml", filename=key.rsplit("/", 1)[-1]
        )


def message_id_for(key: str, mail_from: str) -> str:
    """Deterministic per logical email: the same key always yields the same Message-ID."""
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "invoiceflow.localhost"
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


#: Emails the client reads: they link the hosted invoice page and carry the open pixel (approvers' and the
#: account owner's emails do not, so their opens are never counted as the client's).
CLIENT_KINDS = ("invoice", "reminder", "payment_receipt", "credit_note")


class EmailActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._url = settings.require_database_url()

    @activity.defn(name=ActivityName.SEND_EMAIL)
    def send_email(self, request: EmailRequest) -> EmailResult:
        # No heartbeat before the short prepare transaction: the heartbeat timeout already counts from the
        # start, and a sync activity's heartbeat waits for the worker's event loop (py-spy: a fifth of an
        # email's wall time on a busy worker went to its three heartbeats).
        prepared = self._prepare(request)
        if isinstance(prepared, EmailResult):
            return prepared
        if isinstance(prepared, ApplicationError):
            raise prepared  # an outcome in doubt: resend later, or wait for an operator (email_delivery)
        message, recipients, uncertain = prepared
        activity.heartbeat("sending")

        def before_final_dot() -> None:
            delivery.mark(self._url, request.key, "data_sent")  # a crash from here on is known

        try:
            self._deliver(message, recipients, before_final_dot)
        except smtplib.SMTPRecipientsRefused as exc:
            return self._fail(request, f"all recipients refused: {exc.recipients}")
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                return self._fail(request, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
            delivery.mark(self._url, request.key, "sending")  # refused, so not delivered: no doubt
            raise  # 4xx: transient, Temporal retries
        activity.heartbeat("recording")
        return self._record_sent(request, message["Message-ID"], recipients, uncertain)

    # -- steps ------------------------------------------------------------------------------------

    def _prepare(
        self, request: EmailRequest
    ) -> EmailResult | ApplicationError | tuple[EmailMessage, list[str], bool]:
        with session_scope(self._url) as session:
            row = session.scalars(
                select(OutboxEntry).where(OutboxEntry.key == request.key).with_for_update()
            ).one_or_none()
            if row is not None and row.status in ("done", "skipped", "failed"):
                return EmailResult(
                    key=request.key,
                    status="already_sent" if row.status == "done" else row.status,
                    message_id=(row.result or {}).get("message_id", ""),
                    detail=row.last_error or "",
                )
            if request.estimate_id is not None:
                return self._prepare_estimate(session, request, row)
            try:
                invoice = repo.get_invoice(session, uuid.UUID(request.invoice_id), children=False)
            except repo.InvoiceNotFound as exc:
                raise non_retryable(exc) from exc
            if row is None:
                row = OutboxEntry(
                    key=request.key, kind=f"email.{request.kind}", invoice_id=invoice.id, attempts=0
                )
                session.add(row)
                uncertain = False
            else:
                decision = delivery.gate(session, row, self._settings)
                if isinstance(decision, ApplicationError):
                    return decision  # committed on the way out, then raised
                uncertain = decision

            skip = None
            if request.kind in DUNNING_KINDS and invoice.status in FINAL_STATUSES:
                skip = f"invoice is {invoice.status}"
            if request.kind == "approval_request" and invoice.status != "pending_approval":
                skip = f"invoice is {invoice.status}, no longer waiting for approval"
            if request.audience:
                recipients = self._dunning_recipients(request, invoice)
            else:
                recipients = list(request.to) if request.to else self._recipients(request.kind, invoice)
            if skip is None and not recipients:
                if request.audience == "internal":
                    skip = f"no address for {', '.join(r for r in request.recipients if r != 'client')}"
                else:
                    skip = (
                        "no account owner"
                        if request.kind in ("escalation", "approval_rejected")
                        else "no recipient"
                    )
            if skip is not None:
                row.status = "skipped"
                row.last_error = skip
                row.completed_at = datetime.now(UTC)
                repo.add_event(
                    session,
                    invoice.id,
                    f"email.{request.kind}.skipped",
                    actor="workflow",
                    data={"key": request.key, "reason": skip},
                    dedupe_key=f"email:{request.key}:skipped",
                )
                return EmailResult(key=request.key, status="skipped", detail=skip)

            context = email_context(invoice, self._settings, offset_days=request.offset_days)
            if request.kind not in CLIENT_KINDS:
                context["pay_url"] = ""
            elif context["pay_url"]:
                context["open_pixel_url"] = f"{context['pay_url']}/open.gif"
            if request.approval is not None:
                client = {e.strip().lower() for e in invoice.customer.emails}
                context |= self._approval_context(request, to_client=request.approval.approver in client)
            if request.comment:
                context["comment"] = request.comment
            filename = f"{invoice.number or 'invoice'}.pdf"
            if request.credit_note_id is not None:
                note = session.get(CreditNote, uuid.UUID(request.credit_note_id))
                if note is None or note.invoice_id != invoice.id:
                    raise non_retryable(
                        repo.InvoiceNotFound(
                            f"credit note {request.credit_note_id} of invoice {invoice.id} does not exist"
                        )
                    )
                context |= credit_note_context(note)
                filename = f"{note.number}.pdf"
            if request.audience:
                rendered = self._render_dunning(request, invoice, context)
            else:
                rendered = render_email(request.kind, context, self._settings.template_dir)
            message = self._message(rendered, recipients, request.key)
            if request.attach_pdf_key:
                document = session.get(Document, request.attach_pdf_key)
                if document is None:
                    raise ApplicationError(
                        f"document {request.attach_pdf_key} is missing", type="MissingDocument"
                    )
                message.add_attachment(
                    document.content, maintype="application", subtype="pdf", filename=filename
                )
            if request.kind == "invoice":
                attach_einvoice_xml(session, message, invoice)
            elif request.credit_note_id is not None:
                attach_credit_note_xml(session, message, note)

            row.status = "sending"
            row.attempts += 1
            row.payload = dict(row.payload or {}) | {
                "to": recipients,
                "message_id": message["Message-ID"],
                "kind": request.kind,
            }
        # Committed: the attempt is on record before a byte goes to the SMTP server.
        return message, recipients, uncertain

    def _message(self, rendered: RenderedEmail, recipients: list[str], key: str) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = rendered.subject
        message["From"] = self._settings.mail_from
        message["To"] = ", ".join(recipients)
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = message_id_for(key, self._settings.mail_from)
        message["X-Invoiceflow-Key"] = key
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message

    def _prepare_estimate(self, session, request: EmailRequest, row: OutboxEntry | None):  # type: ignore[no-untyped-def]
        assert request.estimate_id is not None
        estimate = session.get(Estimate, uuid.UUID(request.estimate_id))
        if estimate is None:
            raise ApplicationError(
                f"estimate {request.estimate_id} does not exist", type="InvoiceNotFound", non_retryable=True
            )
        if row is None:
            row = OutboxEntry(key=request.key, kind="email.estimate", invoice_id=None, attempts=0)
            session.add(row)
            uncertain = False
        else:
            decision = delivery.gate(session, row, self._settings)
            if isinstance(decision, ApplicationError):
                return decision
            uncertain = decision
        recipients = [str(Address(addr_spec=e)) for e in estimate.customer.emails]
        token = sign_estimate(self._settings.secret_key, str(estimate.id))
        link = f"{self._settings.public_url.rstrip('/')}/estimates/view/{token}"
        rendered = render_email(
            request.kind, estimate_context(estimate, self._settings, link), self._settings.template_dir
        )
        message = self._message(rendered, recipients, request.key)
        row.status = "sending"
        row.attempts += 1
        row.payload = dict(row.payload or {}) | {
            "to": recipients,
            "message_id": message["Message-ID"],
            "kind": request.kind,
        }
        return message, recipients, uncertain

    def _approval_context(self, request: EmailRequest, *, to_client: bool = False) -> dict[str, object]:
        spec = request.approval
        assert spec is not None
        token = sign_approval(
            self._settings.secret_key,
            ApprovalToken(
                invoice_id=request.invoice_id,
                revision=spec.revision,
                step=spec.step,
                approver=spec.approver,
                token_id=token_id_for(request.key),
            ),
        )
        return {
            "approval_url": f"{self._settings.public_url.rstrip('/')}/approvals/{token}",
            "approver": spec.approver,
            "step": "" if to_client else f"{spec.step + 1} of {spec.of_steps}",  # the chain is internal
            "reminder": spec.reminder,
        }

    def _dunning_recipients(self, request: EmailRequest, invoice) -> list[str]:  # type: ignore[no-untyped-def]
        """A policy step's recipients by role: ``client`` = the invoice's emails (client audience only);
        ``account_owner`` = the customer's owner; ``finance_lead`` = INVOICEFLOW_FINANCE_LEAD_EMAIL."""
        if request.audience == "client":
            return [str(Address(addr_spec=e)) for e in invoice.customer.emails]
        found: list[str] = []
        for role in request.recipients:
            address = {
                "account_owner": invoice.customer.owner_email,
                "finance_lead": self._settings.finance_lead_email,
            }.get(role)
            if address and address not in found:
                found.append(address)
        return found

    def _render_dunning(self, request: EmailRequest, invoice, context: dict[str, object]) -> RenderedEmail:  # type: ignore[no-untyped-def]
        """The client reads the step's template; internal recipients read the escalation template (the
        policy's) or the internal notice of a client step, never the client-facing text."""
        context["tone"] = request.tone
        if request.audience == "client":
            return render_named_email(request.template, context, self._settings.template_dir)
        told_client = request.kind == "dunning_notice" and "client" in request.recipients
        context["client_emails"] = ", ".join(invoice.customer.emails) if told_client else ""
        name = request.template if request.kind == "escalation" else "dunning_notice"
        return render_named_email(name, context, self._settings.template_dir)

    def _recipients(self, kind: str, invoice) -> list[str]:  # type: ignore[no-untyped-def]
        if kind in ("escalation", "approval_rejected"):
            return [invoice.customer.owner_email] if invoice.customer.owner_email else []
        if kind in CUSTOMER_KINDS:
            return [str(Address(addr_spec=e)) for e in invoice.customer.emails]
        raise ApplicationError(f"unknown email kind {kind!r}", type="InvalidInvoice", non_retryable=True)

    def _deliver(
        self, message: EmailMessage, recipients: list[str], before_final_dot: Callable[[], None]
    ) -> None:
        s = self._settings
        if not s.smtp_host:
            raise ApplicationError("INVOICEFLOW_SMTP_HOST is not set", type="SmtpNotConfigured")
        with delivery.MarkingSMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_s) as smtp:
            smtp.before_final_dot = before_final_dot
            if s.smtp_starttls:
                smtp.starttls()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
            smtp.send_message(message, to_addrs=recipients)

    def _record_sent(
        self, request: EmailRequest, message_id: str, recipients: list[str], uncertain: bool
    ) -> EmailResult:
        with session_scope(self._url) as session:
            row = session.scalars(
                select(OutboxEntry).where(OutboxEntry.key == request.key).with_for_update()
            ).one()
            row.status = "done"
            row.completed_at = datetime.now(UTC)
            row.result = {"message_id": message_id, "to": recipients}
            data = {"key": request.key, "message_id": message_id, "to": recipients}
            if uncertain:
                data["note"] = "resent after an attempt with unknown outcome; same Message-ID"
            if request.estimate_id is None:
                repo.add_event(
                    session,
                    uuid.UUID(request.invoice_id),
                    f"email.{request.kind}.sent",
                    actor="workflow",
                    data=data,
                    dedupe_key=f"email:{request.key}:sent",
                )
        return EmailResult(key=request.key, status="sent", message_id=message_id)

    def _fail(self, request: EmailRequest, error: str) -> EmailResult:
        """A permanent SMTP refusal: retrying cannot help; record it where operators look."""
        with session_scope(self._url) as session:
            row = session.scalars(
                select(OutboxEntry).where(OutboxEntry.key == request.key).with_for_update()
            ).one()
            row.status = "failed"
            row.last_error = error
            row.completed_at = datetime.now(UTC)
            if request.estimate_id is not None:
                return EmailResult(key=request.key, status="failed", detail=error)
            repo.add_event(
                session,
                uuid.UUID(request.invoice_id),
                f"email.{request.kind}.failed",
                actor="workflow",
                data={"key": request.key, "error": error},
                dedupe_key=f"email:{request.key}:failed",
            )
        return EmailResult(key=request.key, status="failed", detail=error)
