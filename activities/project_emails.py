"""Emails a project's billing decision asks for: the account owner told that a deposit is paid (and
billing starts), a change order's approvers asked for their decision with a signed one-click link.

Same outbox as every other email (`activities.email`): one row per key, so a retried activity, a
replayed workflow or a retried trigger never sends a second message; an attempt whose outcome is in
doubt is resent with the same Message-ID a bounded number of times (`activities.email_delivery`).
"""

from __future__ import annotations

import smtplib
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import email_delivery as delivery
from activities.email import EmailActivities
from billing.money import format_money
from core.links import ChangeOrderToken, sign_change_order, token_id_for
from documents.rendering import render_named_email
from persistence.db import session_scope
from persistence.models import ChangeOrder, OutboxEntry, Project
from workflows.payloads import ActivityName, EmailResult, ProjectEmail


class ProjectEmailActivities(EmailActivities):
    @activity.defn(name=ActivityName.SEND_PROJECT_EMAIL)
    def send_project_email(self, request: ProjectEmail) -> EmailResult:
        prepared = self._prepare_project(request)
        if isinstance(prepared, EmailResult):
            return prepared
        if isinstance(prepared, ApplicationError):
            raise prepared
        message, recipients = prepared
        try:
            self._deliver(message, recipients, lambda: delivery.mark(self._url, request.key, "data_sent"))
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                return self._finish(request.key, "failed", f"SMTP {exc.smtp_code}: {exc.smtp_error!r}")
            delivery.mark(self._url, request.key, "sending")
            raise
        return self._finish(request.key, "done", "", message_id=message["Message-ID"], to=recipients)

    def _prepare_project(self, request: ProjectEmail):  # type: ignore[no-untyped-def]
        with session_scope(self._url) as session:
            row = session.scalars(
                select(OutboxEntry).where(OutboxEntry.key == request.key).with_for_update()
            ).one_or_none()
            if row is not None and row.status in ("done", "skipped", "failed"):
                return EmailResult(
                    key=request.key,
                    status="already_sent" if row.status == "done" else row.status,
                    message_id=(row.result or {}).get("message_id", ""),
                )
            if row is None:
                row = OutboxEntry(key=request.key, kind=f"email.{request.kind}", invoice_id=None, attempts=0)
                session.add(row)
            else:
                decision = delivery.gate(session, row, self._settings)
                if isinstance(decision, ApplicationError):
                    return decision
            project = session.get(Project, uuid.UUID(request.project_id))
            if project is None:
                raise ApplicationError(f"project {request.project_id} does not exist", non_retryable=True)
            context: dict[str, object] = {
                "project_name": project.name,
                "customer_name": project.customer.name,
                "seller_name": self._settings.seller_name,
                "project_url": f"{self._settings.public_url.rstrip('/')}/projects/{project.id}",
            }
            if request.kind == "project_started" and project.deposit_invoice_id is not None:
                context["total"] = format_money(project.deposit_billed, project.currency)
            if request.kind == "change_order_approval":
                order = session.get(ChangeOrder, uuid.UUID(request.change_order_id or ""))
                if order is None or order.status != "pending_approval":
                    row.status, row.completed_at = "skipped", datetime.now(UTC)
                    row.last_error = "change order no longer waits for approval"
                    return EmailResult(key=request.key, status="skipped", detail=row.last_error)
                token = sign_change_order(
                    self._settings.secret_key,
                    ChangeOrderToken(
                        str(order.id), request.step, request.approver, token_id_for(request.key)
                    ),
                )
                base = self._settings.public_url.rstrip("/")
                context |= {
                    "approval_url": f"{base}/approvals/change-orders/{token}",
                    "approver": request.approver,
                    "step": f"{request.step + 1} of {request.of_steps}",
                    "number": str(order.number),
                    "reason": order.reason,
                    "contract_before": format_money(order.contract_before or 0, project.currency),
                    "contract_after": format_money(order.contract_after or 0, project.currency),
                }
            rendered = render_named_email(request.kind, context, self._settings.template_dir)
            message = self._message(rendered, list(request.to), request.key)
            row.status, row.attempts = "sending", row.attempts + 1
            row.payload = dict(row.payload or {}) | {
                "to": list(request.to),
                "message_id": message["Message-ID"],
                "kind": request.kind,
                "project_id": request.project_id,
            }
        return message, list(request.to)

    def _finish(self, key: str, status: str, error: str, **result: object) -> EmailResult:
        with session_scope(self._url) as session:
            row = session.scalars(select(OutboxEntry).where(OutboxEntry.key == key).with_for_update()).one()
            row.status, row.completed_at = status, datetime.now(UTC)
            row.last_error = error or None
            if result:
                row.result = dict(result)
        return EmailResult(
            key=key,
            status="sent" if status == "done" else status,
            message_id=str(result.get("message_id", "")),
        )
