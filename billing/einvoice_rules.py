"""The EN 16931 rules that can be checked when a customer or an invoice is created, before any XML.

The official rules (CEN, KoSIT, OpenPEPPOL) run on the finished document at issue
(``documents.einvoice.validation``); what they would refuse and is already known from the request is
refused here instead, as a 422 naming the business term (BT-...) and the rule (BR-...), so an operator
fixes it while the request is still in front of them. Pure: no database, no XML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from billing.currency import minor_units

FORMATS = ("none", "facturx", "xrechnung", "peppol")
#: VAT category codes of UNTDID 5305 that EN 16931 uses (L and M, the Canary Islands and Ceuta/Melilla
#: taxes, are not offered).
TAX_CATEGORIES = ("S", "Z", "E", "AE", "K", "G", "O")
#: Categories whose lines carry 0 % and need an exemption reason (BR-E-10, BR-AE-10, BR-IC-10, ...).
NEEDS_REASON = {"E": "BR-E-10", "AE": "BR-AE-10", "K": "BR-IC-10", "G": "BR-G-10", "O": "BR-O-10"}
ZERO_RATE_RULE = {
    "Z": "BR-Z-05",
    "E": "BR-E-05",
    "AE": "BR-AE-05",
    "K": "BR-IC-05",
    "G": "BR-G-05",
    "O": "BR-O-05",
}
#: The most decimals EN 16931 allows on an amount (BR-DEC-*).
MAX_DECIMALS = 2
ENDPOINT = re.compile(r"^(\d{4}):(\S{1,200})$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
UNIT = re.compile(r"^[A-Z0-9]{1,3}$")


@dataclass(frozen=True)
class Problem:
    """One refused field: ``loc`` for the 422 body, ``term`` the BT, ``rule`` the rule id."""

    loc: tuple[str | int, ...]
    term: str
    rule: str
    message: str

    def detail(self) -> dict[str, object]:
        return {
            "loc": ["body", *self.loc],
            "msg": f"{self.message} ({self.term}, {self.rule})",
            "type": "einvoice",
            "term": self.term,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class BuyerFacts:
    einvoice_format: str
    country: str
    tax_id: str
    buyer_reference: str
    endpoint: str


@dataclass(frozen=True)
class LineFacts:
    tax_rate: Decimal
    tax_category: str | None
    tax_exemption_reason: str


def line_category(tax_rate: Decimal, tax_category: str | None) -> str:
    """BT-151: the category given, or S above 0 % and Z at 0 %."""
    if tax_category:
        return tax_category
    return "S" if tax_rate > 0 else "Z"


def currency_problem(currency: str) -> str | None:
    """EN 16931 amounts carry at most two decimals: a currency with more minor units cannot be carried
    without rounding, and rounding an invoice silently is not ours to do."""
    if minor_units(currency) > MAX_DECIMALS:
        return (
            f"{currency} has {minor_units(currency)} decimals; "
            f"EN 16931 amounts carry at most {MAX_DECIMALS}, "
            "so this invoice cannot be an e-invoice: bill in another currency or set the customer's "
            "einvoice_format to none"
        )
    return None


def customer_problems(buyer: BuyerFacts) -> list[Problem]:
    """What the customer's e-invoice format needs of the customer record itself."""
    out: list[Problem] = []
    fmt = buyer.einvoice_format
    if buyer.endpoint and not ENDPOINT.match(buyer.endpoint):
        out.append(
            Problem(
                ("endpoint",),
                "BT-49",
                "BR-62",
                "write the electronic address as scheme:id, e.g. 0208:0123456789",
            )
        )
    if fmt == "none":
        return out
    if not buyer.country:
        out.append(
            Problem(
                ("address", "country"),
                "BT-55",
                "BR-11",
                f"an e-invoice ({fmt}) needs the buyer's country: give address.country (ISO 3166-1 alpha-2)",
            )
        )
    if fmt == "xrechnung" and not buyer.buyer_reference:
        out.append(
            Problem(
                ("buyer_reference",),
                "BT-10",
                "BR-DE-15",
                "XRechnung needs the buyer reference (the Leitweg-ID of a German public buyer)",
            )
        )
    if fmt == "peppol" and not buyer.endpoint:
        out.append(
            Problem(
                ("endpoint",),
                "BT-49",
                "PEPPOL-EN16931-R010",
                "Peppol needs the buyer's electronic address as scheme:id (e.g. 0208:0123456789)",
            )
        )
    return out


def invoice_problems(
    buyer: BuyerFacts,
    lines: Sequence[LineFacts],
    currency: str,
    *,
    purchase_order: str = "",
) -> list[Problem]:
    """Line VAT categories (always: they are data, not format), and, for a customer who receives
    e-invoices, what the buyer must have for those categories and the currency's decimals."""
    out: list[Problem] = []
    categories: set[str] = set()
    for i, line in enumerate(lines):
        category = line_category(line.tax_rate, line.tax_category)
        categories.add(category)
        loc: tuple[str | int, ...] = ("lines", i)
        if category == "S" and line.tax_rate <= 0:
            out.append(
                Problem(
                    (*loc, "tax_rate"), "BT-152", "BR-S-05", "a standard-rated (S) line needs a rate above 0"
                )
            )
        if category in ZERO_RATE_RULE and line.tax_rate != 0:
            out.append(
                Problem(
                    (*loc, "tax_rate"),
                    "BT-152",
                    ZERO_RATE_RULE[category],
                    f"a line in VAT category {category} has rate 0, not {line.tax_rate}",
                )
            )
        if category in NEEDS_REASON and not line.tax_exemption_reason.strip():
            out.append(
                Problem(
                    (*loc, "tax_exemption_reason"),
                    "BT-120",
                    NEEDS_REASON[category],
                    f"a line in VAT category {category} needs tax_exemption_reason "
                    "(e.g. 'Reverse charge', 'Intra-community supply', "
                    "'Exempt under Art. 135 VAT Directive')",
                )
            )
    if buyer.einvoice_format == "none":
        return out
    problem = currency_problem(currency)
    if problem:
        out.append(Problem(("currency",), "BT-5", "BR-DEC-23", problem))
    if "AE" in categories and not buyer.tax_id:
        out.append(
            Problem(
                ("customer_id",),
                "BT-48",
                "BR-AE-02",
                "reverse charge (AE) needs the buyer's VAT identifier: set the customer's tax_id",
            )
        )
    if "K" in categories and not buyer.tax_id:
        out.append(
            Problem(
                ("customer_id",),
                "BT-48",
                "BR-IC-02",
                "an intra-community supply (K) needs the buyer's VAT identifier: set the customer's tax_id",
            )
        )
    if buyer.einvoice_format == "peppol" and not (buyer.buyer_reference or purchase_order):
        out.append(
            Problem(
                ("purchase_order",),
                "BT-10/BT-13",
                "PEPPOL-EN16931-R003",
                "Peppol needs a buyer reference (the customer's buyer_reference) or a purchase_order",
            )
        )
    out.extend(Problem(("customer_id", *p.loc), p.term, p.rule, p.message) for p in customer_problems(buyer))
    return out
