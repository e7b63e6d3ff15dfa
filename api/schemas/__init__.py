"""Request and response bodies of the operator API.

Amounts are JSON strings (or integers) parsed by ``billing.money.parse_decimal``: a float such as
``12.1`` is refused with a 422 that says so, because it has already lost precision by the time it
reaches us.

One module per resource (``common`` holds the shared field types); this package re-exports them all.
"""

from api.schemas.common import (
    Currency,
    Offsets,
    Strict,
    Terms,
    Timezone,
)
from api.schemas.customers import (
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    EInvoiceFormat,
    Endpoint,
    PostalAddress,
    TaxCategory,
)
from api.schemas.invoices import (
    AccountingOut,
    ActivityProblemOut,
    CreditNoteOut,
    EInvoiceOut,
    EventOut,
    HoldOut,
    InvoiceCreate,
    InvoiceLineCreate,
    InvoiceOut,
    InvoicePage,
    LineCreate,
    LineOut,
    PaymentOut,
    RefundOut,
)
from api.schemas.items import (
    ApprovalDecisionCreate,
    BillableItemOut,
    DecisionCreate,
    DraftEdit,
    ExpenseCreate,
    TimeEntryCreate,
)
from api.schemas.money import (
    CreditNoteCreate,
    CreditNoteResult,
    PaymentCreate,
    PaymentResult,
    RefundCreate,
    RefundResult,
    UncollectibleCreate,
    VoidCreate,
)
from api.schemas.subscriptions import (
    ApproveCreate,
    CancelCreate,
    CycleInvoiceOut,
    CycleOut,
    PauseCreate,
    SubscriptionCreate,
    SubscriptionEventOut,
    SubscriptionOut,
    TermsCreate,
    TermsOut,
)
from api.validation import ApiDate, ApiDateTime, DecimalStr  # the field types routes use too

__all__ = [
    "ApiDate",
    "ApiDateTime",
    "DecimalStr",
    "AccountingOut",
    "ActivityProblemOut",
    "ApprovalDecisionCreate",
    "ApproveCreate",
    "BillableItemOut",
    "CancelCreate",
    "CreditNoteCreate",
    "CreditNoteOut",
    "CreditNoteResult",
    "Currency",
    "CustomerCreate",
    "CustomerOut",
    "CustomerUpdate",
    "CycleInvoiceOut",
    "CycleOut",
    "DecisionCreate",
    "DraftEdit",
    "EInvoiceFormat",
    "EInvoiceOut",
    "Endpoint",
    "EventOut",
    "ExpenseCreate",
    "HoldOut",
    "InvoiceCreate",
    "InvoiceLineCreate",
    "InvoiceOut",
    "InvoicePage",
    "LineCreate",
    "LineOut",
    "Offsets",
    "PauseCreate",
    "PaymentCreate",
    "PaymentOut",
    "PaymentResult",
    "PostalAddress",
    "RefundCreate",
    "RefundOut",
    "RefundResult",
    "Strict",
    "SubscriptionCreate",
    "SubscriptionEventOut",
    "SubscriptionOut",
    "TaxCategory",
    "Terms",
    "TermsCreate",
    "TermsOut",
    "TimeEntryCreate",
    "Timezone",
    "UncollectibleCreate",
    "VoidCreate",
]
