"""The CRM boundary: what invoiceflow needs from a won deal, whatever CRM it came from.

CRM webhooks are thin or incomplete (HubSpot sends only the object id, Pipedrive omits the products), so a
client fetches the deal again and returns it as a ``CrmDeal``. Money is ``Decimal`` parsed from the
response's own text, never through a float. Failures are typed so the activity that calls a client can
choose between retrying (rate limit, outage) and failing the request (unknown deal, bad credentials); the
clients never retry themselves, because Temporal's retry policy already does that durably.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import ClassVar

__all__ = [
    "CrmAuthFailed",
    "CrmBadResponse",
    "CrmContact",
    "CrmDeal",
    "CrmError",
    "CrmLineItem",
    "CrmNotFound",
    "CrmRateLimited",
    "CrmTransient",
]


@dataclass(frozen=True)
class CrmLineItem:
    """One product line of a deal, as the CRM priced it.

    ``amount`` is the CRM's own line total (it may include a discount), kept rather than recomputed so
    the invoice matches what the salesperson saw. ``tax_rate`` is a percent (19 = 19 %), the unit
    ``billing.totals`` uses; ``tax_inclusive`` says whether ``unit_price`` already contains that tax.
    """

    name: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    sku: str | None = None
    tax_rate: Decimal | None = None
    description: str | None = None
    tax_inclusive: bool = False


@dataclass(frozen=True)
class CrmContact:
    """The person to address the invoice to; ``company`` is their organisation's name if known."""

    name: str
    email: str | None
    company: str | None


@dataclass(frozen=True)
class CrmDeal:
    """A deal re-fetched from its CRM, with its line items, first contact and company.

    ``raw_stage`` is the provider's own marker, uninterpreted (HubSpot ``dealstage``: ``closedwon`` in the
    default pipeline, numeric ids in custom ones; Pipedrive ``status``). ``won`` is the provider's explicit
    answer when it has one (HubSpot ``hs_is_closed_won``, Pipedrive ``status == "won"``), so custom
    pipelines need no per-tenant stage mapping.
    """

    provider: str
    deal_id: str
    name: str
    amount: Decimal | None
    currency: str | None
    close_date: date | None
    line_items: tuple[CrmLineItem, ...]
    contact: CrmContact | None
    company_name: str | None
    company_id: str | None
    raw_stage: str | None
    won: bool | None = None


class CrmError(Exception):
    """A CRM call failed; ``retryable`` tells the calling activity whether trying again can help."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(f"{provider}: {message}" if provider else message)
        self.message = message
        self.provider = provider
        self.status = status


class CrmNotFound(CrmError):
    """The deal does not exist (or was deleted): retrying will not make it appear."""


class CrmAuthFailed(CrmError):
    """The token is wrong, revoked or lacks a scope: an operator must fix the configuration."""


class CrmTransient(CrmError):
    """A network failure, timeout or 5xx, or data that changed while it was read: try again later."""

    retryable = True


class CrmRateLimited(CrmError):
    """The provider said 429; ``retry_after`` is the wait in seconds it asked for (or a safe estimate)."""

    retryable = True

    def __init__(
        self,
        retry_after: float,
        message: str = "rate limited",
        *,
        provider: str = "",
        status: int | None = 429,
    ) -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)", provider=provider, status=status)
        self.retry_after = retry_after


class CrmBadResponse(CrmError):
    """A 2xx answer we cannot use (not JSON, wrong shape, a non-decimal price): a bug or an API change."""
