"""Pipedrive API v2 stand-in: deals, deal products, persons and organizations behind the real paths.

Faithful where a client can trip: money and quantities are JSON numbers printed with their exact digits
(``"item_price": 1234.56``), so a client that lets its JSON parser make floats gets wrong cents; deal
products are paged with an opaque ``cursor`` and ``additional_data.next_cursor`` (``limit`` defaults to 100,
at most 500); the token is accepted as the ``x-api-token`` header or the ``api_token`` query parameter;
errors use ``{"success":false,"error","error_info"}``; 429s carry the ``x-ratelimit-*`` headers.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request

from standins.crm._common import (
    ExactJSONResponse,
    StandinError,
    StandinState,
    as_decimal,
    computed,
    new_app,
    utc_timestamp,
)

DEFAULT_TOKEN = "0123456789abcdef0123456789abcdef01234567"
DEFAULT_PAGE = 100
MAX_PAGE = 500
_INFO = "Please check developers.pipedrive.com for more information about Pipedrive API."

Seed = Decimal | int | str


def _error(status: int, message: str, **headers: str) -> StandinError:
    body = {
        "success": False,
        "error": message,
        "errorCode": status,
        "error_info": _INFO,
        "data": None,
        "additional_data": None,
    }
    return StandinError(status, body, headers)


def _cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"id": last_id}).encode()).decode().rstrip("=")


def _after(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["id"])
    except (ValueError, KeyError, TypeError):
        raise _error(400, "Invalid cursor") from None


class PipedriveState(StandinState):
    """One Pipedrive company in memory; ``add_*`` return the new object's integer id."""

    def __init__(self, api_token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.api_token = api_token
        self.deals: dict[int, dict[str, Any]] = {}
        self.deal_products: dict[int, list[dict[str, Any]]] = {}  # deal id → attached products, in order
        self.persons: dict[int, dict[str, Any]] = {}
        self.organizations: dict[int, dict[str, Any]] = {}
        self._ids = {  # distinct ranges, so an id of the wrong kind never finds anything
            "deals": itertools.count(101),
            "deal_products": itertools.count(5_001),
            "persons": itertools.count(7_001),
            "organizations": itertools.count(8_001),
            "products": itertools.count(30_001),
        }

    # --- seeding ---------------------------------------------------------------------------------------

    def add_organization(self, name: str, **fields: Any) -> int:
        org_id = next(self._ids["organizations"])
        now = utc_timestamp()
        self.organizations[org_id] = {
            "id": org_id,
            "name": name,
            "owner_id": 1,
            "add_time": now,
            "update_time": now,
            "address": None,
            "is_deleted": False,
            "visible_to": 3,
            "custom_fields": {},
            **fields,
        }
        return org_id

    def add_person(
        self, name: str, *, email: str | None = None, org_id: int | None = None, **fields: Any
    ) -> int:
        person_id = next(self._ids["persons"])
        first, _, last = name.partition(" ")
        now = utc_timestamp()
        self.persons[person_id] = {
            "id": person_id,
            "name": name,
            "first_name": first,
            "last_name": last or None,
            "owner_id": 1,
            "org_id": org_id,
            "add_time": now,
            "update_time": now,
            "emails": [{"value": email, "primary": True, "label": "work"}] if email else [],
            "phones": [],
            "is_deleted": False,
            "visible_to": 3,
            "custom_fields": {},
            **fields,
        }
        return person_id

    def add_product(
        self,
        deal_id: int,
        name: str,
        quantity: Seed,
        item_price: Seed,
        *,
        tax: Seed = 0,
        tax_method: str = "exclusive",
        discount: Seed = 0,
        discount_type: str = "percentage",
        product_id: int | None = None,
        comments: str | None = None,
        sum: Seed | None = None,
        **fields: Any,
    ) -> int:
        """Attach a product to a deal; ``sum`` defaults to quantity × price less the discount."""
        quantity_, price_, discount_ = as_decimal(quantity), as_decimal(item_price), as_decimal(discount)
        gross = quantity_ * price_
        net = gross * (1 - discount_ / 100) if discount_type == "percentage" else gross - discount_
        row_id = next(self._ids["deal_products"])
        now = utc_timestamp()
        self.deal_products.setdefault(deal_id, []).append(
            {
                "id": row_id,
                "deal_id": deal_id,
                "product_id": product_id or next(self._ids["products"]),
                "product_variation_id": None,
                "name": name,
                "item_price": price_,
                "quantity": quantity_,
                "discount": discount_,
                "discount_type": discount_type,
                "sum": as_decimal(sum) if sum is not None else computed(net),
                "tax": as_decimal(tax),
                "tax_method": tax_method,
                "currency": self.deals[deal_id]["currency"],
                "comments": comments,
                "is_enabled": True,
                "billing_frequency": "one-time",
                "billing_frequency_cycles": None,
                "billing_start_date": None,
                "add_time": now,
                "update_time": now,
                **fields,
            }
        )
        return row_id

    def add_deal(
        self,
        title: str,
        *,
        value: Seed | None = None,
        currency: str = "USD",
        status: str = "won",
        person_id: int | None = None,
        org_id: int | None = None,
        won_time: date | datetime | str | None = None,
        products: Iterable[Mapping[str, Any]] = (),
        **fields: Any,
    ) -> int:
        """A deal and its products (each a mapping of ``add_product`` arguments); ``value`` defaults to the
        products' total and ``won_time`` to now when ``status`` is ``won``."""
        deal_id = next(self._ids["deals"])
        now = utc_timestamp()
        closed = utc_timestamp(won_time) if status == "won" else None
        self.deals[deal_id] = {
            "id": deal_id,
            "title": title,
            "owner_id": 1,
            "person_id": person_id,
            "org_id": org_id,
            "stage_id": 5,
            "pipeline_id": 1,
            "value": Decimal(0),
            "currency": currency,
            "status": status,
            "add_time": now,
            "update_time": now,
            "stage_change_time": now,
            "close_time": closed,
            "won_time": closed,
            "lost_time": None,
            "expected_close_date": None,
            "probability": None,
            "lost_reason": None,
            "visible_to": 3,
            "is_deleted": False,
            "origin": "API",
            "custom_fields": {},
            **fields,
        }
        for item in products:
            self.add_product(deal_id, **dict(item))
        total = computed(sum((p["sum"] for p in self.deal_products.get(deal_id, [])), Decimal(0)))
        self.deals[deal_id]["value"] = as_decimal(value) if value is not None else total
        return deal_id

    # --- faults ----------------------------------------------------------------------------------------

    def rate_limit(
        self,
        times: int = 1,
        *,
        reset: int = 2,
        retry_after: int | None = None,
        route: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with a 429: ``x-ratelimit-reset`` says when the window resets;
        ``Retry-After`` is only sent when ``retry_after`` is given. ``route`` limits the fault to one
        route, named as in ``calls`` (``"GET /api/v2/deals/{deal_id}/products"``)."""
        headers = {"x-ratelimit-limit": "40", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.queue_fault(times, _error(429, "Request over limit", **headers), route)

    def authenticate(self, request: Request) -> None:
        token = request.headers.get("x-api-token") or request.query_params.get("api_token")
        if token != self.api_token:
            raise _error(401, "unauthorized access")

    # --- reading ---------------------------------------------------------------------------------------

    def _live(self, table: dict[int, dict[str, Any]], object_id: int, kind: str) -> dict[str, Any]:
        found = table.get(object_id)
        if found is None or found.get("is_deleted"):
            raise _error(404, f"{kind} not found")
        return found


def create_pipedrive_standin(api_token: str = DEFAULT_TOKEN) -> tuple[FastAPI, PipedriveState]:
    """The app to ``serve()`` and the state to seed it with; clients use the served ``base_url``."""
    state = PipedriveState(api_token)
    app = new_app("Pipedrive API stand-in")
    router = APIRouter(dependencies=[Depends(state.guard)])

    @router.get("/api/v2/deals/{deal_id}")
    def get_deal(deal_id: int) -> ExactJSONResponse:
        return ExactJSONResponse({"success": True, "data": state._live(state.deals, deal_id, "Deal")})

    @router.get("/api/v2/deals/{deal_id}/products")
    def get_deal_products(
        deal_id: int,
        limit: int = Query(DEFAULT_PAGE, ge=1, le=MAX_PAGE),
        cursor: str | None = None,
    ) -> ExactJSONResponse:
        state._live(state.deals, deal_id, "Deal")
        after = _after(cursor)
        rest = [p for p in state.deal_products.get(deal_id, []) if p["id"] > after]
        page = rest[:limit]
        more = len(rest) > limit
        return ExactJSONResponse(
            {
                "success": True,
                "data": page,
                "additional_data": {"next_cursor": _cursor(page[-1]["id"]) if more else None},
            }
        )

    @router.get("/api/v2/persons/{person_id}")
    def get_person(person_id: int) -> ExactJSONResponse:
        return ExactJSONResponse({"success": True, "data": state._live(state.persons, person_id, "Person")})

    @router.get("/api/v2/organizations/{org_id}")
    def get_organization(org_id: int) -> ExactJSONResponse:
        return ExactJSONResponse(
            {"success": True, "data": state._live(state.organizations, org_id, "Organization")}
        )

    app.include_router(router)
    return app, state
