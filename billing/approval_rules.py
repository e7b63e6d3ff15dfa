"""Approval routing: which chain of approvers an invoice needs, and why.

Rules are ordered; the first enabled rule whose every condition holds wins, and no match means no
approval. A rule yields a chain of steps; each step names one or more approvers and whether ``any``
one of them or ``all`` must approve, with an optional delegate who takes over an overdue step.
``route`` returns the chain together with the reasons (which conditions held for the winning rule
and which failed for each earlier one), so a dry run can show an operator exactly what happens.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from billing.currency import normalize_currency
from billing.errors import MoneyError
from billing.money import parse_decimal

MODES = ("any", "all")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class RuleError(MoneyError):
    pass


@dataclass(frozen=True)
class RuleMatch:
    min_amount: Decimal | None = None  # invoice total ≥ this, in the invoice's currency
    max_amount: Decimal | None = None  # invoice total < this
    currency: str | None = None  # only invoices in this currency
    new_client: bool | None = None  # True: client has no paid invoice yet; False: has one
    client_tags: tuple[str, ...] = ()  # any of these tags
    project_categories: tuple[str, ...] = ()  # any of these categories
    sources: tuple[str, ...] = ()  # any of these triggers (api, subscription, hubspot, ...)


@dataclass(frozen=True)
class ApprovalStep:
    approvers: tuple[str, ...]
    mode: str = "any"
    delegate: str | None = None
    # The client's own contact approves this step too (a purchase-order or timesheet sign-off): resolved
    # to the customer's first email when the invoice is routed.
    client_contact: bool = False


@dataclass(frozen=True)
class ApprovalRule:
    name: str
    match: RuleMatch
    steps: tuple[ApprovalStep, ...]
    enabled: bool = True


@dataclass(frozen=True)
class InvoiceFacts:
    total: Decimal
    currency: str
    new_client: bool
    client_tags: tuple[str, ...] = ()
    project_category: str | None = None
    source: str = "api"


@dataclass(frozen=True)
class RoutingDecision:
    rule: str | None
    steps: tuple[ApprovalStep, ...]
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def needs_approval(self) -> bool:
        return bool(self.steps)


def check(rule: ApprovalRule, facts: InvoiceFacts) -> tuple[list[str], list[str]]:
    """(conditions that held, conditions that failed), each in words."""
    held: list[str] = []
    failed: list[str] = []
    m = rule.match

    def test(ok: bool, text: str) -> None:
        (held if ok else failed).append(text)

    if m.currency is not None:
        test(facts.currency == m.currency, f"currency is {m.currency} (invoice: {facts.currency})")
    if m.min_amount is not None:
        test(facts.total >= m.min_amount, f"total {facts.total} ≥ {m.min_amount}")
    if m.max_amount is not None:
        test(facts.total < m.max_amount, f"total {facts.total} < {m.max_amount}")
    if m.new_client is not None:
        test(facts.new_client == m.new_client, "new client" if m.new_client else "returning client")
    if m.client_tags:
        shared = sorted(set(m.client_tags) & set(facts.client_tags))
        test(
            bool(shared),
            f"client tagged {' or '.join(m.client_tags)}" + (f" ({', '.join(shared)})" if shared else ""),
        )
    if m.project_categories:
        test(
            facts.project_category in m.project_categories,
            f"project category in {', '.join(m.project_categories)} (invoice: "
            f"{facts.project_category or 'none'})",
        )
    if m.sources:
        test(facts.source in m.sources, f"source in {', '.join(m.sources)} (invoice: {facts.source})")
    return held, failed


def route(rules: Sequence[ApprovalRule], facts: InvoiceFacts) -> RoutingDecision:
    reasons: list[str] = []
    for rule in rules:
        if not rule.enabled:
            reasons.append(f"{rule.name}: disabled")
            continue
        held, failed = check(rule, facts)
        if not failed:
            why = "; ".join(held) if held else "matches every invoice"
            reasons.append(f"{rule.name}: matched ({why})")
            return RoutingDecision(rule=rule.name, steps=rule.steps, reasons=tuple(reasons))
        reasons.append(f"{rule.name}: not matched (failed: {'; '.join(failed)})")
    reasons.append("no rule matched: no approval needed")
    return RoutingDecision(rule=None, steps=(), reasons=tuple(reasons))


# ---------------------------------------------------------------- parsing (API bodies, YAML, database)


def _strings(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise RuleError(f"{path}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def _email(value: object, path: str) -> str:
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise RuleError(f"{path}: {value!r} is not an email address")
    return value.strip().lower()


def parse_rule(data: Mapping[str, Any], *, path: str = "rule") -> ApprovalRule:
    if not isinstance(data, Mapping):
        raise RuleError(f"{path}: expected an object")
    unknown = set(data) - {"name", "match", "steps", "enabled"}
    if unknown:
        raise RuleError(f"{path}: unknown field(s) {', '.join(sorted(unknown))}")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 120:
        raise RuleError(f"{path}.name: required, at most 120 characters")
    raw_match = data.get("match") or {}
    if not isinstance(raw_match, Mapping):
        raise RuleError(f"{path}.match: expected an object")
    unknown = set(raw_match) - {
        "min_amount",
        "max_amount",
        "currency",
        "new_client",
        "client_tags",
        "project_categories",
        "sources",
    }
    if unknown:
        raise RuleError(f"{path}.match: unknown condition(s) {', '.join(sorted(unknown))}")

    def amount(key: str) -> Decimal | None:
        if raw_match.get(key) is None:
            return None
        value = parse_decimal(raw_match[key], field=f"{path}.match.{key}")
        if value < 0:
            raise RuleError(f"{path}.match.{key}: must not be negative")
        return value

    new_client = raw_match.get("new_client")
    if new_client is not None and not isinstance(new_client, bool):
        raise RuleError(f"{path}.match.new_client: expected true or false")
    match = RuleMatch(
        min_amount=amount("min_amount"),
        max_amount=amount("max_amount"),
        currency=normalize_currency(raw_match["currency"]) if raw_match.get("currency") else None,
        new_client=new_client,
        client_tags=_strings(raw_match.get("client_tags"), f"{path}.match.client_tags"),
        project_categories=_strings(raw_match.get("project_categories"), f"{path}.match.project_categories"),
        sources=_strings(raw_match.get("sources"), f"{path}.match.sources"),
    )
    if match.min_amount is not None and match.max_amount is not None and match.min_amount >= match.max_amount:
        raise RuleError(f"{path}.match: min_amount must be below max_amount")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps or len(raw_steps) > 10:
        raise RuleError(f"{path}.steps: one to ten steps")
    steps = []
    for i, raw in enumerate(raw_steps):
        step_path = f"{path}.steps[{i}]"
        if not isinstance(raw, Mapping) or set(raw) - {"approvers", "mode", "delegate", "client_contact"}:
            raise RuleError(f"{step_path}: expected {{approvers, mode, delegate, client_contact}}")
        client_contact = raw.get("client_contact", False)
        if not isinstance(client_contact, bool):
            raise RuleError(f"{step_path}.client_contact: expected true or false")
        approvers = raw.get("approvers", [] if client_contact else None)
        if not isinstance(approvers, list) or len(approvers) > 20 or not (approvers or client_contact):
            raise RuleError(f"{step_path}.approvers: one to twenty email addresses (or client_contact: true)")
        emails = tuple(_email(a, f"{step_path}.approvers") for a in approvers)
        if len(set(emails)) != len(emails):
            raise RuleError(f"{step_path}.approvers: listed twice")
        mode = raw.get("mode", "any")
        if mode not in MODES:
            raise RuleError(f"{step_path}.mode: 'any' or 'all', got {mode!r}")
        delegate = _email(raw["delegate"], f"{step_path}.delegate") if raw.get("delegate") else None
        steps.append(
            ApprovalStep(approvers=emails, mode=mode, delegate=delegate, client_contact=client_contact)
        )
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError(f"{path}.enabled: expected true or false")
    return ApprovalRule(name=name.strip(), match=match, steps=tuple(steps), enabled=enabled)


def rule_to_dict(rule: ApprovalRule) -> dict[str, Any]:
    m = rule.match
    match: dict[str, Any] = {}
    for key in ("min_amount", "max_amount"):
        if getattr(m, key) is not None:
            match[key] = str(getattr(m, key))
    if m.currency:
        match["currency"] = m.currency
    if m.new_client is not None:
        match["new_client"] = m.new_client
    for key in ("client_tags", "project_categories", "sources"):
        if getattr(m, key):
            match[key] = list(getattr(m, key))
    return {
        "name": rule.name,
        "enabled": rule.enabled,
        "match": match,
        "steps": [
            {
                "approvers": list(s.approvers),
                "mode": s.mode,
                **({"delegate": s.delegate} if s.delegate else {}),
                **({"client_contact": True} if s.client_contact else {}),
            }
            for s in rule.steps
        ],
    }
