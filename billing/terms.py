"""Payment terms: when an invoice issued on a given day is due."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from billing.errors import MoneyError

ACCEPTED = "'due_on_receipt', 'net_N' (e.g. net_30), 'eom' or 'net_N_eom' (N days after the end of the month), N from 0 to 365"


class TermsError(MoneyError):
    pass


@dataclass(frozen=True)
class PaymentTerms:
    kind: Literal["due_on_receipt", "net", "eom", "net_eom"]
    days: int = 0

    @property
    def code(self) -> str:
        if self.kind == "net":
            return f"net_{self.days}"
        if self.kind == "net_eom":
            return f"net_{self.days}_eom"
        return self.kind


def parse_terms(code: str) -> PaymentTerms:
    text = code.strip().lower() if isinstance(code, str) else ""
    if text == "due_on_receipt":
        return PaymentTerms("due_on_receipt")
    if text == "eom":
        return PaymentTerms("eom")
    match = re.fullmatch(r"net_(\d{1,3})(_eom)?", text)
    if match and int(match.group(1)) <= 365:
        return PaymentTerms("net_eom" if match.group(2) else "net", int(match.group(1)))
    raise TermsError(f"payment_terms: unknown terms {code!r}; accepted: {ACCEPTED}")


def _end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def due_date(terms: PaymentTerms, issue_date: date) -> date:
    if terms.kind == "due_on_receipt":
        return issue_date
    if terms.kind == "net":
        return issue_date + timedelta(days=terms.days)
    if terms.kind == "eom":
        return _end_of_month(issue_date)
    return _end_of_month(issue_date) + timedelta(days=terms.days)
