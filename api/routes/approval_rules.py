"""Approval rules: which chain of approvers an invoice needs. Managed here or imported from YAML; the
dry run says which chain an invoice would get and why."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.deps import DbDep, Operator
from api.errors import unprocessable
from api.schemas import Currency, DecimalStr, Strict
from billing.approval_rules import parse_rule, route, rule_to_dict
from billing.errors import MoneyError
from persistence import approval_rules as repo
from persistence import invoices as invoice_repo
from persistence.models import ApprovalRuleRow, Customer

router = APIRouter(prefix="/approval-rules", tags=["approval rules"])


class RuleOut(BaseModel):
    id: uuid.UUID
    position: int
    name: str
    enabled: bool
    match: dict[str, Any]
    steps: list[dict[str, Any]]


class DryRunCreate(Strict):
    invoice_id: uuid.UUID | None = Field(
        default=None, description="An existing invoice; or give the facts below."
    )
    customer_id: uuid.UUID | None = None
    total: DecimalStr | None = None
    currency: Currency | None = None
    project_category: str | None = Field(default=None, max_length=120)
    source: str = Field(default="api", max_length=40)


class DryRunOut(BaseModel):
    needs_approval: bool
    rule: str | None
    steps: list[dict[str, Any]]
    reasons: list[str]
    facts: dict[str, Any]


def rule_out(row: ApprovalRuleRow) -> RuleOut:
    return RuleOut(id=row.id, position=row.position, **row.definition)


def _invalid(exc: Exception) -> HTTPException:
    return unprocessable(["body"], str(exc))


def _conflict(exc: IntegrityError) -> HTTPException:
    if "uq_approval_rules_name" in str(exc.orig):
        return HTTPException(status.HTTP_409_CONFLICT, detail="a rule with this name exists already")
    raise exc


@router.get("", response_model=list[RuleOut])
async def list_rules(db: DbDep, _: Operator) -> list[RuleOut]:
    return await db.run(lambda s: [rule_out(row) for row, _ in repo.load_all(s)])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=RuleOut)
async def create_rule(
    db: DbDep,
    _: Operator,
    body: dict[str, Any] = Body(
        ...,
        examples=[
            {
                "name": "large-new-client",
                "match": {
                    "min_amount": "10000.00",
                    "new_client": True,
                    "client_tags": ["enterprise"],
                    "project_categories": ["fixed-scope"],
                },
                "steps": [
                    {"approvers": ["pm@firm.example"], "mode": "any", "delegate": "cto@firm.example"},
                    {"approvers": ["finance@firm.example", "cfo@firm.example"], "mode": "all"},
                ],
            }
        ],
    ),
    position: int | None = None,
) -> RuleOut:
    try:
        rule = parse_rule(body)
    except MoneyError as exc:
        raise _invalid(exc) from None
    try:
        return await db.run(lambda s: rule_out(repo.add(s, rule, position)))
    except IntegrityError as exc:
        raise _conflict(exc) from None


@router.put("/{rule_id}", response_model=RuleOut)
async def replace_rule(
    rule_id: uuid.UUID, db: DbDep, _: Operator, body: dict[str, Any] = Body(...)
) -> RuleOut:
    try:
        rule = parse_rule(body)
    except MoneyError as exc:
        raise _invalid(exc) from None

    def tx(session: Session) -> RuleOut:
        row = session.get(ApprovalRuleRow, rule_id, with_for_update=True)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"approval rule {rule_id} does not exist")
        row.name, row.definition = rule.name, rule_to_dict(rule)
        session.flush()
        return rule_out(row)

    try:
        return await db.run(tx)
    except IntegrityError as exc:
        raise _conflict(exc) from None


@router.delete("/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_rule(rule_id: uuid.UUID, db: DbDep, _: Operator) -> None:
    def tx(session: Session) -> bool:
        row = session.get(ApprovalRuleRow, rule_id)
        if row is None:
            return False
        session.delete(row)
        return True

    if not await db.run(tx):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"approval rule {rule_id} does not exist")


@router.put(
    "",
    response_model=list[RuleOut],
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def import_rules(request: Request, db: DbDep, _: Operator) -> list[RuleOut]:
    """Replace every rule with those of a YAML document (``rules:`` list), all or nothing."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        rules = repo.parse_yaml(text)
    except MoneyError as exc:
        raise _invalid(exc) from None
    return await db.run(lambda s: [rule_out(row) for row in repo.replace_all(s, rules)])


@router.post("/dry-run", response_model=DryRunOut)
async def dry_run(body: DryRunCreate, db: DbDep, _: Operator) -> DryRunOut:
    def tx(session: Session) -> DryRunOut:
        if body.invoice_id is not None:
            try:
                invoice = invoice_repo.get_invoice(session, body.invoice_id)
            except invoice_repo.InvoiceNotFound:
                raise HTTPException(
                    status.HTTP_404_NOT_FOUND, detail=f"invoice {body.invoice_id} does not exist"
                ) from None
            facts = repo.facts_for_invoice(session, invoice, project_category=body.project_category)
        else:
            if body.customer_id is None or body.total is None:
                raise unprocessable(["body"], "give invoice_id, or customer_id and total")
            customer = session.get(Customer, body.customer_id)
            if customer is None:
                raise unprocessable(["body", "customer_id"], "no such customer")
            facts = repo.facts_for(
                session,
                customer,
                Decimal(body.total),
                body.currency or customer.currency,
                project_category=body.project_category,
                source=body.source,
            )
        decision = route([rule for _, rule in repo.load_all(session)], facts)
        steps = [
            {"approvers": list(s.approvers), "mode": s.mode, "delegate": s.delegate} for s in decision.steps
        ]
        return DryRunOut(
            needs_approval=decision.needs_approval,
            rule=decision.rule,
            steps=steps,
            reasons=list(decision.reasons),
            facts={
                "total": str(facts.total),
                "currency": facts.currency,
                "new_client": facts.new_client,
                "client_tags": list(facts.client_tags),
                "project_category": facts.project_category,
                "source": facts.source,
            },
        )

    return await db.run(tx)
