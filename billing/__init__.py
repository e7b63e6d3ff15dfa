"""Pure billing rules (money, tax, totals, terms, reminder schedules) shared by the API and the workflows.

Nothing here does I/O, so workflows can import it through the sandbox.
"""

from billing.currency import MINOR_UNITS, minor_units, normalize_currency
from billing.errors import MoneyError
from billing.money import (
    Money,
    format_money,
    from_minor,
    parse_decimal,
    quantize,
    require_minor_units,
    to_minor,
)
from billing.reminders import (
    DEFAULT_REMINDER_OFFSETS,
    ReminderStep,
    ScheduleError,
    parse_offsets,
    reminder_schedule,
)
from billing.status import FINAL_STATUSES, InvoiceStatus, settle_status
from billing.terms import PaymentTerms, TermsError, due_date, parse_terms
from billing.totals import (
    InvoiceTotals,
    LineInput,
    LineTotals,
    TaxGroup,
    amount_due,
    compute_totals,
    credit_from_overpayment,
)

__all__ = [
    "DEFAULT_REMINDER_OFFSETS",
    "FINAL_STATUSES",
    "MINOR_UNITS",
    "InvoiceStatus",
    "InvoiceTotals",
    "LineInput",
    "LineTotals",
    "Money",
    "MoneyError",
    "PaymentTerms",
    "ReminderStep",
    "ScheduleError",
    "TaxGroup",
    "TermsError",
    "amount_due",
    "compute_totals",
    "credit_from_overpayment",
    "due_date",
    "format_money",
    "from_minor",
    "minor_units",
    "normalize_currency",
    "parse_decimal",
    "parse_offsets",
    "parse_terms",
    "quantize",
    "reminder_schedule",
    "require_minor_units",
    "settle_status",
    "to_minor",
]
