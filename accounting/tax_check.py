"""Refuse an invoice line whose tax rate the books cannot take, when the invoice is created.

The sync maps each line's rate to the provider's tax code (``INVOICEFLOW_ACCOUNTING_TAX_CODES``); a
rate without a code is refused by the sync, but by then the invoice is numbered and emailed and only
shows ``sync_failed``. While an accounting organisation is connected, the same check runs where the
invoice is written, so an operator fixes the mapping (or the rate) before anything goes out. With no
provider or no connection nothing is synced and nothing is refused here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from accounting.reconcile import NO_TAX, tax_code_map
from core.settings import Settings
from persistence.models import AccountingConnection


@dataclass(frozen=True)
class UnmappedTaxRate(Exception):
    """Line ``index`` has a ``rate`` with no tax code at ``provider``."""

    index: int
    rate: Decimal
    provider: str

    def __str__(self) -> str:
        return (
            f"no {self.provider} tax code for {self.rate.normalize():f} %: the books would refuse this "
            f"line; add it to INVOICEFLOW_ACCOUNTING_TAX_CODES (e.g. {self.rate.normalize():f}=<tax code>)"
        )


def connected(session: Session, settings: Settings) -> bool:
    """An organisation of the configured provider is connected (its invoices will be synced)."""
    if settings.accounting_provider == "none":
        return False
    return (
        session.scalars(
            select(AccountingConnection.id).where(
                AccountingConnection.provider == settings.accounting_provider
            )
        ).first()
        is not None
    )


def check_tax_rates(session: Session, settings: Settings, rates: Sequence[Decimal]) -> None:
    """Raise ``UnmappedTaxRate`` for the first line whose rate the connected books have no code for."""
    if not connected(session, settings):
        return
    provider = settings.accounting_provider
    codes = tax_code_map(settings)
    for index, rate in enumerate(rates):
        if rate in codes or (rate == 0 and NO_TAX.get(provider) is not None):
            continue
        raise UnmappedTaxRate(index, rate, provider)
