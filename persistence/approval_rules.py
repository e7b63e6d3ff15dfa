"""Approval rules on the database, and the facts about an invoice that rules match on."""

from __future__ import annotations

import uuid
from decimal import Decimal

import yaml
from sqlalchemy import delete, exists, func, select
from sqlalchemy.orm import Session

from billing.approval_rules import ApprovalRule, InvoiceFacts, RuleError, parse_rule, rule_to_dict
from billing.status import InvoiceStatus
from persistence.models import ApprovalRuleRow, Customer, Invoice, Project


def load_all(session: Session) -> list[tuple[ApprovalRuleRow, ApprovalRule]]:
    rows = session.scalars(
        select(ApprovalRuleRow).order_by(ApprovalRuleRow.position, ApprovalRuleRow.created_at)
    )
    return [(row, parse_rule(row.definition)) for row in rows]


def count(session: Session) -> int:
    """How many rules are in force: 0 tells a new invoice's workflow that it has nothing to route."""
    return session.scalar(select(func.count()).select_from(ApprovalRuleRow)) or 0


def add(session: Session, rule: ApprovalRule, position: int | None = None) -> ApprovalRuleRow:
    """Append (or insert at ``position``, shifting the rules after it)."""
    count = session.scalar(select(func.count()).select_from(ApprovalRuleRow)) or 0
    at = count if position is None else max(0, min(position, count))
    for row in session.scalars(
        select(ApprovalRuleRow).where(ApprovalRuleRow.position >= at).with_for_update()
    ):
        row.position += 1
    row = ApprovalRuleRow(name=rule.name, position=at, definition=rule_to_dict(rule))
    session.add(row)
    session.flush()
    return row


def replace_all(session: Session, rules: list[ApprovalRule]) -> list[ApprovalRuleRow]:
    """Atomically swap the whole rule set (YAML import): all of it or none of it."""
    session.execute(delete(ApprovalRuleRow))
    rows = [
        ApprovalRuleRow(name=rule.name, position=i, definition=rule_to_dict(rule))
        for i, rule in enumerate(rules)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def parse_yaml(text: str) -> list[ApprovalRule]:
    """``rules:`` followed by a list of rules in the same shape as the API's bodies."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RuleError(f"YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise RuleError("YAML: expected a top-level 'rules:' list")
    rules = [parse_rule(item, path=f"rules[{i}]") for i, item in enumerate(data["rules"])]
    names = [r.name for r in rules]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RuleError(f"YAML: rule names must be unique ({', '.join(duplicated)})")
    return rules


def is_new_client(session: Session, customer_id: uuid.UUID) -> bool:
    """A client is new until one of its invoices has been paid."""
    paid = session.scalar(
        select(exists().where(Invoice.customer_id == customer_id, Invoice.status == str(InvoiceStatus.PAID)))
    )
    return not paid


def facts_for_invoice(
    session: Session, invoice: Invoice, *, project_category: str | None = None
) -> InvoiceFacts:
    """Facts the rules see; a project invoice carries its project's category unless one is given."""
    if project_category is None and invoice.project_id is not None:
        project = session.get(Project, invoice.project_id)
        project_category = project.category if project is not None else None
    return InvoiceFacts(
        total=invoice.total,
        currency=invoice.currency,
        new_client=is_new_client(session, invoice.customer_id),
        client_tags=tuple(invoice.customer.tags),
        project_category=project_category,
        source=invoice.source,
    )


def facts_for(
    session: Session,
    customer: Customer,
    total: Decimal,
    currency: str,
    *,
    project_category: str | None,
    source: str,
) -> InvoiceFacts:
    return InvoiceFacts(
        total=total,
        currency=currency,
        new_client=is_new_client(session, customer.id),
        client_tags=tuple(customer.tags),
        project_category=project_category,
        source=source,
    )
