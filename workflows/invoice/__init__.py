"""The invoice workflow: one durable process per invoice (``workflow``), its parts beside it."""

from workflows.invoice.child import start_invoice_child
from workflows.invoice.workflow import InvoiceWorkflow

__all__ = ["InvoiceWorkflow", "start_invoice_child"]
