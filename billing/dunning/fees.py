"""Late fees: fixed or percent of the outstanding principal, once or compounding, rounded half-up to
the currency's minor units."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from billing.currency import normalize_currency
from billing.dunning.policy import _HUNDRED, LateFee, _whole
from billing.errors import DunningError, MoneyError
from billing.money import exact_arithmetic, quantize, require_minor_units

# ---------------------------------------------------------------- late fees


@dataclass(frozen=True)
class LateFeeCharge:
    """The ``sequence``-th application (1-based) of a late fee, assessed on ``assessed_on``; ``base`` is
    what a percent fee applied to (None for a fixed fee)."""

    sequence: int
    assessed_on: date
    base: Decimal | None
    amount: Decimal
    currency: str


def _percent_of(base: Decimal, percent: Decimal, currency: str) -> Decimal:
    with exact_arithmetic("late_fee"):
        share = base * percent / _HUNDRED
    return quantize(share, currency, field="late_fee")


def late_fees(
    fee: LateFee | None,
    principal: Decimal,
    currency: str,
    due_date: date,
    as_of: date,
    already_applied: int = 0,
    *,
    applied_total: Decimal | None = None,
) -> list[LateFeeCharge]:
    """The late-fee charges due by ``as_of`` that are not charged yet (``already_applied`` of them are).

    The n-th charge is assessed on ``due_date + after_days + (n - 1) * period_days``; a fee that does not
    compound is charged once, ever; one that does, at most ``fee.limit`` times. Fixed: ``value`` in
    ``currency``, never rounded (extra decimals are refused). Percent: of the outstanding ``principal``
    (plus, when compounding, the earlier fees: ``applied_total`` if given, as really charged, else
    recomputed from this principal), rounded half-up to the currency's minor units; a fee that rounds to
    nothing is not charged. No principal outstanding, no fee. Holds are not considered here: pass the
    principal the fee may apply to (e.g. without a disputed amount)."""
    if fee is None:
        return []
    if not isinstance(fee, LateFee):
        raise DunningError(f"late_fee: expected a LateFee, got {type(fee).__name__}")
    try:
        code = normalize_currency(currency)
        outstanding = require_minor_units(principal, code, field="principal")
        earlier = (
            None if applied_total is None else require_minor_units(applied_total, code, field="applied_total")
        )
        fixed = require_minor_units(fee.value, code, field="late_fee.value") if fee.kind == "fixed" else None
    except MoneyError as error:
        raise DunningError(str(error)) from None
    for name, value in (("due_date", due_date), ("as_of", as_of)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise DunningError(f"{name}: expected a date, got {value!r}")
    _whole(already_applied, "already_applied", 0, 10**9)
    if earlier is not None and earlier < 0:
        raise DunningError(f"applied_total: must not be negative, got {earlier}")
    first = due_date + timedelta(days=fee.after_days)
    if outstanding <= 0 or as_of < first:
        return []
    due_count = min(1 + ((as_of - first).days // fee.period_days if fee.compounding else 0), fee.limit)
    if already_applied >= due_count:
        return []

    def amount(base: Decimal) -> Decimal:
        return fixed if fixed is not None else _percent_of(base, fee.value, code)

    charges: list[LateFeeCharge] = []
    with exact_arithmetic("late_fee"):
        total = earlier
        if total is None:  # recompute what the earlier applications charged, from this principal
            total = quantize(Decimal(0), code)
            for _ in range(already_applied):
                total += amount(outstanding + total if fee.compounding else outstanding)
        for sequence in range(already_applied + 1, due_count + 1):
            base = outstanding + total if fee.compounding else outstanding
            charge = amount(base)
            if charge == 0:  # rounds to nothing; the base does not grow, so no later one would either
                break
            charges.append(
                LateFeeCharge(
                    sequence=sequence,
                    assessed_on=first + timedelta(days=(sequence - 1) * fee.period_days),
                    base=None if fixed is not None else base,
                    amount=charge,
                    currency=code,
                )
            )
            total += charge
    return charges
