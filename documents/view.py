"""What a template shows: the document view models (an invoice or credit note as parties, lines and
totals, already formatted) and the rendered email, built by ``documents.builders``; frozen dataclasses,
so a render process gets them as plain data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass


class RenderError(Exception):
    """A document or email could not be rendered (bad template, unknown kind, xhtml2pdf error)."""


@dataclass(frozen=True)
class Party:
    """Seller or customer. ``address`` is multi-line text; its line breaks are rendered."""

    name: str
    address: str = ""
    email: str = ""
    tax_id: str = ""


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: str  # "1.5"
    unit_price: str  # "1,200.00 EUR"
    discount: str  # "" or "-120.00 EUR"
    tax_rate: str  # "19%" or ""
    amount: str  # net line amount, formatted


@dataclass(frozen=True)
class DocumentTotal:
    label: str  # "Subtotal", "VAT 19%", "Total", "Paid", "Amount due"
    amount: str
    emphasis: bool = False


@dataclass(frozen=True)
class InvoiceDocument:
    title: str  # "Invoice"
    number: str  # "INV-2026-000123"
    issue_date: str  # formatted by the caller
    due_date: str
    currency: str
    seller: Party
    customer: Party
    lines: tuple[DocumentLine, ...]
    totals: tuple[DocumentTotal, ...]
    notes: str = ""
    terms: str = ""  # "Net 30"
    status_stamp: str = ""  # "PAID", "VOID": shown prominently when set
    pay_url: str = ""  # hosted invoice page, printed as text and link when set
    number_label: str = "Invoice number"  # "Credit note number" on a credit note
    reference_label: str = ""  # a credit note: "Credits invoice"
    reference: str = ""  # a credit note: the invoice number it credits
    embed_fonts: bool = False  # PDF/A (Factur-X): draw with the embedded TrueType font only

    def to_dict(self) -> dict[str, Any]:
        """Plain data (str, bool, dicts, tuples) for a render process; ``from_dict`` reverses it."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InvoiceDocument:
        values = dict(data)
        values["seller"] = Party(**values["seller"])
        values["customer"] = Party(**values["customer"])
        values["lines"] = tuple(DocumentLine(**line) for line in values["lines"])
        values["totals"] = tuple(DocumentTotal(**total) for total in values["totals"])
        return cls(**values)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
