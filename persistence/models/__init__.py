"""SQLAlchemy 2 models: the system of record for customers, invoices, payments and side effects.

Temporal owns the *process* (what happens next, when); PostgreSQL owns the *facts* (what was billed,
numbered, paid, sent). Every side effect goes through a row with a unique key so a retried activity
finds its earlier work instead of repeating it.

Money columns are ``NUMERIC`` without scale (exact); the billing package quantizes to the currency's
minor units before anything is written.

One module per domain; this package imports them all, so every table is on ``Base.metadata`` and
every class importable from ``persistence.models``."""

from persistence.models.base import (
    NAMING,
    Base,
)
from persistence.models.invoicing import (
    Customer,
    CustomerExternalId,
    Document,
    IdempotencyRecord,
    Invoice,
    InvoiceEvent,
    InvoiceLine,
    LinkVisit,
    NumberSeries,
    OutboxEntry,
    Payment,
)
from persistence.models.money import (
    AccountingConnection,
    AccountingRateCall,
    AccountingRateLimit,
    AccountingSync,
    CreditNote,
    CreditNoteLine,
    CustomerCreditEntry,
    DunningHold,
    DunningPolicyRow,
    LateFeeCharge,
    Refund,
)
from persistence.models.plans import (
    ApprovalLinkUse,
    ApprovalRuleRow,
    BillableItem,
    Estimate,
    Subscription,
    SubscriptionEventRow,
    SubscriptionTerms,
)
from persistence.models.projects import (
    ChangeOrder,
    Project,
    ProjectMilestone,
    ProjectRef,
    WebhookEvent,
    WebhookSecret,
)

# isort: split
# Tables defined in modules of their own, on the same metadata.
from persistence import books_models as _books_models  # noqa: E402, F401
from persistence import user_models as _user_models  # noqa: E402, F401

__all__ = [
    "AccountingConnection",
    "AccountingRateCall",
    "AccountingRateLimit",
    "AccountingSync",
    "ApprovalLinkUse",
    "ApprovalRuleRow",
    "Base",
    "BillableItem",
    "ChangeOrder",
    "CreditNote",
    "CreditNoteLine",
    "Customer",
    "CustomerCreditEntry",
    "CustomerExternalId",
    "Document",
    "DunningHold",
    "DunningPolicyRow",
    "Estimate",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceEvent",
    "InvoiceLine",
    "LateFeeCharge",
    "LinkVisit",
    "NAMING",
    "NumberSeries",
    "OutboxEntry",
    "Payment",
    "Project",
    "ProjectMilestone",
    "ProjectRef",
    "Refund",
    "Subscription",
    "SubscriptionEventRow",
    "SubscriptionTerms",
    "WebhookEvent",
    "WebhookSecret",
]
