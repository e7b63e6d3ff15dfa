"""Project billing plans: what a deposit and each milestone bill, and how a deposit is recouped.

The rules, in the order the API documents them:

1. The contract value is ``contract_amount`` when given, otherwise the sum of the milestones' fixed
   amounts (a percent milestone needs an explicit contract amount to be a percent of).
2. A percent milestone bills ``contract × percent / 100`` rounded half-up to the currency's minor unit;
   milestones together may not exceed the contract.
3. The deposit (percent of the contract, or a fixed amount) is an *advance against the milestones*:
   billed when the contract is signed, then recouped from the milestone invoices that follow it, as a
   discount on each milestone's line ("deposit applied"). A milestone recoups its pro-rata share of
   what is still unrecouped, ``outstanding × milestone / Σ unbilled milestones`` (half-up); the last
   milestone to be billed recoups everything left (capped at its own amount). So deposit plus milestone
   invoices add up to the milestones, never more, whatever order the events come in.
4. A deposit that arrives after some milestones were billed is limited to what those still unbilled
   can recoup; after every milestone is billed there is nothing left to secure and it bills nothing.

Plain functions over plain data: the API validates plans with them, activities compute invoices with
them, and the tests pin the rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.errors import MoneyError
from billing.limits import check_amount
from billing.money import parse_decimal, quantize, require_minor_units

HUNDRED = Decimal(100)
ZERO = Decimal(0)


@dataclass(frozen=True)
class MilestoneSpec:
    key: str
    name: str
    amount: Decimal | None = None
    percent: Decimal | None = None


@dataclass(frozen=True)
class DepositSpec:
    percent: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class ResolvedPlan:
    contract: Decimal
    deposit: Decimal  # zero when the plan has none
    milestones: dict[str, Decimal]  # key → amount, in plan order


def _percent(value: object, path: str) -> Decimal:
    pct = parse_decimal(value, field=path)
    if not ZERO < pct <= HUNDRED:
        raise MoneyError(f"{path}: must be more than 0 and at most 100")
    return pct


def _amount(value: object, currency: str, path: str) -> Decimal:
    amount = require_minor_units(parse_decimal(value, field=path), currency, field=path)
    if amount <= 0:
        raise MoneyError(f"{path}: must be greater than 0")
    return check_amount(amount, path, currency=currency)


def resolve_plan(
    currency: str,
    milestones: Sequence[MilestoneSpec],
    deposit: DepositSpec | None = None,
    contract_amount: Decimal | None = None,
) -> ResolvedPlan:
    """Every amount of a plan, or a MoneyError naming the field that makes it inconsistent."""
    keys = [m.key for m in milestones]
    if len(set(keys)) != len(keys):
        raise MoneyError("milestones: keys must be unique")
    contract: Decimal | None = None
    if contract_amount is not None:
        contract = _amount(contract_amount, currency, "contract_amount")
    resolved: dict[str, Decimal] = {}
    for i, m in enumerate(milestones):
        path = f"milestones[{i}]"
        if (m.amount is None) == (m.percent is None):
            raise MoneyError(f"{path}: give exactly one of amount or percent")
        if m.amount is not None:
            resolved[m.key] = _amount(m.amount, currency, f"{path}.amount")
        else:
            if contract is None:
                raise MoneyError(f"{path}.percent: a percent milestone needs contract_amount")
            resolved[m.key] = quantize(contract * _percent(m.percent, f"{path}.percent") / HUNDRED, currency)
    milestone_total = sum(resolved.values(), ZERO)
    if contract is None:
        contract = quantize(milestone_total, currency)
    if milestone_total > contract:
        raise MoneyError(f"milestones: they add up to {milestone_total}, more than the contract ({contract})")
    deposit_amount = ZERO
    if deposit is not None:
        if (deposit.amount is None) == (deposit.percent is None):
            raise MoneyError("deposit: give exactly one of amount or percent")
        if deposit.amount is not None:
            deposit_amount = _amount(deposit.amount, currency, "deposit.amount")
        else:
            deposit_amount = quantize(
                contract * _percent(deposit.percent, "deposit.percent") / HUNDRED, currency
            )
        if deposit_amount > milestone_total:
            raise MoneyError(
                f"deposit: {deposit_amount} is more than the milestones it is an advance on "
                f"({milestone_total})"
            )
    return ResolvedPlan(contract=contract, deposit=deposit_amount, milestones=resolved)


def deposit_to_bill(deposit: Decimal, unbilled_milestones: Decimal) -> Decimal:
    """Rule 4: a deposit is never more than the unbilled milestones can recoup."""
    return max(min(deposit, unbilled_milestones), ZERO)


def recoupment(
    *,
    currency: str,
    milestone_amount: Decimal,
    deposit_billed: Decimal,
    deposit_recouped: Decimal,
    unbilled_milestones: Decimal,
    is_last: bool,
) -> Decimal:
    """Rule 3: the part of a billed deposit this milestone's invoice deducts.

    ``unbilled_milestones`` is the sum of all milestones not yet billed, this one included, so the
    outstanding deposit is spread over exactly the milestones that can still recoup it."""
    outstanding = deposit_billed - deposit_recouped
    if outstanding <= 0:
        return ZERO
    if is_last:
        return min(outstanding, milestone_amount)
    base = unbilled_milestones
    if base <= 0:
        return ZERO
    share = quantize(outstanding * milestone_amount / base, currency)
    return min(share, outstanding, milestone_amount)
