"""Customers: create, update, show (with the e-invoice fields a buyer needs)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    EmailStr,
    Field,
    model_validator,
)

from api.schemas.common import Currency, Offsets, Strict, Terms, Timezone

# ---------------------------------------------------------------- customers


EInvoiceFormat = Literal["none", "facturx", "xrechnung", "peppol"]
TaxCategory = Literal["S", "Z", "E", "AE", "K", "G", "O"]
Endpoint = Annotated[
    str,
    Field(
        max_length=205,
        pattern=r"^(\d{4}:\S{1,200})?$",
        description="Electronic address `scheme:id` (EAS code), e.g. 0208:0123456789 or 9930:DE123456789.",
    ),
]


class PostalAddress(Strict):
    """A structured postal address (EN 16931 BG-8); ``country`` is ISO 3166-1 alpha-2."""

    line1: str = Field(default="", max_length=300)
    line2: str = Field(default="", max_length=300)
    city: str = Field(default="", max_length=120)
    postal_code: str = Field(default="", max_length=32)
    region: str = Field(default="", max_length=120)
    country: str = Field(default="", pattern=r"^([A-Za-z]{2})?$", description="ISO 3166-1 alpha-2, e.g. DE.")


class CustomerCreate(Strict):
    name: str = Field(min_length=1, max_length=300)
    emails: list[EmailStr] = Field(
        min_length=1, max_length=20, description="Billing contacts; invoices go to all."
    )
    currency: Currency = "USD"
    timezone: Timezone = "UTC"
    payment_terms: Terms = "net_30"
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] = Field(
        default_factory=list, max_length=50
    )
    address: str | PostalAddress = Field(
        default="", description="Free text (printed as is) or a structured address (needed for e-invoices)."
    )
    tax_id: str = Field(default="", max_length=64, description="The buyer's VAT identifier (BT-48).")
    buyer_reference: str = Field(
        default="", max_length=200, description="BT-10; the Leitweg-ID of a German public buyer."
    )
    endpoint: Endpoint = ""
    einvoice_format: EInvoiceFormat = Field(
        default="none",
        description="none (PDF only), facturx (hybrid PDF), xrechnung (XML), peppol (UBL XML).",
    )
    owner_email: EmailStr | None = Field(
        default=None, description="Internal account owner; overdue escalations go here."
    )
    reminder_offsets: Offsets | None = Field(
        default=None, description="Days relative to the due date, e.g. [-3,0,7,14,30]."
    )
    dunning_policy: str | None = Field(
        default=None,
        min_length=1,
        max_length=120,
        description="Name of a dunning policy (GET /dunning-policies).",
    )
    external_ids: dict[
        Annotated[str, Field(min_length=1, max_length=40)],
        Annotated[str, Field(min_length=1, max_length=200)],
    ] = Field(default_factory=dict, description='Ids in source systems, e.g. {"hubspot": "123"}.')


class CustomerUpdate(Strict):
    """Fields to change; only those present change (``null`` clears the optional ones). Currency and
    external ids are fixed once set: invoices and the books already use them. Issued invoices keep the
    timezone, terms and dunning plan they were issued with."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    emails: list[EmailStr] | None = Field(default=None, min_length=1, max_length=20)
    timezone: Timezone | None = None
    payment_terms: Terms | None = None
    tags: list[Annotated[str, Field(min_length=1, max_length=60)]] | None = Field(default=None, max_length=50)
    address: str | PostalAddress | None = None
    tax_id: str | None = Field(default=None, max_length=64)
    buyer_reference: str | None = Field(default=None, max_length=200)
    endpoint: Endpoint | None = None
    einvoice_format: EInvoiceFormat | None = None
    owner_email: EmailStr | None = None
    reminder_offsets: Offsets | None = None
    dunning_policy: str | None = Field(default=None, min_length=1, max_length=120)

    @model_validator(mode="after")
    def _required_stay_set(self) -> CustomerUpdate:
        for name in (
            *("name", "emails", "timezone", "payment_terms", "tags", "address", "tax_id"),
            *("buyer_reference", "endpoint", "einvoice_format"),
        ):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name}: cannot be null (leave it out to keep it)")
        return self


class CustomerOut(BaseModel):
    id: uuid.UUID
    name: str
    emails: list[str]
    currency: str
    timezone: str
    payment_terms: str
    tags: list[str]
    address: str
    tax_id: str
    owner_email: str | None
    reminder_offsets: list[int] | None
    external_ids: dict[str, str]
    postal_address: PostalAddress | None = None
    buyer_reference: str = ""
    endpoint: str = ""
    einvoice_format: str = "none"
    created_at: datetime
    credit: dict[str, str] = Field(
        default_factory=dict,
        description="Unapplied customer credit per currency; applied to the next invoice.",
    )
    dunning_policy: str | None = None
