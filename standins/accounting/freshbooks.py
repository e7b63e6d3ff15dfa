"""FreshBooks stand-in: ``/accounting/account/{account_id}/`` clients, invoices, credit notes and payments.

Faithful where our connector depends on it: bearer auth (401 with the OAuth error body), requests
wrapped as ``{"invoice": {...}}`` and answers as ``{"response": {"result": {...}}}``, money as decimal
strings in ``{amount, code}``, invoices created as drafts and marked sent with ``action_mark_as_sent``,
deletion by ``vis_state`` 1, ``search[...]`` filters, ``{"response": {"errors": [{"errno", ...}]}}`` errors,
and no idempotency key at all (a repeated POST creates a second object, as the real API does).

FreshBooks accepts any tax name on a line; ``known_taxes`` (off by default) makes the stand-in refuse
unknown ones, to exercise the connector's validation path. Its rate limit is undocumented; ``quota``
is off by default and 429s come from ``faults``. Error numbers marked [K] are plausible, not verified.

Credit notes (``credit_notes/credit_notes``, wrapped as ``credit_note``, listed by ``search[clientid]``
and paged) are the client's credit; a payment of type "Credit" applies that credit to an invoice, taken
from the client's notes oldest first and refused beyond what they have left [K].
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounting.jsonnum import to_decimal
from billing.currency import MINOR_UNITS
from standins.accounting.common import (
    Core,
    Faults,
    HandlerResult,
    OAuthServer,
    Quota,
    RecordedCall,
    Replays,
    Tokens,
    Traffic,
    json_response,
    money,
)
from standins.accounting.hooks import Callback, WebhookOutbox, freshbooks_form

TOKEN_PATH = "/auth/oauth/token"
STATUS = {"draft": 1, "sent": 2, "paid": 4, "partial": 8}


def _now() -> str:
    """FreshBooks' ``updated`` (``YYYY-MM-DD HH:MM:SS``; kept in UTC here)."""
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _errors(status: int, *errors: dict[str, Any]) -> HandlerResult:
    return status, {"response": {"errors": list(errors)}}


def _error(errno: int, message: str, field_name: str = "", obj: str = "", value: Any = "") -> dict[str, Any]:
    return {"errno": errno, "field": field_name, "message": message, "object": obj, "value": str(value)}


def _result(key: str, value: Any) -> HandlerResult:
    return 200, {"response": {"result": {key: value}}}


def _listing(key: str, rows: list[dict[str, Any]]) -> HandlerResult:
    return 200, {
        "response": {
            "result": {key: rows, "page": 1, "pages": 1, "per_page": max(len(rows), 15), "total": len(rows)}
        }
    }


def _amount(value: Decimal, code: str) -> dict[str, str]:
    return {"amount": format(value, "f"), "code": code}


class _Refused(Exception):
    def __init__(self, result: HandlerResult) -> None:
        super().__init__(str(result))
        self.result = result


@dataclass
class FreshBooksState:
    account_id: str = "xZNQ1X"
    tokens: set[str] = field(default_factory=lambda: {"freshbooks-token"})
    quota: Quota | None = None
    known_taxes: set[str] | None = None
    client_id: str = "freshbooks-client"
    client_secret: str = "freshbooks-secret"
    core: Core = field(init=False)
    oauth: OAuthServer = field(init=False)
    clients: dict[int, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[int, dict[str, Any]] = field(default_factory=dict)
    payments: dict[int, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[int, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1000
    webhooks: WebhookOutbox = field(default_factory=WebhookOutbox)  # only ``enabled`` and deliveries
    callbacks: dict[int, Callback] = field(default_factory=dict)
    business_id: int = 6543
    identity_id: int = 1234

    def __post_init__(self) -> None:
        self.core = Core(Tokens(self.tokens), Traffic(self.quota), Replays(None))
        # Access tokens last about 12 hours; the refresh token is replaced on each refresh.
        self.oauth = OAuthServer(
            self.core,
            provider="freshbooks",
            client_id=self.client_id,
            client_secret=self.client_secret,
            expires_in=43200,
            extra={"scope": "user:profile:read user:invoices:write", "created_at": 0},
        )

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def calls(self) -> list[RecordedCall]:
        return self.core.calls

    def add_tax(self, name: str) -> None:
        with self.core.lock:
            if self.known_taxes is not None:
                self.known_taxes.add(name)

    def expire_token(self, token: str) -> None:
        with self.core.lock:
            self.core.tokens.expire(token)

    def _fields(self, name: str, object_id: Any) -> dict[str, str]:
        return {
            "name": name,
            "object_id": str(object_id),
            "account_id": self.account_id,
            "business_id": str(self.business_id),
            "identity_id": str(self.identity_id),
            "user_id": "1",
        }

    def notify(self, event: str, object_id: Any) -> None:
        """The webhook FreshBooks sends to every verified callback registered for this event."""
        for callback in self.callbacks.values():
            if callback.wants(event):
                fields = self._fields(event, object_id)
                self.webhooks.send(
                    lambda _secret, f=fields, v=callback.verifier: freshbooks_form(f, v), url=callback.uri
                )

    def register_callback(self, event: str, uri: str) -> Callback:
        """A new callback; FreshBooks then POSTs ``callback.verify`` with its verifier to ``uri``."""
        callback = Callback(self.new_id(), event, uri, secrets.token_hex(16))
        self.callbacks[callback.callback_id] = callback
        fields = {**self._fields("callback.verify", callback.callback_id), "verifier": callback.verifier}
        self.webhooks.send(lambda _secret: freshbooks_form(fields, callback.verifier), url=uri)
        return callback

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class _Handlers:
    def __init__(self, state: FreshBooksState) -> None:
        self.s = state

    def list_rows(
        self, table: str, key: str, filters: dict[str, str], page: int = 1, per_page: int | None = None
    ) -> Callable[[Any], HandlerResult]:
        """Equality filters, and ``updated_min`` (rows updated at or after it), a page at a time."""

        def run(_: Any) -> HandlerResult:
            rows = list(getattr(self.s, table).values())
            for name, value in filters.items():
                if name == "updated_min":
                    rows = [r for r in rows if str(r.get("updated", "")) >= value]
                else:
                    rows = [r for r in rows if str(r.get(name, "")) == value]
            public = [self._public(r, lines=False) for r in rows]
            if per_page is None:
                return _listing(key, public)
            size = max(1, min(per_page, 100))
            pages = max(1, -(-len(public) // size))
            chunk = public[(page - 1) * size : page * size]
            result = {key: chunk, "page": page, "pages": pages, "per_page": size, "total": len(public)}
            return 200, {"response": {"result": result}}

        return run

    def get_payment(self, payment_id: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            payment = self.s.payments.get(int(payment_id)) if payment_id.isdigit() else None
            if payment is None:
                return _errors(404, _error(1012, "Payment not found.", "paymentid", "payment", payment_id))
            return _result("payment", self._public(payment, lines=False))

        return run

    def update_payment(self, payment_id: str) -> Callable[[Any], HandlerResult]:
        """``vis_state`` 1 deletes the payment: its money leaves the invoice's paid amount."""

        def run(body: Any) -> HandlerResult:
            payment = self.s.payments.get(int(payment_id)) if payment_id.isdigit() else None
            if payment is None:
                return _errors(404, _error(1012, "Payment not found.", "paymentid", "payment", payment_id))
            data = dict((body or {}).get("payment") or {})
            if int(data.get("vis_state", payment["vis_state"])) == 1 and payment["vis_state"] != 1:
                invoice = self.s.invoices[payment["invoiceid"]]
                invoice["_paid"] -= to_decimal(payment["amount"]["amount"])
                self._recompute(invoice)
                payment["vis_state"] = 1
            if "note" in data:
                payment["note"] = str(data["note"])
            payment["updated"] = _now()
            return _result("payment", self._public(payment, lines=False))

        return run

    def create_callback(self, body: Any) -> HandlerResult:
        data = dict((body or {}).get("callback") or {})
        if not data.get("event") or not data.get("uri"):
            return _errors(422, _error(1001, "Field event and uri are required.", "event", "callback"))  # [K]
        return _result("callback", self.s.register_callback(str(data["event"]), str(data["uri"])).public())

    def verify_callback(self, callback_id: str) -> Callable[[Any], HandlerResult]:
        def run(body: Any) -> HandlerResult:
            callback = self.s.callbacks.get(int(callback_id)) if callback_id.isdigit() else None
            if callback is None:
                return _errors(
                    404, _error(1012, "Callback not found.", "callbackid", "callback", callback_id)
                )
            data = dict((body or {}).get("callback") or {})
            if "verifier" in data:
                if not hmac.compare_digest(str(data["verifier"]), callback.verifier):
                    return _errors(
                        422, _error(1001, "The verifier is incorrect.", "verifier", "callback")
                    )  # [K]
                callback.verified = True
            return _result("callback", callback.public())

        return run

    @staticmethod
    def _public(row: dict[str, Any], *, lines: bool) -> dict[str, Any]:
        return {k: v for k, v in row.items() if not k.startswith("_") and (lines or k != "lines")}

    def create_client(self, body: Any) -> HandlerResult:
        client = dict((body or {}).get("client") or {})
        if not (client.get("email") or client.get("organization") or client.get("fname")):
            return _errors(
                422, _error(1001, "Client must have a name or an email.", "email", "client")
            )  # [K]
        new_id = self.s.new_id()
        saved = {
            "id": new_id,
            "userid": new_id,
            "organization": client.get("organization", ""),
            "fname": client.get("fname", ""),
            "lname": client.get("lname", ""),
            "email": client.get("email", ""),
            "currency_code": client.get("currency_code", "USD"),
            "vis_state": 0,
            "vat_number": client.get("vat_number", ""),
            "updated": _now(),
        }
        self.s.clients[new_id] = saved
        return _result("client", saved)

    def get_invoice(self, invoice_id: str, lines: bool) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            invoice = self.s.invoices.get(int(invoice_id)) if invoice_id.isdigit() else None
            if invoice is None:
                return _errors(404, _error(1012, "Invoice not found.", "invoiceid", "invoice", invoice_id))
            return _result("invoice", self._public(invoice, lines=lines))

        return run

    def _lines(self, raw: list[dict[str, Any]], currency: str) -> list[dict[str, Any]]:
        places = MINOR_UNITS.get(currency, 2)
        lines = []
        for number, line in enumerate(raw, start=1):
            tax_name = str(line.get("taxName1") or "")
            if tax_name and self.s.known_taxes is not None and tax_name not in self.s.known_taxes:
                raise _Refused(
                    _errors(
                        422, _error(2001, f"Tax '{tax_name}' does not exist.", "taxName1", "line", tax_name)
                    )
                )  # [K]
            qty = to_decimal(line.get("qty", 1))
            unit = to_decimal((line.get("unit_cost") or {}).get("amount", "0"))
            lines.append(
                {
                    "lineid": number,
                    "type": line.get("type", 0),
                    "name": str(line.get("name") or ""),
                    "description": str(line.get("description") or ""),
                    "qty": format(qty, "f"),
                    "unit_cost": _amount(unit, currency),
                    "amount": _amount(money(qty * unit, places), currency),
                    "taxName1": tax_name,
                    "taxAmount1": format(to_decimal(line.get("taxAmount1") or 0), "f"),
                    "taxName2": "",
                    "taxAmount2": "0",
                }
            )
        return lines

    def _recompute(self, invoice: dict[str, Any]) -> None:
        currency = invoice["currency_code"]
        places = MINOR_UNITS.get(currency, 2)
        subtotal, groups = (
            Decimal(0),
            dict[tuple[str, Decimal], Decimal](),
        )  # tax once per (name, rate), like our own rounding rule
        for line in invoice["lines"]:
            net = to_decimal(line["amount"]["amount"])
            subtotal += net
            if line["taxName1"]:
                key = (line["taxName1"], to_decimal(line["taxAmount1"]))
                groups[key] = groups.get(key, Decimal(0)) + net
        tax = sum((money(base * rate / 100, places) for (_, rate), base in groups.items()), Decimal(0))
        total = money(subtotal + tax, places)
        paid = invoice["_paid"]
        invoice["amount"] = _amount(total, currency)
        invoice["paid"] = _amount(money(paid, places), currency)
        invoice["outstanding"] = _amount(money(max(total - paid, Decimal(0)), places), currency)
        invoice["payment_status"] = "unpaid" if paid == 0 else ("paid" if paid >= total else "partial")
        if invoice["_sent"]:
            state = {"unpaid": "sent", "partial": "partial", "paid": "paid"}[invoice["payment_status"]]
        else:
            state = "draft"
        invoice["v3_status"], invoice["status"] = state, STATUS[state]
        invoice["updated"] = _now()

    def _apply(self, invoice: dict[str, Any], body: dict[str, Any]) -> None:
        if "customerid" in body:
            if int(body["customerid"]) not in self.s.clients:
                raise _Refused(
                    _errors(
                        404, _error(1012, "Client not found.", "customerid", "client", body["customerid"])
                    )
                )
            invoice["customerid"] = int(body["customerid"])
        for key in ("invoice_number", "po_number", "notes", "currency_code", "vis_state"):
            if key in body:
                invoice[key] = body[key]
        if "create_date" in body:
            invoice["create_date"] = str(body["create_date"])
        if "due_offset_days" in body:
            invoice["due_offset_days"] = int(body["due_offset_days"])
        invoice["due_date"] = (
            date.fromisoformat(invoice["create_date"]) + timedelta(days=invoice["due_offset_days"])
        ).isoformat()
        if "lines" in body:
            invoice["lines"] = self._lines(list(body["lines"] or []), invoice["currency_code"])
        if body.get("action_mark_as_sent"):
            invoice["_sent"] = True
        self._recompute(invoice)

    def create_invoice(self, body: Any) -> HandlerResult:
        data = dict((body or {}).get("invoice") or {})
        if "customerid" not in data or "create_date" not in data:
            missing = "customerid" if "customerid" not in data else "create_date"
            return _errors(422, _error(1001, f"Field {missing} is required.", missing, "invoice"))  # [K]
        new_id = self.s.new_id()
        invoice: dict[str, Any] = {
            "id": new_id,
            "invoiceid": new_id,
            "accountid": self.s.account_id,
            "invoice_number": f"{len(self.s.invoices) + 1:07d}",
            "currency_code": "USD",
            "po_number": "",
            "notes": "",
            "due_offset_days": 0,
            "vis_state": 0,
            "lines": [],
            "_paid": Decimal(0),
            "_sent": False,
        }
        try:
            self._apply(invoice, data)
        except _Refused as refused:
            return refused.result
        self.s.invoices[new_id] = invoice
        return _result("invoice", self._public(invoice, lines=True))

    def update_invoice(self, invoice_id: str) -> Callable[[Any], HandlerResult]:
        def run(body: Any) -> HandlerResult:
            current = self.s.invoices.get(int(invoice_id)) if invoice_id.isdigit() else None
            if current is None:
                return _errors(404, _error(1012, "Invoice not found.", "invoiceid", "invoice", invoice_id))
            updated = dict(current)
            try:
                self._apply(updated, dict((body or {}).get("invoice") or {}))
            except _Refused as refused:
                return refused.result
            self.s.invoices[updated["id"]] = updated
            return _result("invoice", self._public(updated, lines=True))

        return run

    def list_credit_notes(
        self, client_id: str | None, page: int, per_page: int
    ) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            rows = [
                self._public(r, lines=False)
                for r in self.s.credit_notes.values()
                if client_id is None or str(r["clientid"]) == client_id
            ]
            size = max(1, min(per_page, 100))
            pages = max(1, -(-len(rows) // size))
            chunk = rows[(page - 1) * size : page * size]
            return 200, {
                "response": {
                    "result": {
                        "credit_notes": chunk,
                        "page": page,
                        "pages": pages,
                        "per_page": size,
                        "total": len(rows),
                    }
                }
            }

        return run

    def get_credit_note(self, credit_id: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            note = self.s.credit_notes.get(int(credit_id)) if credit_id.isdigit() else None
            if note is None:
                return _errors(
                    404, _error(1012, "Credit not found.", "creditid", "credit_note", credit_id)
                )  # [K]
            return _result("credit_note", self._public(note, lines=True))

        return run

    def create_credit_note(self, body: Any) -> HandlerResult:
        data = dict((body or {}).get("credit_note") or {})
        client = self.s.clients.get(int(data.get("clientid") or 0))
        if client is None:
            return _errors(
                404, _error(1012, "Client not found.", "clientid", "credit_note", data.get("clientid"))
            )
        if not data.get("lines"):
            return _errors(
                422, _error(1001, "A credit note needs at least one line.", "lines", "credit_note")
            )  # [K]
        currency = str(data.get("currency_code") or client["currency_code"])
        try:
            lines = self._lines(list(data["lines"]), currency)
        except _Refused as refused:
            return refused.result
        new_id = self.s.new_id()
        note: dict[str, Any] = {
            "id": new_id,
            "creditid": new_id,
            "clientid": client["id"],
            "currency_code": currency,
            "credit_number": str(data.get("credit_number") or f"{len(self.s.credit_notes) + 1:07d}"),
            "create_date": str(data.get("create_date") or date.today().isoformat()),
            "credit_type": data.get("credit_type", "goodwill"),
            "notes": data.get("notes", ""),
            "terms": data.get("terms", ""),
            "language": data.get("language", "en"),
            "vis_state": 0,
            "lines": lines,
            "currency": currency,
            "_used": Decimal(0),
        }
        self._recompute_credit(note)
        self.s.credit_notes[new_id] = note
        return _result("credit_note", self._public(note, lines=True))

    @staticmethod
    def _recompute_credit(note: dict[str, Any]) -> None:
        """Total like an invoice's (tax once per name and rate); ``paid`` is the credit used so far [K]."""
        currency = note["currency_code"]
        places = MINOR_UNITS.get(currency, 2)
        subtotal, groups = Decimal(0), dict[tuple[str, Decimal], Decimal]()
        for line in note["lines"]:
            net = to_decimal(line["amount"]["amount"])
            subtotal += net
            if line["taxName1"]:
                key = (line["taxName1"], to_decimal(line["taxAmount1"]))
                groups[key] = groups.get(key, Decimal(0)) + net
        tax = sum((money(base * rate / 100, places) for (_, rate), base in groups.items()), Decimal(0))
        total = money(subtotal + tax, places)
        note["amount"] = _amount(total, currency)
        note["paid"] = _amount(money(note["_used"], places), currency)
        note["display_status"] = (
            "applied" if note["_used"] >= total else ("partial" if note["_used"] else "sent")
        )
        note["updated"] = _now()

    def _use_credit(self, client_id: int, amount: Decimal) -> None:
        """Take ``amount`` from the client's credit notes, oldest first; refused beyond what is left."""
        notes = [
            n for n in self.s.credit_notes.values() if n["clientid"] == client_id and n["vis_state"] == 0
        ]
        left = sum((to_decimal(n["amount"]["amount"]) - n["_used"] for n in notes), Decimal(0))
        if amount > left:
            raise _Refused(
                _errors(
                    422,
                    _error(
                        1001,
                        f"The client has {format(left, 'f')} credit available; "
                        f"{format(amount, 'f')} cannot be applied.",
                        "amount",
                        "payment",
                    ),
                )
            )  # [K]
        for note in notes:
            take = min(amount, to_decimal(note["amount"]["amount"]) - note["_used"])
            if take > 0:
                note["_used"] += take
                amount -= take
                self._recompute_credit(note)

    def create_payment(self, body: Any) -> HandlerResult:
        data = dict((body or {}).get("payment") or {})
        invoice = self.s.invoices.get(int(data.get("invoiceid") or 0))
        if invoice is None:
            return _errors(
                404, _error(1012, "Invoice not found.", "invoiceid", "payment", data.get("invoiceid"))
            )
        amount = to_decimal((data.get("amount") or {}).get("amount", "0"))
        if amount <= 0:
            return _errors(
                422, _error(1001, "Payment amount must be greater than zero.", "amount", "payment")
            )  # [K]
        if data.get("type") == "Credit":
            try:
                self._use_credit(invoice["customerid"], amount)
            except _Refused as refused:
                return refused.result
        new_id = self.s.new_id()
        currency = invoice["currency_code"]
        payment = {
            "id": new_id,
            "logid": new_id,
            "invoiceid": invoice["id"],
            "clientid": invoice["customerid"],
            "amount": _amount(amount, currency),
            "date": str(data.get("date") or date.today().isoformat()),
            "type": data.get("type", "Check"),
            "note": data.get("note", ""),
            "overpaymentid": None,
            "vis_state": 0,
            "updated": _now(),
        }
        invoice["_paid"] = invoice["_paid"] + amount
        self._recompute(invoice)
        self.s.payments[new_id] = payment
        return _result("payment", payment)


class _FreshBooksFlavor:
    def unauthorized(self, reason: str) -> Response:
        return json_response(
            401,
            {
                "error": "unauthenticated",
                "error_description": "This action requires authentication to continue.",
            },
        )

    def forbidden(self) -> Response:
        return json_response(
            403,
            {
                "response": {
                    "errors": [
                        _error(
                            1003,
                            "The server could not verify that "
                            "you are authorized to access the URL requested.",
                        )
                    ]
                }
            },
        )

    def unavailable(self) -> Response:
        return json_response(503, {"response": {"errors": [_error(503, "Service temporarily unavailable.")]}})

    def rate_limited(self, tenant: str, problem: str, retry_after: int | None) -> Response:
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        return json_response(429, {"response": {"errors": [_error(429, "Too many requests.")]}}, headers)

    def replay_mismatch(self) -> Response:  # FreshBooks has no idempotency keys
        return json_response(400, {})

    def headers(self, tenant: str) -> dict[str, str]:
        return {}


def create_freshbooks_app(state: FreshBooksState | None = None) -> tuple[Starlette, FreshBooksState]:
    """The ASGI app and its inspectable state; serve with ``standins.server.serve``."""
    state = state or FreshBooksState()
    flavor, handlers = _FreshBooksFlavor(), _Handlers(state)

    async def run(request: Request, handler: Callable[[Any], HandlerResult], *, write: bool) -> Response:
        account = request.path_params["account"]

        def precheck() -> Response | None:
            return None if account == state.account_id else flavor.forbidden()

        return await state.core.handle(
            request, flavor, tenant=account, write=write, handler=handler, precheck=precheck
        )

    def notifying(
        handler: Callable[[Any], HandlerResult], key: str, event: Callable[[Any], str]
    ) -> Callable[[Any], HandlerResult]:
        """After a committed write, the webhook FreshBooks sends for it."""

        def run_and_notify(body: Any) -> HandlerResult:
            status, payload = handler(body)
            result = ((payload or {}).get("response") or {}).get("result") or {}
            if 200 <= status < 300 and key in result:
                state.notify(event(body), result[key]["id"])
            return status, payload

        return run_and_notify

    def updated(noun: str) -> Callable[[Any], str]:
        def name(body: Any) -> str:
            data = dict((body or {}).get(noun) or {}) if isinstance(body, dict) else {}
            return f"{noun}.delete" if int(data.get("vis_state", 0) or 0) == 1 else f"{noun}.update"

        return name

    def page_of(request: Request) -> tuple[int, int | None]:
        page, per_page = request.query_params.get("page", "1"), request.query_params.get("per_page")
        return (
            int(page) if page.isdigit() and int(page) > 0 else 1,
            int(per_page) if per_page and per_page.isdigit() else None,
        )

    def filters(request: Request, allowed: dict[str, str]) -> dict[str, str]:
        return {
            column: request.query_params[param]
            for param, column in allowed.items()
            if param in request.query_params
        }

    async def clients(request: Request) -> Response:
        if request.method == "GET":
            wanted = filters(request, {"search[email]": "email", "search[organization_like]": "organization"})
            listing = handlers.list_rows("clients", "clients", wanted, *page_of(request))
            return await run(request, listing, write=False)
        return await run(
            request, notifying(handlers.create_client, "client", lambda _: "client.create"), write=True
        )

    async def invoices(request: Request) -> Response:
        if request.method == "GET":
            wanted = filters(
                request,
                {
                    "search[invoice_number]": "invoice_number",
                    "search[customerid]": "customerid",
                    "search[updated_min]": "updated_min",
                },
            )
            listing = handlers.list_rows("invoices", "invoices", wanted, *page_of(request))
            return await run(request, listing, write=False)
        return await run(
            request, notifying(handlers.create_invoice, "invoice", lambda _: "invoice.create"), write=True
        )

    async def invoice(request: Request) -> Response:
        invoice_id = request.path_params["id"]
        if request.method == "GET":
            lines = "lines" in request.query_params.getlist("include[]")
            return await run(request, handlers.get_invoice(invoice_id, lines), write=False)
        handler = notifying(handlers.update_invoice(invoice_id), "invoice", updated("invoice"))
        return await run(request, handler, write=True)

    async def payments(request: Request) -> Response:
        if request.method == "GET":
            wanted = filters(
                request, {"search[invoiceid]": "invoiceid", "search[updated_min]": "updated_min"}
            )
            listing = handlers.list_rows("payments", "payments", wanted, *page_of(request))
            return await run(request, listing, write=False)
        return await run(
            request, notifying(handlers.create_payment, "payment", lambda _: "payment.create"), write=True
        )

    async def payment(request: Request) -> Response:
        payment_id = request.path_params["id"]
        if request.method == "GET":
            return await run(request, handlers.get_payment(payment_id), write=False)
        handler = notifying(handlers.update_payment(payment_id), "payment", updated("payment"))
        return await run(request, handler, write=True)

    async def callbacks(request: Request) -> Response:
        return await run(request, handlers.create_callback, write=True)

    async def callback(request: Request) -> Response:
        return await run(request, handlers.verify_callback(request.path_params["id"]), write=True)

    async def credit_notes(request: Request) -> Response:
        if request.method == "GET" and "search[updated_min]" in request.query_params:
            wanted = filters(request, {"search[updated_min]": "updated_min"})
            listing = handlers.list_rows("credit_notes", "credit_notes", wanted, *page_of(request))
            return await run(request, listing, write=False)
        if request.method == "GET":
            page = request.query_params.get("page", "1")
            per_page = request.query_params.get("per_page", "15")
            listing = handlers.list_credit_notes(
                request.query_params.get("search[clientid]"),
                int(page) if page.isdigit() and int(page) > 0 else 1,
                int(per_page) if per_page.isdigit() else 15,
            )
            return await run(request, listing, write=False)
        return await run(
            request,
            notifying(handlers.create_credit_note, "credit_note", lambda _: "credit_note.create"),
            write=True,
        )

    async def credit_note(request: Request) -> Response:
        return await run(request, handlers.get_credit_note(request.path_params["id"]), write=False)

    base = "/accounting/account/{account}"
    app = Starlette(
        routes=[
            Route(f"{base}/users/clients", clients, methods=["GET", "POST"]),
            Route(f"{base}/invoices/invoices", invoices, methods=["GET", "POST"]),
            Route(f"{base}/invoices/invoices/{{id}}", invoice, methods=["GET", "PUT"]),
            Route(f"{base}/payments/payments", payments, methods=["GET", "POST"]),
            Route(f"{base}/payments/payments/{{id}}", payment, methods=["GET", "PUT"]),
            Route("/events/account/{account}/events/callbacks", callbacks, methods=["POST"]),
            Route("/events/account/{account}/events/callbacks/{id}", callback, methods=["PUT"]),
            Route(f"{base}/credit_notes/credit_notes", credit_notes, methods=["GET", "POST"]),
            Route(f"{base}/credit_notes/credit_notes/{{id}}", credit_note, methods=["GET"]),
            Route(TOKEN_PATH, state.oauth.endpoint, methods=["POST"]),
        ]
    )
    return app, state
