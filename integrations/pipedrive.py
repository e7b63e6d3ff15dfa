"""Pipedrive API v2 client: re-fetch a won deal with its products, person and organization.

The v2 ``change`` webhook carries the deal but not its products (provider-apis.md §1.2), and a webhook may
be stale or replayed, so the deal is read back too: ``GET /api/v2/deals/{id}``, then
``GET /api/v2/deals/{id}/products`` page by page (cursor pagination: ``additional_data.next_cursor``), then
the person and organization. Pipedrive sends money as JSON numbers (``"item_price": 1234.56``), so the
body is parsed with ``Decimal`` for floats: a float would already have lost the cents.

``base_url`` is ``https://api.pipedrive.com`` or the company domain (``https://acme.pipedrive.com``); the
token goes in the ``x-api-token`` header rather than the ``api_token`` query parameter so it stays out of
URLs and their logs.
"""

from __future__ import annotations

from typing import Any, NoReturn

import httpx

from integrations._common import (
    DEFAULT_TIMEOUT,
    JsonApiClient,
    as_dict,
    as_list,
    check_id,
    product,
    retry_after_header,
    to_date,
    to_decimal,
    to_optional_decimal,
    to_optional_str,
)
from integrations.crm import (
    CrmAuthFailed,
    CrmBadResponse,
    CrmContact,
    CrmDeal,
    CrmError,
    CrmLineItem,
    CrmNotFound,
    CrmRateLimited,
    CrmTransient,
)

PIPEDRIVE_API_URL = "https://api.pipedrive.com"
PROVIDER = "pipedrive"
PRODUCTS_PAGE_LIMIT = 500  # the v2 maximum; fewer calls also means fewer rate-limit tokens spent
_DEFAULT_WAIT = 2.0  # Pipedrive's burst window is two seconds


class PipedriveClient(JsonApiClient):
    """Reads deals with a personal API token; one instance per Pipedrive company."""

    provider = PROVIDER

    def __init__(
        self,
        base_url: str = PIPEDRIVE_API_URL,
        api_token: str = "",
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        page_size: int = PRODUCTS_PAGE_LIMIT,
    ) -> None:
        if not api_token:
            raise ValueError("PipedriveClient needs an API token")
        if not 1 <= page_size <= PRODUCTS_PAGE_LIMIT:
            raise ValueError(f"page_size must be between 1 and {PRODUCTS_PAGE_LIMIT}")
        super().__init__(base_url or PIPEDRIVE_API_URL, {"x-api-token": api_token}, http, timeout)
        self._page_size = page_size

    async def fetch_deal(self, deal_id: str | int) -> CrmDeal:
        """The deal with every product attached to it (all pages, in Pipedrive's order), person and org.

        Raises ``CrmNotFound`` for an unknown or deleted deal; a person or organization deleted since is
        simply absent.
        """
        deal_id = check_id(deal_id, PROVIDER)
        deal = _data(await self._call("GET", f"/api/v2/deals/{deal_id}"), "deal")
        if deal.get("is_deleted") is True:
            raise CrmNotFound(f"deal {deal_id} was deleted", provider=PROVIDER, status=404)
        items = await self._products(deal_id)

        org_id = _ref(deal.get("org_id"))
        org = await self._optional("organizations", org_id) if org_id else None
        company_name = to_optional_str(org.get("name")) if org else None
        person_id = _ref(deal.get("person_id"))
        person = await self._optional("persons", person_id) if person_id else None

        status = to_optional_str(deal.get("status"))
        currency = to_optional_str(deal.get("currency"))
        close = deal.get("won_time") or deal.get("close_time") or deal.get("expected_close_date")
        return CrmDeal(
            provider=PROVIDER,
            deal_id=str(deal.get("id") or deal_id),
            name=to_optional_str(deal.get("title")) or "",
            amount=to_optional_decimal(deal.get("value"), "deal.value", PROVIDER),
            currency=currency.upper() if currency else None,
            close_date=to_date(close, "deal.close_time", PROVIDER),
            line_items=tuple(items),
            contact=_contact(person_id, person, company_name) if person else None,
            company_name=company_name,
            company_id=org_id if org else None,
            raw_stage=status,
            won=None if status is None else status == "won",
        )

    async def _products(self, deal_id: str) -> list[CrmLineItem]:
        """All products of the deal, following ``next_cursor`` until Pipedrive returns none."""
        items: list[CrmLineItem] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, str | int] = {"limit": self._page_size}
            if cursor is not None:
                params["cursor"] = cursor
            body = as_dict(
                await self._call("GET", f"/api/v2/deals/{deal_id}/products", params=params),
                "products",
                PROVIDER,
            )
            if body.get("success") is False:
                raise self._bad(f"deal {deal_id} products: success is false in a 2xx answer")
            for row in as_list(body.get("data"), "products.data", PROVIDER):
                items.append(_line_item(as_dict(row, "product", PROVIDER)))
            extra = body.get("additional_data") or {}
            cursor = to_optional_str(extra.get("next_cursor")) if isinstance(extra, dict) else None
            if cursor is None:
                return items
            if cursor in seen:
                raise self._bad(f"deal {deal_id} products: the cursor {cursor!r} repeats")
            seen.add(cursor)

    async def _optional(self, collection: str, object_id: str) -> dict[str, Any] | None:
        """A person or organization, ``None`` if it has been deleted since it was linked to the deal."""
        body = await self._call("GET", f"/api/v2/{collection}/{object_id}", missing_ok=True)
        if body is None:
            return None
        data = _data(body, collection)
        return None if data.get("is_deleted") is True else data

    def _raise_for_status(self, response: httpx.Response, what: str) -> NoReturn:
        """Pipedrive's ``{"success":false,"error","error_info"}`` as a typed ``CrmError``."""
        status = response.status_code
        body = self._error_body(response)
        message = to_optional_str(body.get("error")) or response.reason_phrase or "error"
        detail = f"{what} → HTTP {status}: {message}"
        if info := to_optional_str(body.get("error_info")):
            detail += f" ({info})"
        if status in (401, 402, 403):  # 402: the company's subscription does not allow API access
            raise CrmAuthFailed(detail, provider=PROVIDER, status=status)
        if status in (404, 410):
            raise CrmNotFound(detail, provider=PROVIDER, status=status)
        if status == 429:
            raise CrmRateLimited(_retry_after(response), detail, provider=PROVIDER)
        if status == 408 or status >= 500:
            raise CrmTransient(detail, provider=PROVIDER, status=status)
        raise CrmError(detail, provider=PROVIDER, status=status)


def _retry_after(response: httpx.Response) -> float:
    """``Retry-After`` if sent, else ``x-ratelimit-reset`` (seconds until the window resets), else 2 s."""
    explicit = retry_after_header(response)
    if explicit is not None:
        return explicit
    reset = response.headers.get("x-ratelimit-reset", "").strip()
    try:
        return max(float(reset), 0.0)
    except ValueError:
        return _DEFAULT_WAIT


def _data(body: object, what: str) -> dict[str, Any]:
    """The ``data`` object of a ``{"success": true, "data": {...}}`` answer."""
    envelope = as_dict(body, what, PROVIDER)
    if envelope.get("success") is False:
        raise CrmBadResponse(f"{what}: success is false in a 2xx answer", provider=PROVIDER)
    return as_dict(envelope.get("data"), f"{what}.data", PROVIDER)


def _ref(value: object) -> str | None:
    """A linked object's id: an int in v2 (``{"value": id, ...}`` in v1, accepted too), ``None`` if unset."""
    if isinstance(value, dict):
        value = value.get("value")
    if value is None or isinstance(value, bool):
        return None
    text = str(value)
    if not text.isascii() or not text.isdigit():
        raise CrmBadResponse(f"linked object id {text!r} is not a number", provider=PROVIDER)
    return text


def _line_item(row: dict[str, Any]) -> CrmLineItem:
    """A deal product: ``sum`` is Pipedrive's line total (after discount); ``tax`` is a percent."""
    field = f"products[{row.get('id')}]"
    quantity = to_decimal(row.get("quantity"), f"{field}.quantity", PROVIDER)
    price = to_decimal(row.get("item_price"), f"{field}.item_price", PROVIDER)
    amount = to_optional_decimal(row.get("sum"), f"{field}.sum", PROVIDER)
    if amount is None:
        amount = product(quantity, price, f"{field}.sum", PROVIDER)
    tax_method = to_optional_str(row.get("tax_method"))
    return CrmLineItem(
        name=to_optional_str(row.get("name")) or f"Product {row.get('product_id')}",
        quantity=quantity,
        unit_price=price,
        amount=amount,
        sku=None,  # deal products carry no product code; it lives on the product record
        tax_rate=None
        if tax_method == "none"
        else to_optional_decimal(row.get("tax"), f"{field}.tax", PROVIDER),
        description=to_optional_str(row.get("comments")),
        tax_inclusive=tax_method == "inclusive",
    )


def _contact(person_id: str | None, person: dict[str, Any], company_name: str | None) -> CrmContact:
    """The person's name and primary e-mail (v2 ``emails: [{value, primary, label}]``)."""
    emails = [e for e in as_list(person.get("emails"), "person.emails", PROVIDER) if isinstance(e, dict)]
    primary = next((e for e in emails if e.get("primary") is True), emails[0] if emails else None)
    email = to_optional_str(primary.get("value")) if primary else None
    return CrmContact(
        name=to_optional_str(person.get("name")) or email or f"Person {person_id}",
        email=email,
        company=company_name,
    )
