"""Every change the console makes, one function per action, each calling the very function the JSON
API's route calls (so the workflow Update, its validator and the route's checks are the same).

This is the one place to re-point when those route bodies move into a ``services`` layer. A refusal
comes back as ``ActionRefused`` with the route's (often the workflow's) own message.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import yaml
from fastapi import HTTPException, Request, Response
from pydantic import ValidationError

from api.deps import Db
from api.routes import (
    approval_rules,
    credit_notes,
    customers,
    dunning,
    estimates,
    invoices,
    projects,
    refunds,
    subscriptions,
)
from api.schemas import (
    ApprovalDecisionCreate,
    ApproveCreate,
    CancelCreate,
    CreditNoteCreate,
    CustomerCreate,
    CustomerUpdate,
    InvoiceCreate,
    PauseCreate,
    PaymentCreate,
    RefundCreate,
    ResendCreate,
    TermsCreate,
    UncollectibleCreate,
    VoidCreate,
)
from services.errors import ServiceError

T = TypeVar("T")


class ActionRefused(Exception):
    """The action was not done; ``message`` says why in the words of the code that refused it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _detail(detail: Any) -> str:
    if isinstance(detail, list):  # FastAPI/pydantic style: [{"loc": [...], "msg": ...}]
        parts = []
        for item in detail:
            loc = [str(p) for p in item.get("loc", []) if p not in ("body",)]
            msg = str(item.get("msg", item))
            parts.append(f"{'.'.join(loc)}: {msg}" if loc and not msg.startswith(loc[-1]) else msg)
        return "; ".join(parts)
    return str(detail)


def validation_message(exc: ValidationError) -> str:
    return _detail([{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()])


def build(model: type[T], **values: Any) -> T:
    """A request body from form fields, with the API's own validation."""
    try:
        return model.model_validate(values)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        raise ActionRefused(validation_message(exc)) from None


async def _call(awaitable: Awaitable[T]) -> T:
    try:
        return await awaitable
    except HTTPException as exc:
        raise ActionRefused(_detail(exc.detail)) from None
    except ServiceError as exc:  # the use case's own refusal (a workflow's reason, a missing object)
        raise ActionRefused(exc.message) from None


class Actions:
    """Bound to one request: the app's database, Temporal client, settings and the acting user."""

    def __init__(self, request: Request, actor: str) -> None:
        state = request.app.state
        self.request, self.actor = request, actor
        self.db: Db = state.db
        self.temporal, self.settings, self.dispatcher = state.temporal, state.settings, state.dispatcher

    async def create_customer(self, body: CustomerCreate) -> Any:
        return await _call(
            customers.create_customer(body=body, response=Response(), db=self.db, _=self.actor)
        )

    async def create_invoice(self, body: InvoiceCreate, key: str) -> Any:
        return await _call(
            invoices.create_invoice(
                body=body,
                response=Response(),
                db=self.db,
                temporal=self.temporal,
                settings=self.settings,
                operator=self.actor,
                idempotency_key=key,
            )
        )

    async def dry_run(self, customer_id: uuid.UUID, total: Any, currency: str) -> Any:
        body = build(
            approval_rules.DryRunCreate,
            customer_id=customer_id,
            total=str(total),
            currency=currency,
            source="api",
        )
        return await _call(approval_rules.dry_run(body=body, db=self.db, _=self.actor))

    async def record_payment(self, invoice_id: uuid.UUID, body: PaymentCreate, key: str) -> Any:
        return await _call(
            invoices.record_payment(
                invoice_id=invoice_id,
                body=body,
                response=Response(),
                db=self.db,
                temporal=self.temporal,
                settings=self.settings,
                operator=self.actor,
                idempotency_key=key,
            )
        )

    async def approve(self, invoice_id: uuid.UUID, comment: str) -> Any:
        return await _call(
            invoices.approve_invoice(
                invoice_id=invoice_id,
                body=build(ApproveCreate, comment=comment),
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
            )
        )

    async def decide(self, invoice_id: uuid.UUID, approver: str, decision: str, comment: str) -> Any:
        body = build(ApprovalDecisionCreate, approver=approver, decision=decision, comment=comment)
        return await _call(
            invoices.decide(
                invoice_id=invoice_id,
                body=body,
                request=self.request,
                db=self.db,
                temporal=self.temporal,
                _=self.actor,
            )
        )

    async def void(self, invoice_id: uuid.UUID, reason: str) -> Any:
        return await _call(
            invoices.void_invoice(
                invoice_id=invoice_id,
                body=build(VoidCreate, reason=reason),
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
            )
        )

    async def resend(self, invoice_id: uuid.UUID, reason: str, key: str) -> Any:
        return await _call(
            invoices.resend_invoice(
                invoice_id=invoice_id,
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
                body=build(ResendCreate, reason=reason),
                idempotency_key=key,
            )
        )

    async def write_off(self, invoice_id: uuid.UUID, reason: str) -> Any:
        return await _call(
            invoices.mark_uncollectible(
                invoice_id=invoice_id,
                body=build(UncollectibleCreate, reason=reason),
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
            )
        )

    async def retry_sync(self, invoice_id: uuid.UUID) -> Any:
        return await _call(
            invoices.retry_accounting(invoice_id=invoice_id, db=self.db, temporal=self.temporal, _=self.actor)
        )

    async def credit_note(self, invoice_id: uuid.UUID, body: CreditNoteCreate) -> Any:
        return await _call(
            credit_notes.issue_credit_note(
                invoice_id=invoice_id,
                body=body,
                response=Response(),
                db=self.db,
                temporal=self.temporal,
                settings=self.settings,
                operator=self.actor,
                idempotency_key=None,
            )
        )

    async def refund(self, invoice_id: uuid.UUID, body: RefundCreate) -> Any:
        return await _call(
            refunds.create_refund(
                invoice_id=invoice_id,
                body=body,
                response=Response(),
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
                idempotency_key=None,
            )
        )

    async def hold(self, invoice_id: uuid.UUID, reason: str, resume_on: str | None) -> Any:
        body = build(dunning.HoldCreate, reason=reason, resume_on=resume_on or None)
        return await _call(
            dunning.hold_invoice(
                invoice_id=invoice_id, body=body, db=self.db, temporal=self.temporal, operator=self.actor
            )
        )

    async def release(self, invoice_id: uuid.UUID, reason: str) -> Any:
        return await _call(
            dunning.release_invoice(
                invoice_id=invoice_id,
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
                body=build(dunning.ReleaseCreate, reason=reason),
            )
        )

    async def replay_webhook(self, event_id: uuid.UUID) -> Any:
        return await _call(
            projects.replay_event(
                event_id=event_id,
                db=self.db,
                temporal=self.temporal,
                dispatcher=self.dispatcher,
                _=self.actor,
            )
        )


class MoreActions(Actions):
    """Projects, subscriptions and approval rules: the same route functions as the JSON API."""

    async def complete_milestone(self, project_id: uuid.UUID, key: str, reference: str) -> Any:
        return await _call(
            projects.complete_milestone(
                project_id=project_id,
                key=key,
                body=build(projects.ManualTrigger, reference=reference),
                db=self.db,
                temporal=self.temporal,
                settings=self.settings,
                operator=self.actor,
            )
        )

    async def contract_signed(self, project_id: uuid.UUID, reference: str) -> Any:
        return await _call(
            projects.contract_signed(
                project_id=project_id,
                body=build(projects.ManualTrigger, reference=reference),
                db=self.db,
                temporal=self.temporal,
                settings=self.settings,
                operator=self.actor,
            )
        )

    async def pause_subscription(self, subscription_id: uuid.UUID, resume_on: str | None) -> Any:
        return await _call(
            subscriptions.pause(
                subscription_id=subscription_id,
                body=build(PauseCreate, resume_on=resume_on or None),
                db=self.db,
                temporal=self.temporal,
                _=self.actor,
            )
        )

    async def resume_subscription(self, subscription_id: uuid.UUID) -> Any:
        return await _call(
            subscriptions.resume(
                subscription_id=subscription_id, db=self.db, temporal=self.temporal, _=self.actor
            )
        )

    async def cancel_subscription(self, subscription_id: uuid.UUID, at_period_end: bool) -> Any:
        return await _call(
            subscriptions.cancel(
                subscription_id=subscription_id,
                body=build(CancelCreate, at_period_end=at_period_end),
                db=self.db,
                temporal=self.temporal,
                _=self.actor,
            )
        )

    async def change_subscription_terms(self, subscription_id: uuid.UUID, lines: list[dict[str, str]]) -> Any:
        return await _call(
            subscriptions.update_terms(
                subscription_id=subscription_id,
                body=build(TermsCreate, lines=lines),
                db=self.db,
                temporal=self.temporal,
                _=self.actor,
            )
        )

    async def save_dunning_policy(self, name: str | None, yaml_text: str) -> Any:
        """What ``PUT /dunning-policies/{name}`` (or ``POST /dunning-policies`` without a name) does with
        the policy's JSON body, here written as YAML: the same validation, the same refusals."""
        try:
            body = yaml.safe_load(yaml_text)
        except yaml.YAMLError as exc:
            raise ActionRefused(f"not YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(body, dict):
            raise ActionRefused("policy: write it as a mapping (name, steps, send_window, ...)")
        if name is None:
            return await _call(
                dunning.create_policy(db=self.db, settings=self.settings, _=self.actor, body=body)
            )
        return await _call(
            dunning.replace_policy(name=name, db=self.db, settings=self.settings, _=self.actor, body=body)
        )

    async def replace_approval_rules(self, yaml_text: str) -> Any:
        """What ``PUT /approval-rules`` (YAML) does: parse and validate all, then replace all."""
        from billing.errors import MoneyError
        from persistence import approval_rules as rules_repo

        try:
            parsed = rules_repo.parse_yaml(yaml_text)
        except MoneyError as exc:
            raise ActionRefused(str(exc)) from None
        return await self.db.run(
            lambda s: [approval_rules.rule_out(row) for row in rules_repo.replace_all(s, parsed)]
        )


class CustomerActions(Actions):
    """A customer's edits and dunning holds: the same route functions as the JSON API."""

    async def update_customer(self, customer_id: uuid.UUID, changes: dict[str, Any]) -> Any:
        body = build(CustomerUpdate, **changes)
        return await _call(
            customers.update_customer(customer_id=customer_id, body=body, db=self.db, _=self.actor)
        )

    async def hold_customer(self, customer_id: uuid.UUID, reason: str, resume_on: str | None) -> Any:
        body = build(dunning.HoldCreate, reason=reason, resume_on=resume_on or None)
        return await _call(
            dunning.hold_customer(
                customer_id=customer_id, body=body, db=self.db, temporal=self.temporal, operator=self.actor
            )
        )

    async def release_customer(self, customer_id: uuid.UUID, reason: str) -> Any:
        return await _call(
            dunning.release_customer(
                customer_id=customer_id,
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
                body=build(dunning.ReleaseCreate, reason=reason),
            )
        )


class EstimateActions(Actions):
    async def convert_estimate(self, estimate_id: uuid.UUID, note: str) -> Any:
        return await _call(
            estimates.convert_estimate(
                estimate_id=estimate_id,
                body=build(estimates.ConvertCreate, note=note),
                db=self.db,
                temporal=self.temporal,
                operator=self.actor,
            )
        )
