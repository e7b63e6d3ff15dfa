"""HubSpot CRM v3 client: re-fetch a won deal with its line items, first contact and company.

HubSpot's ``closedwon`` webhook carries only the deal's ``objectId`` (provider-apis.md §1.1), so the deal is
read back: ``GET /crm/v3/objects/deals/{id}`` with its associations, then the line items through
``POST /crm/v3/objects/line_items/batch/read`` (at most 100 ids per call), then the first contact and
company. HubSpot sends every property as a string ("1234.56"), which is parsed straight into ``Decimal``.

Quirks handled on purpose:
- the association key for line items is ``"line items"`` (with a space) in real responses;
- an embedded association list that carries ``paging.next`` is incomplete, so the full list is read from
  ``GET /crm/v4/objects/deals/{id}/associations/line_items``: dropping a line would under-invoice;
- batch-read results come in no promised order, and ids that vanished since the association was read come
  back as a 207 with ``errors``: that is a race, reported as ``CrmTransient`` so a retry sees a settled deal;
- 429s say which window was hit (``policyName``) and its length
  (``X-HubSpot-RateLimit-Interval-Milliseconds``) but usually no ``Retry-After``.
"""

from __future__ import annotations

from decimal import Decimal
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
    unique,
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

HUBSPOT_API_URL = "https://api.hubapi.com"
PROVIDER = "hubspot"

DEAL_PROPERTIES = (
    "dealname",
    "amount",
    "deal_currency_code",
    "closedate",
    "dealstage",
    "pipeline",
    "hs_is_closed_won",
)
LINE_ITEM_PROPERTIES = (
    "name",
    "quantity",
    "price",
    "amount",
    "hs_sku",
    "description",
    "hs_tax_rate",
    "hs_line_item_currency_code",
    "hs_position_on_quote",
)
CONTACT_PROPERTIES = ("firstname", "lastname", "email", "company")
COMPANY_PROPERTIES = ("name", "domain")

BATCH_READ_LIMIT = 100  # HubSpot refuses larger batch reads with a 400
ASSOCIATION_PAGE_LIMIT = 500  # the v4 associations endpoint's maximum page size

# 429 without Retry-After: wait out the window named by ``policyName``. The daily quota resets at midnight
# in the portal's time zone, which the response does not say, so check back hourly.
_POLICY_WAIT = {"SECONDLY": 1.0, "DAILY": 3600.0}
_DEFAULT_WAIT = 10.0  # the ten-second rolling window of private apps


class HubSpotClient(JsonApiClient):
    """Reads deals with a private-app token (``Authorization: Bearer``); one instance per portal."""

    provider = PROVIDER

    def __init__(
        self,
        base_url: str = HUBSPOT_API_URL,
        token: str = "",
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not token:
            raise ValueError("HubSpotClient needs a private app token")
        super().__init__(base_url or HUBSPOT_API_URL, {"Authorization": f"Bearer {token}"}, http, timeout)

    async def fetch_deal(self, deal_id: str | int) -> CrmDeal:
        """The deal with all its line items (in deal order), its first contact and first company.

        Raises ``CrmNotFound`` for an unknown or deleted deal; a contact or company deleted after being
        associated is simply absent.
        """
        deal_id = check_id(deal_id, PROVIDER)
        deal = as_dict(
            await self._call(
                "GET",
                f"/crm/v3/objects/deals/{deal_id}",
                params={
                    "properties": ",".join(DEAL_PROPERTIES),
                    "associations": "line_items,contacts,companies",
                },
            ),
            "deal",
            PROVIDER,
        )
        props = as_dict(deal.get("properties"), "deal.properties", PROVIDER)
        associations = as_dict(deal.get("associations") or {}, "deal.associations", PROVIDER)

        item_ids = await self._associated_ids(deal_id, associations, "line_items")
        items = await self._line_items(item_ids)
        contact_ids = await self._associated_ids(deal_id, associations, "contacts")
        company_ids = await self._associated_ids(deal_id, associations, "companies")
        company = await self._read("companies", company_ids[0], COMPANY_PROPERTIES) if company_ids else None
        company_name = to_optional_str(company.get("name")) if company else None
        contact = None
        if contact_ids:
            person = await self._read("contacts", contact_ids[0], CONTACT_PROPERTIES)
            if person is not None:
                contact = _contact(contact_ids[0], person, company_name)

        currency = to_optional_str(props.get("deal_currency_code"))
        if currency is None:
            currency = next((c for _, c in items if c is not None), None)
        won = to_optional_str(props.get("hs_is_closed_won"))
        return CrmDeal(
            provider=PROVIDER,
            deal_id=str(deal.get("id") or deal_id),
            name=to_optional_str(props.get("dealname")) or "",
            amount=to_optional_decimal(props.get("amount"), "deal.amount", PROVIDER),
            currency=currency.upper() if currency else None,
            close_date=to_date(props.get("closedate"), "deal.closedate", PROVIDER),
            line_items=tuple(item for item, _ in items),
            contact=contact,
            company_name=company_name,
            company_id=company_ids[0] if company and company_ids else None,
            raw_stage=to_optional_str(props.get("dealstage")),
            won=None if won is None else won.lower() == "true",
        )

    async def _associated_ids(self, deal_id: str, associations: dict[str, Any], to_type: str) -> list[str]:
        """Ids associated with the deal; the full list via the v4 API when the embedded one is paged."""
        block = associations.get(to_type.replace("_", " ")) or associations.get(to_type)
        if not block:
            return []
        block = as_dict(block, f"deal.associations.{to_type}", PROVIDER)
        if not (block.get("paging") or {}).get("next"):
            results = as_list(block.get("results"), f"deal.associations.{to_type}.results", PROVIDER)
            return unique([_object_id(r, "id", to_type) for r in results])
        ids: list[str] = []
        after: str | None = None
        seen: set[str] = set()
        while True:
            params: dict[str, str | int] = {"limit": ASSOCIATION_PAGE_LIMIT}
            if after is not None:
                params["after"] = after
            page = as_dict(
                await self._call(
                    "GET", f"/crm/v4/objects/deals/{deal_id}/associations/{to_type}", params=params
                ),
                "associations page",
                PROVIDER,
            )
            for row in as_list(page.get("results"), "associations.results", PROVIDER):
                ids.append(_object_id(row, "toObjectId", to_type))
            after = to_optional_str(((page.get("paging") or {}).get("next") or {}).get("after"))
            if after is None:
                return unique(ids)
            if after in seen:
                raise self._bad(f"associations of deal {deal_id}: the paging cursor {after!r} repeats")
            seen.add(after)

    async def _line_items(self, ids: list[str]) -> list[tuple[CrmLineItem, str | None]]:
        """Line items (with their currency code) in association order, or by quote position when set."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), BATCH_READ_LIMIT):
            chunk = ids[start : start + BATCH_READ_LIMIT]
            body = as_dict(
                await self._call(
                    "POST",
                    "/crm/v3/objects/line_items/batch/read",
                    json_body={
                        "properties": list(LINE_ITEM_PROPERTIES),
                        "propertiesWithHistory": [],
                        "inputs": [{"id": item_id} for item_id in chunk],
                    },
                ),
                "line items batch",
                PROVIDER,
            )
            for row in as_list(body.get("results"), "line items batch.results", PROVIDER):
                row = as_dict(row, "line item", PROVIDER)
                found[str(row.get("id"))] = row
        missing = [item_id for item_id in ids if item_id not in found]
        if missing:
            raise CrmTransient(
                f"line items {', '.join(missing)} were associated with the deal but could not be read "
                "(deleted while the deal was being read?)",
                provider=PROVIDER,
            )
        parsed = [_line_item(item_id, found[item_id]) for item_id in ids]
        order = sorted(range(len(parsed)), key=lambda i: (parsed[i][2] is None, parsed[i][2] or 0, i))
        return [(parsed[i][0], parsed[i][1]) for i in order]

    async def _read(
        self, object_type: str, object_id: str, properties: tuple[str, ...]
    ) -> dict[str, Any] | None:
        """One object's properties, ``None`` if it was deleted after being associated."""
        body = await self._call(
            "GET",
            f"/crm/v3/objects/{object_type}/{check_id(object_id, PROVIDER, object_type)}",
            params={"properties": ",".join(properties)},
            missing_ok=True,
        )
        if body is None:
            return None
        return as_dict(
            as_dict(body, object_type, PROVIDER).get("properties"), f"{object_type}.properties", PROVIDER
        )

    def _raise_for_status(self, response: httpx.Response, what: str) -> NoReturn:
        """HubSpot's ``{"status":"error","message","correlationId","category"}`` as a typed ``CrmError``."""
        status = response.status_code
        body = self._error_body(response)
        category = to_optional_str(body.get("category")) or to_optional_str(body.get("errorType"))
        message = to_optional_str(body.get("message")) or response.reason_phrase or "error"
        detail = f"{what} → HTTP {status}{f' {category}' if category else ''}: {message}"
        if correlation := to_optional_str(body.get("correlationId")):
            detail += f" (correlationId {correlation})"
        if status in (401, 403):
            raise CrmAuthFailed(detail, provider=PROVIDER, status=status)
        if status == 404:
            raise CrmNotFound(detail, provider=PROVIDER, status=status)
        if status == 429:
            raise CrmRateLimited(_retry_after(response, body), detail, provider=PROVIDER)
        if status in (408, 423) or status >= 500:
            raise CrmTransient(detail, provider=PROVIDER, status=status)
        raise CrmError(detail, provider=PROVIDER, status=status)


def _retry_after(response: httpx.Response, body: dict[str, Any]) -> float:
    """Seconds to wait after a 429: ``Retry-After`` if sent, else the length of the window that was hit."""
    explicit = retry_after_header(response)
    if explicit is not None:
        return explicit
    policy = (to_optional_str(body.get("policyName")) or "").upper()
    if policy in _POLICY_WAIT:
        return _POLICY_WAIT[policy]
    interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
    if interval.strip().isdigit():
        return int(interval) / 1000
    return _DEFAULT_WAIT


def _object_id(row: object, key: str, to_type: str) -> str:
    """The id of one association row (``id`` embedded, ``toObjectId`` in v4) as a string."""
    value = as_dict(row, f"{to_type} association", PROVIDER).get(key)
    if value is None or isinstance(value, bool) or not str(value).isdigit():
        raise CrmBadResponse(f"{to_type} association: {key} {value!r} is not an id", provider=PROVIDER)
    return str(value)


def _line_item(item_id: str, row: dict[str, Any]) -> tuple[CrmLineItem, str | None, Decimal | None]:
    """(line, currency code, position on quote) from a batch-read result."""
    props = as_dict(row.get("properties"), f"line_items[{item_id}].properties", PROVIDER)
    field = f"line_items[{item_id}]"
    quantity = to_decimal(props.get("quantity"), f"{field}.quantity", PROVIDER)
    price = to_decimal(props.get("price"), f"{field}.price", PROVIDER)
    amount = to_optional_decimal(props.get("amount"), f"{field}.amount", PROVIDER)
    if amount is None:
        amount = product(quantity, price, f"{field}.amount", PROVIDER)
    line = CrmLineItem(
        name=to_optional_str(props.get("name")) or f"Line item {item_id}",
        quantity=quantity,
        unit_price=price,
        amount=amount,
        sku=to_optional_str(props.get("hs_sku")),
        tax_rate=to_optional_decimal(props.get("hs_tax_rate"), f"{field}.hs_tax_rate", PROVIDER),
        description=to_optional_str(props.get("description")),
    )
    currency = to_optional_str(props.get("hs_line_item_currency_code"))
    position = to_optional_decimal(
        props.get("hs_position_on_quote"), f"{field}.hs_position_on_quote", PROVIDER
    )
    return line, currency.upper() if currency else None, position


def _contact(contact_id: str, props: dict[str, Any], company_name: str | None) -> CrmContact:
    """The contact's full name (or e-mail when HubSpot has no name); company from the deal, else theirs."""
    email = to_optional_str(props.get("email"))
    full = " ".join(
        p for p in (to_optional_str(props.get("firstname")), to_optional_str(props.get("lastname"))) if p
    )
    return CrmContact(
        name=full or email or f"Contact {contact_id}",
        email=email,
        company=company_name or to_optional_str(props.get("company")),
    )
