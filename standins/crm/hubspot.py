"""HubSpot CRM v3 stand-in: deals, line items, contacts and companies behind HubSpot's real paths.

Faithful where a client can trip: every property value is a string (or null when requested but unset);
the deal's line-item association key is ``"line items"`` with a space; an embedded association list longer
than ``embedded_association_limit`` is cut with ``paging.next`` (the rest via the v4 associations API);
batch reads accept at most 100 ids, answer in no particular order (reverse order here, to catch clients
that assume otherwise) and report unknown ids with a 207; errors use
``{"status":"error","message","correlationId","category"}``; 429s carry ``policyName`` and the
``X-HubSpot-RateLimit-*`` headers but no ``Retry-After`` unless asked.
"""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request

from standins.crm._common import (
    ExactJSONResponse,
    StandinError,
    StandinState,
    as_decimal,
    computed,
    new_app,
    utc_timestamp,
)

DEFAULT_TOKEN = "pat-na1-00000000-0000-0000-0000-standin00001"
BATCH_LIMIT = 100

# Embedded association keys as HubSpot prints them, and the association type of each.
_EMBEDDED_KEY = {"line_items": "line items", "contacts": "contacts", "companies": "companies"}
_TYPE = {"line_items": "deal_to_line_item", "contacts": "deal_to_contact", "companies": "deal_to_company"}
_TYPE_ID = {"line_items": 19, "contacts": 3, "companies": 5}
_DEFAULT_PROPERTIES = ("createdate", "hs_lastmodifieddate", "hs_object_id")

Seed = Decimal | int | str


def _error(status: int, category: str, message: str, **extra: Any) -> StandinError:
    body = {"status": "error", "message": message, "correlationId": str(uuid.uuid4()), "category": category}
    return StandinError(status, {**body, **extra})


def _text(value: Seed | date | datetime | bool | None) -> str | None:
    """HubSpot stores every property as text: Decimals keep their digits, booleans are "true"/"false"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (date, datetime)):
        return utc_timestamp(value)
    if isinstance(value, float):
        raise TypeError(f"use a string or Decimal for {value!r}; floats are not exact")
    return str(value)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _offset(after: str | None) -> int:
    if not after:
        return 0
    try:
        return int(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode())
    except ValueError:
        raise _error(400, "VALIDATION_ERROR", f"Invalid paging cursor {after!r}") from None


class HubSpotState(StandinState):
    """One HubSpot portal in memory; ``add_*`` return the new object's id (a numeric string)."""

    def __init__(self, token: str = DEFAULT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.deals: dict[str, dict[str, str | None]] = {}
        self.line_items: dict[str, dict[str, str | None]] = {}
        self.contacts: dict[str, dict[str, str | None]] = {}
        self.companies: dict[str, dict[str, str | None]] = {}
        self.associations: dict[tuple[str, str], list[str]] = {}  # (deal id, "line_items") → ids
        self.embedded_association_limit = 100
        self._ids = {  # distinct ranges, so an id of the wrong kind never finds anything
            "deals": itertools.count(9_100_000_001),
            "line_items": itertools.count(2_100_000_001),
            "contacts": itertools.count(3_100_000_001),
            "companies": itertools.count(4_100_000_001),
        }

    # --- seeding ---------------------------------------------------------------------------------------

    def _new(self, kind: str, table: dict[str, dict[str, str | None]], properties: Mapping[str, Any]) -> str:
        object_id = str(next(self._ids[kind]))
        now = utc_timestamp()
        table[object_id] = {
            "createdate": now,
            "hs_lastmodifieddate": now,
            "hs_object_id": object_id,
            **{name: _text(value) for name, value in properties.items()},
        }
        return object_id

    def add_company(self, name: str, *, domain: str | None = None, **properties: Any) -> str:
        return self._new("companies", self.companies, {"name": name, "domain": domain, **properties})

    def add_contact(
        self,
        email: str | None,
        *,
        firstname: str | None = None,
        lastname: str | None = None,
        company: str | None = None,
        **properties: Any,
    ) -> str:
        fields = {"email": email, "firstname": firstname, "lastname": lastname, "company": company}
        return self._new("contacts", self.contacts, {**fields, **properties})

    def add_line_item(
        self,
        name: str,
        quantity: Seed,
        price: Seed,
        *,
        sku: str | None = None,
        tax_rate: Seed | None = None,
        description: str | None = None,
        amount: Seed | None = None,
        currency: str | None = None,
        **properties: Any,
    ) -> str:
        """A line item; ``amount`` defaults to quantity × price, as HubSpot computes it without a discount."""
        total = (
            as_decimal(amount) if amount is not None else computed(as_decimal(quantity) * as_decimal(price))
        )
        fields = {
            "name": name,
            "quantity": as_decimal(quantity),
            "price": as_decimal(price),
            "amount": total,
            "hs_sku": sku,
            "hs_tax_rate": None if tax_rate is None else as_decimal(tax_rate),
            "description": description,
            "hs_line_item_currency_code": currency,
        }
        return self._new("line_items", self.line_items, {**fields, **properties})

    def add_deal(
        self,
        name: str,
        *,
        amount: Seed | None = None,
        currency: str | None = "USD",
        stage: str = "closedwon",
        close_date: date | datetime | str | None = None,
        pipeline: str = "default",
        line_items: Iterable[Mapping[str, Any]] = (),
        contact_ids: Iterable[str] = (),
        company_ids: Iterable[str] = (),
        **properties: Any,
    ) -> str:
        """A deal, its line items (each a mapping of ``add_line_item`` arguments) and its associations.

        ``hs_is_closed_won`` follows ``stage == "closedwon"`` unless given; ``amount`` defaults to the sum of
        the line items, as HubSpot keeps it when line items are edited.
        """
        item_ids = [self.add_line_item(**{"currency": currency, **dict(item)}) for item in line_items]
        if amount is None and item_ids:
            amount = computed(sum((Decimal(str(self.line_items[i]["amount"])) for i in item_ids), Decimal(0)))
        deal_id = self._new(
            "deals",
            self.deals,
            {
                "dealname": name,
                "amount": amount,
                "deal_currency_code": currency,
                "dealstage": stage,
                "pipeline": pipeline,
                "closedate": None if close_date is None else utc_timestamp(close_date),
                "hs_is_closed_won": stage == "closedwon",
                **properties,
            },
        )
        self.associations[(deal_id, "line_items")] = item_ids
        self.associations[(deal_id, "contacts")] = list(contact_ids)
        self.associations[(deal_id, "companies")] = list(company_ids)
        return deal_id

    # --- faults ----------------------------------------------------------------------------------------

    def rate_limit(
        self,
        times: int = 1,
        *,
        policy: str = "TEN_SECONDLY_ROLLING",
        interval_ms: int = 10_000,
        retry_after: int | None = None,
        route: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with HubSpot's 429 for ``policy`` (``SECONDLY``, ``DAILY``,
        ``TEN_SECONDLY_ROLLING``); ``Retry-After`` is only sent when ``retry_after`` is given. ``route``
        limits the fault to one route, named as in ``calls``
        (``"POST /crm/v3/objects/line_items/batch/read"``)."""
        headers = {
            "X-HubSpot-RateLimit-Daily": "250000",
            "X-HubSpot-RateLimit-Daily-Remaining": "0" if policy == "DAILY" else "249000",
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(interval_ms),
            "X-HubSpot-RateLimit-Max": "190",
            "X-HubSpot-RateLimit-Remaining": "0",
            "X-HubSpot-RateLimit-Secondly": "19",
            "X-HubSpot-RateLimit-Secondly-Remaining": "0",
        }
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        error = _error(
            429,
            "RATE_LIMITS",
            f"You have reached your {policy.lower()} limit.",
            errorType="RATE_LIMIT",
            policyName=policy,
        )
        error.headers = headers
        self.queue_fault(times, error, route)

    def authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise _error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you "
                "can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.token:
            raise _error(
                401,
                "INVALID_AUTHENTICATION",
                "The OAuth token used to make this call expired or is invalid.",
            )

    # --- reading ---------------------------------------------------------------------------------------

    def _object(
        self,
        table: dict[str, dict[str, str | None]],
        object_id: str,
        properties: str | None,
    ) -> dict[str, Any]:
        stored = table.get(object_id)
        if stored is None:
            raise _error(
                404,
                "OBJECT_NOT_FOUND",
                "Object not found.  objectId are usually numeric.",
                context={"id": [object_id]},
            )
        wanted = [p for p in (properties or "").split(",") if p.strip()]
        shown = {name: stored.get(name) for name in (*_DEFAULT_PROPERTIES, *(p.strip() for p in wanted))}
        return {
            "id": object_id,
            "properties": shown,
            "createdAt": stored["createdate"],
            "updatedAt": stored["hs_lastmodifieddate"],
            "archived": False,
        }

    def _embedded(self, deal_id: str, to_type: str) -> dict[str, Any] | None:
        ids = self.associations.get((deal_id, to_type), [])
        if not ids:
            return None  # HubSpot leaves out association types with no results
        limit = self.embedded_association_limit
        block: dict[str, Any] = {"results": [{"id": i, "type": _TYPE[to_type]} for i in ids[:limit]]}
        if len(ids) > limit:
            block["paging"] = {"next": {"after": _cursor(limit), "link": "?after=" + _cursor(limit)}}
        return block


def create_hubspot_standin(token: str = DEFAULT_TOKEN) -> tuple[FastAPI, HubSpotState]:
    """The app to ``serve()`` and the state to seed it with; clients use the served ``base_url``."""
    state = HubSpotState(token)
    app = new_app("HubSpot CRM stand-in")
    router = APIRouter(dependencies=[Depends(state.guard)])

    @router.get("/crm/v3/objects/deals/{deal_id}")
    def get_deal(
        deal_id: str, properties: str | None = None, associations: str | None = None
    ) -> ExactJSONResponse:
        deal = state._object(state.deals, deal_id, properties)
        linked = {}
        for to_type in (a.strip() for a in (associations or "").split(",") if a.strip()):
            if to_type in _EMBEDDED_KEY and (block := state._embedded(deal_id, to_type)) is not None:
                linked[_EMBEDDED_KEY[to_type]] = block
        if linked:
            deal["associations"] = linked
        return ExactJSONResponse(deal)

    @router.get("/crm/v3/objects/line_items/{object_id}")
    def get_line_item(object_id: str, properties: str | None = None) -> ExactJSONResponse:
        return ExactJSONResponse(state._object(state.line_items, object_id, properties))

    @router.get("/crm/v3/objects/contacts/{object_id}")
    def get_contact(object_id: str, properties: str | None = None) -> ExactJSONResponse:
        return ExactJSONResponse(state._object(state.contacts, object_id, properties))

    @router.get("/crm/v3/objects/companies/{object_id}")
    def get_company(object_id: str, properties: str | None = None) -> ExactJSONResponse:
        return ExactJSONResponse(state._object(state.companies, object_id, properties))

    @router.post("/crm/v3/objects/line_items/batch/read")
    def batch_read_line_items(body: Annotated[dict[str, Any], Body()]) -> ExactJSONResponse:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            raise _error(400, "VALIDATION_ERROR", 'Invalid input JSON: inputs must be a list of {"id": ...}')
        if len(inputs) > BATCH_LIMIT:
            raise _error(
                400, "VALIDATION_ERROR", f"Batch input limit exceeded: {len(inputs)} > {BATCH_LIMIT}"
            )
        wanted = ",".join(str(p) for p in body.get("properties") or [])
        ids = [str(i["id"]) for i in inputs]
        missing = [i for i in ids if i not in state.line_items]
        results = [state._object(state.line_items, i, wanted) for i in reversed(ids) if i not in missing]
        now = utc_timestamp()
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": now,
            "completedAt": now,
        }
        if not missing:
            return ExactJSONResponse(answer)
        answer["numErrors"] = 1
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some LINE_ITEM objects, they may be deleted or not exist. "
                "Check that ids are valid.",
                "context": {"ids": missing},
            }
        ]
        return ExactJSONResponse(answer, status_code=207)

    @router.get("/crm/v4/objects/deals/{deal_id}/associations/{to_type}")
    def list_associations(
        deal_id: str,
        to_type: str,
        limit: int = Query(500, ge=1, le=500),
        after: str | None = None,
    ) -> ExactJSONResponse:
        if deal_id not in state.deals:
            raise _error(404, "OBJECT_NOT_FOUND", f"No deal with id {deal_id}")
        key = {"line_item": "line_items", "contact": "contacts", "company": "companies"}.get(to_type, to_type)
        if key not in _TYPE:
            raise _error(400, "VALIDATION_ERROR", f"Unknown object type {to_type}")
        ids = state.associations.get((deal_id, key), [])
        start = _offset(after)
        page = ids[start : start + limit]
        answer: dict[str, Any] = {
            "results": [
                {
                    "toObjectId": int(i),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": _TYPE_ID[key], "label": None},
                    ],
                }
                for i in page
            ]
        }
        if start + limit < len(ids):
            answer["paging"] = {"next": {"after": _cursor(start + limit), "link": None}}
        return ExactJSONResponse(answer)

    app.include_router(router)
    return app, state
