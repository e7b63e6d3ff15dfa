"""The pieces under the connectors: exact JSON numbers, tax shares, the limiter, key bounding."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest

from accounting import jsonnum
from accounting.keys import bounded_key
from accounting.mapping import line_tax_shares
from accounting.ratelimit import RateLimitPolicy, TenantLimiter
from billing.totals import LineInput, compute_totals
from tests.accounting.helpers import invoice
from tests.accounting.xero_schema import errors_in

D = Decimal


def test_json_numbers_are_exact_decimals_both_ways() -> None:
    body = {"Amount": D("150.10"), "Qty": D("1E+2"), "Tiny": D("0.0000001"), "N": 3, "S": "é", "B": None}
    text = jsonnum.dumps(body)
    assert text == b'{"Amount":150.10,"Qty":100,"Tiny":0.0000001,"N":3,"S":"\\u00e9","B":null}'
    assert jsonnum.loads(text)["Amount"] == D("150.10") and isinstance(jsonnum.loads(b"[0.1]")[0], Decimal)
    with pytest.raises(TypeError):
        jsonnum.dumps({"Amount": 0.1})


def test_tax_shares_add_up_to_our_group_tax() -> None:
    nets = [D("0.10"), D("0.10"), D("0.10"), D("33.33"), D("33.33"), D("33.34"), D("5.00")]
    rates = [D("19"), D("19"), D("19"), D("7.5"), D("7.5"), D("7.50"), D("0")]
    shares = line_tax_shares(nets, rates, "USD")
    totals = compute_totals([LineInput("x", D(1), n, tax_rate=r) for n, r in zip(nets, rates)], "USD")
    assert sum(shares) == totals.tax_total == D("7.56")
    assert shares == [D("0.02"), D("0.02"), D("0.02"), D("2.50"), D("2.50"), D("2.50"), D("0.00")]
    assert line_tax_shares([D("1000")], [D("10")], "JPY") == [D("100")]


def test_built_invoice_totals_are_billing_totals() -> None:
    built = invoice()
    assert (built.totals.subtotal, built.totals.tax, built.totals.total) == (
        D("1975.99"),
        D("390.00"),
        D("2365.99"),
    )
    assert sum(line.tax_amount for line in built.lines) == built.totals.tax
    assert [line.line_amount for line in built.lines] == [D("1875.00"), D("99.99"), D("1.00")]


def test_keys_fit_provider_limits() -> None:
    assert bounded_key("inv_1:create:r1", 50) == "inv_1:create:r1"
    long = "inv_" + "x" * 80 + ":create:r12"
    assert len(bounded_key(long, 50)) == 50 and bounded_key(long, 50) == bounded_key(long, 50)
    assert bounded_key(long, 50) != bounded_key(long + "3", 50)


async def test_limiter_holds_windows_and_concurrency_across_tasks() -> None:
    limiter = TenantLimiter(RateLimitPolicy(windows=((5, 0.2),), max_concurrent=2))
    starts: list[float] = []

    async def call() -> None:
        async with limiter.slot():
            starts.append(time.monotonic())
            await asyncio.sleep(0.01)

    began = time.monotonic()
    await asyncio.gather(*(call() for _ in range(20)))
    assert limiter.max_in_flight == 2
    assert time.monotonic() - began >= 0.6  # 20 calls at 5 per 0.2 s: at least three full windows
    starts.sort()
    for i in range(len(starts) - 5):
        assert starts[i + 5] - starts[i] >= 0.2  # never 6 starts inside one window


async def test_limiter_pause_holds_everyone() -> None:
    limiter = TenantLimiter(RateLimitPolicy(windows=((100, 1.0),), max_concurrent=5))
    limiter.pause(0.3)
    began = time.monotonic()
    async with limiter.slot():
        pass
    assert time.monotonic() - began >= 0.29


def test_the_xero_schema_check_has_teeth() -> None:
    """The OpenAPI check used on recorded traffic rejects what Xero would: a wrong enum, a read-only
    field in a request, a non-UUID id, a string where a number belongs."""
    bad = {
        "Invoices": [
            {
                "Type": "ACCREC",
                "Status": "PAYED",
                "Total": 1.0,
                "InvoiceID": "42",
                "LineItems": [{"Quantity": "2"}],
            }
        ]
    }
    problems = errors_in("Invoices", bad, write=True)
    assert len(problems) == 4, problems
    assert errors_in("Invoices", {"Invoices": [{"Type": "ACCREC", "Status": "AUTHORISED"}]}, write=True) == []
