"""Payment terms: when an invoice issued on a given day is due.

Terms are stored as short codes so customers, invoices and workflow payloads share one vocabulary:

- ``due_on_receipt``: due on the issue date;
- ``net_N`` (0 ≤ N ≤ 365): N calendar days after the issue date (net_30 from 31 Jan 2026 → 2 Mar 2026);
- ``eom``: the last day of the issue month (29 Feb in leap years);
- ``net_N_eom``: N days after the last day of the issue month (net_15_eom from 3 Dec 2026 → 15 Jan 2027).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal, get_args

from billing.errors import MoneyError

MAX_DAYS = 365
TermsKind = Literal["due_on_receipt", "net", "eom", "net_eom"]
ACCEPTED = (
    "'due_on_receipt', 'net_N' (e.g. net_30), 'eom' (end of the issue month) or 'net_N_eom' "
    f"(N days after the end of the issue month), with N from 0 to {MAX_DAYS}"
)
_NET = re.compile(r"net_(0|[1-9][0-9]{0,2})(_eom)?")  # ASCII digits, no leading zeros: one spelling per term


class TermsError(MoneyError):
    """Unknown or inconsistent payment terms."""


@dataclass(frozen=True)
class PaymentTerms:
    """Parsed terms; ``days`` only counts for ``net`` and ``net_eom``. ``code`` round-trips through
    ``parse_terms``."""

    kind: TermsKind
    days: int = 0

    def __post_init__(self) -> None:
        if self.kind not in get_args(TermsKind):
            raise TermsError(f"payment_terms: unknown kind {self.kind!r}; accepted: {ACCEPTED}")
        if isinstance(self.days, bool) or not isinstance(self.days, int) or not 0 <= self.days <= MAX_DAYS:
            raise TermsError(
                f"payment_terms: days must be a whole number from 0 to {MAX_DAYS}, got {self.days!r}"
            )
        if self.kind in ("due_on_receipt", "eom") and self.days:
            raise TermsError(f"payment_terms: {self.kind!r} takes no days, got {self.days}")

    @property
    def code(self) -> str:
        if self.kind == "net":
            return f"net_{self.days}"
        if self.kind == "net_eom":
            return f"net_{self.days}_eom"
        return self.kind


def parse_terms(code: str) -> PaymentTerms:
    """Terms from a code such as "net_30" (case and surrounding spaces are ignored)."""
    text = code.strip().lower() if isinstance(code, str) else ""
    if text == "due_on_receipt":
        return PaymentTerms("due_on_receipt")
    if text == "eom":
        return PaymentTerms("eom")
    match = _NET.fullmatch(text)
    if match and int(match.group(1)) <= MAX_DAYS:
        return PaymentTerms("net_eom" if match.group(2) else "net", int(match.group(1)))
    raise TermsError(f"payment_terms: unknown terms {code!r}; accepted: {ACCEPTED}")


def _end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def due_date(terms: PaymentTerms, issue_date: date) -> date:
    """The due date for an invoice issued on ``issue_date`` (calendar days, no business-day shifting)."""
    if terms.kind == "due_on_receipt":
        return issue_date
    if terms.kind == "net":
        return issue_date + timedelta(days=terms.days)
    if terms.kind == "eom":
        return _end_of_month(issue_date)
    return _end_of_month(issue_date) + timedelta(days=terms.days)
