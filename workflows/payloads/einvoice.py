"""Payloads of the e-invoice step of InvoiceWorkflow (a module of its own, so the invoice workflow's
file changes by a few lines only). The document itself never travels: it is stored in the documents
table and the workflow gets its key."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

PRODUCE_EINVOICE = "produce_einvoice"
#: Marks histories that produce and validate an e-invoice before the invoice email.
EINVOICE_PATCH = "einvoice-v1"
EINVOICE_TIMEOUT = timedelta(minutes=3)
#: An invalid e-invoice is tried again when the operator asks (POST /invoices/{id}/einvoice/retry) or,
#: at the latest, after this long (the data may have been fixed without asking).
EINVOICE_RECHECK = timedelta(hours=6)


@dataclass
class EInvoiceRequest:
    invoice_id: str
    pdf_key: str  # the plain PDF just rendered; a Factur-X document is made from the same invoice


@dataclass
class EInvoiceResult:
    status: str  # none (the customer gets PDFs only) | valid | invalid
    format: str = ""
    key: str | None = None  # the stored document (valid)
    attach_key: str | None = (
        None  # what the invoice email carries as its PDF (the Factur-X one, or the plain PDF)
    )
    errors: list[str] = field(default_factory=list)  # failed rule ids (invalid)
    summary: str = ""  # rule ids and texts, for the timeline
