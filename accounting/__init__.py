"""Native accounting sync: one connector interface, clients for QuickBooks Online, Xero, FreshBooks and
NetSuite, their error hierarchy and a shared per-organisation rate limiter."""

from accounting.base import (
    AccountingConnector,
    AccountingCustomer,
    AccountingInvoice,
    AccountingLine,
    AccountingPayment,
    AccountingTotals,
    RemoteInvoice,
    RemoteLine,
    RemoteState,
    SyncResult,
    SyncStatus,
    TokenProvider,
    drift,
)
from accounting.errors import (
    AccessDenied,
    AccountingError,
    AuthExpired,
    NotFound,
    RateLimited,
    StaleObject,
    Transient,
    ValidationFailed,
)

__all__ = [
    "AccessDenied",
    "AccountingConnector",
    "AccountingCustomer",
    "AccountingError",
    "AccountingInvoice",
    "AccountingLine",
    "AccountingPayment",
    "AccountingTotals",
    "AuthExpired",
    "NotFound",
    "RateLimited",
    "RemoteInvoice",
    "RemoteLine",
    "RemoteState",
    "StaleObject",
    "SyncResult",
    "SyncStatus",
    "TokenProvider",
    "Transient",
    "ValidationFailed",
    "drift",
]
