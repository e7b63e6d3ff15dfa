"""Produce one e-invoice: neutral model → XML of the format's syntax → the official rules → (Factur-X)
the hybrid PDF. Shared by the issue-time activity and the API's download, so both hand out exactly
what the rules passed. The native steps (rules, PDF/A) run in an ``EInvoicePool`` child.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from documents.einvoice.cii import to_cii
from documents.einvoice.facturx import hybrid_pdf
from documents.einvoice.model import EInvoice, EInvoiceRefused
from documents.einvoice.pool import EInvoicePool
from documents.einvoice.profiles import Profile
from documents.einvoice.ubl import to_ubl
from documents.einvoice.validation import errors_of, failed_asserts


@dataclass
class Produced:
    format: str
    content: bytes  # the document to hand out; empty when the rules refused it
    xml: bytes
    media_type: str
    filename: str
    violations: list[dict[str, str]] = field(default_factory=list)

    @property
    def errors(self) -> list[dict[str, str]]:
        return errors_of(self.violations)

    @property
    def valid(self) -> bool:
        return bool(self.content) and not self.errors


def write_xml(doc: EInvoice, profile: Profile) -> bytes:
    return (to_ubl if profile.syntax == "ubl" else to_cii)(doc, profile)


def refusal(exc: EInvoiceRefused) -> list[dict[str, str]]:
    """A document that cannot be written at all, reported like a failed rule."""
    return [{"id": "BR-DEC", "flag": "fatal", "text": str(exc), "location": "", "rule_set": "invoiceflow"}]


def _hybrid(pdf: bytes, xml: bytes, number: str, seller: str, issued: str, title: str) -> bytes:
    """What the pool child runs for a Factur-X PDF (plain arguments: they cross a process boundary)."""
    return hybrid_pdf(
        pdf, xml, number=number, seller=seller, issue_date=date.fromisoformat(issued), title=title
    )


def produce(
    doc: EInvoice,
    profile: Profile,
    pool: EInvoicePool,
    *,
    render_pdf: Callable[[], bytes] | None = None,
) -> Produced:
    """``render_pdf`` renders the invoice PDF with embedded fonts (needed for ``facturx`` only)."""
    kind = "credit-note" if doc.kind == "credit_note" else "invoice"
    name = (
        f"{doc.number}.{profile.format}.{profile.extension}"
        if profile.extension == "xml"
        else f"{doc.number}.pdf"
    )
    try:
        xml = write_xml(doc, profile)
    except EInvoiceRefused as exc:
        return Produced(profile.format, b"", b"", profile.media_type, name, refusal(exc))
    violations = pool.call(failed_asserts, xml, list(profile.rules))
    produced = Produced(profile.format, b"", xml, profile.media_type, name, violations)
    if produced.errors:
        return produced
    if profile.format == "facturx":
        if render_pdf is None:
            raise ValueError("a Factur-X document needs the invoice PDF (render_pdf)")
        title = "Credit note" if kind == "credit-note" else "Invoice"
        produced.content = pool.call(
            _hybrid, render_pdf(), xml, doc.number, doc.seller.name, doc.issue_date.isoformat(), title
        )
    else:
        produced.content = xml
    return produced


def summary(errors: list[dict[str, str]], limit: int = 5) -> str:
    """``BR-DE-8: Das Element "Buyer city" (BT-52) muss übermittelt werden; ...`` for the timeline."""
    parts = []
    for error in errors[:limit]:
        text = error.get("text", "")
        prefix = f"[{error.get('id')}]"
        text = text[len(prefix) :].lstrip("- ") if text.startswith(prefix) else text
        parts.append(f"{error.get('id')}: {text[:200]}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
