"""Build connector payloads from our billing rules, so providers end up with exactly our totals."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from accounting.base import AccountingCustomer, AccountingInvoice, AccountingLine, AccountingTotals
from billing.currency import normalize_currency
from billing.money import from_minor, to_minor
from billing.totals import LineInput, compute_totals


def line_tax_shares(nets: Sequence[Decimal], rates: Sequence[Decimal], currency: str) -> list[Decimal]:
    """Each line's share of its rate group's tax, summing exactly to the group's tax.

    ``billing.totals`` rounds tax once per rate; providers that round per line (Xero) would differ by a
    cent on long invoices. Shares are proportional to the nets; leftover minor units go to the lines
    with the largest remainders (the first such line on ties), so the split is deterministic. Computed
    in integer minor units, so nothing is rounded twice.
    """
    code = normalize_currency(currency)
    totals = compute_totals(
        [
            LineInput(description="x", quantity=Decimal(1), unit_price=net, tax_rate=rate)
            for net, rate in zip(nets, rates)
        ],
        code,
    )
    group_tax = {group.rate: to_minor(group.tax, code) for group in totals.tax_groups}
    units = [to_minor(net, code) for net in nets]
    members: dict[Decimal, list[int]] = {}
    for index, line in enumerate(totals.lines):
        members.setdefault(line.tax_rate, []).append(index)
    shares = [0] * len(nets)
    for rate, indexes in members.items():
        tax, taxable = group_tax[rate], sum(units[i] for i in indexes)
        if not tax or not taxable:
            continue
        floors = {i: tax * units[i] // taxable for i in indexes}
        left = tax - sum(floors.values())
        by_remainder = sorted(indexes, key=lambda i: (-(tax * units[i] % taxable), i))
        for position, i in enumerate(by_remainder):
            shares[i] = floors[i] + (1 if position < left else 0)
    return [from_minor(share, code) for share in shares]


@dataclass(frozen=True)
class LineSpec:
    """A line as our invoice stores it, plus the provider codes the organisation maps it to."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    account_code: str
    tax_code: str


def build_invoice(
    *,
    invoice_id: str,
    number: str,
    customer: AccountingCustomer,
    issue_date: date,
    due_date: date,
    currency: str,
    lines: Sequence[LineSpec],
    reference: str = "",
) -> AccountingInvoice:
    """An ``AccountingInvoice`` whose amounts come from ``billing.totals`` (the product's rounding
    rules), with each line's tax share filled in. Discounts are not mapped yet: providers differ."""
    code = normalize_currency(currency)
    totals = compute_totals(
        [
            LineInput(
                description=l.description, quantity=l.quantity, unit_price=l.unit_price, tax_rate=l.tax_rate
            )
            for l in lines
        ],
        code,
    )
    nets = [line.net for line in totals.lines]
    shares = line_tax_shares(nets, [line.tax_rate for line in lines], code)
    return AccountingInvoice(
        invoice_id=invoice_id,
        number=number,
        customer=customer,
        issue_date=issue_date,
        due_date=due_date,
        currency=code,
        lines=tuple(
            AccountingLine(
                description=spec.description,
                quantity=spec.quantity,
                unit_price=spec.unit_price,
                tax_rate=spec.tax_rate,
                account_code=spec.account_code,
                tax_code=spec.tax_code,
                line_amount=net,
                tax_amount=share,
            )
            for spec, net, share in zip(lines, nets, shares)
        ),
        totals=AccountingTotals(subtotal=totals.subtotal, tax=totals.tax_total, total=totals.total),
        reference=reference,
    )
