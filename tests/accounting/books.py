"""An accountant at work in each provider's stand-in, through the provider's own API (as when a bank
line is reconciled), and the set-up the inbound tests share: a stand-in per test with its own
organisation id, its webhooks pointed at the API under test, the organisation connected."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx

from accounting.tokens import TokenGrant, save_connection, token_cipher
from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS
from standins.server import ServedApp, serve

WEBHOOK_SECRET = "books-webhook-secret"
PROVIDER_NAMES = ["xero", "qbo", "freshbooks"]


@dataclass
class Books:
    provider: str
    tenant: str
    state: Any
    served: ServedApp

    # settings of the organisation ---------------------------------------------------------------

    def settings_overrides(self) -> dict[str, Any]:
        env = PROVIDERS[self.provider].env(self.served.base_url)
        values: dict[str, Any] = {k.removeprefix("INVOICEFLOW_").lower(): v for k, v in env.items()}
        tenant_setting = {
            "xero": "xero_tenant_id",
            "qbo": "qbo_realm_id",
            "freshbooks": "freshbooks_account_id",
        }
        values[tenant_setting[self.provider]] = self.tenant
        values |= {
            "accounting_provider": self.provider,
            "accounting_timeout_s": 5.0,
            "xero_webhook_key": WEBHOOK_SECRET,
            "qbo_webhook_verifier": WEBHOOK_SECRET,
            "freshbooks_webhook_verifier": "from-handshake",
        }
        return values

    def connect(self, settings: Any) -> None:
        save_connection(
            settings.require_database_url(),
            token_cipher(settings),
            self.provider,
            self.tenant,
            TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(hours=1)),
        )

    def webhooks_to(self, public_url: str) -> None:
        """Point the provider's webhooks at our receiver, as one does in its developer portal (Xero, QBO)
        or through its callbacks API (FreshBooks, whose verification request our receiver answers)."""
        url = f"{public_url}/webhooks/{self.provider}"
        if self.provider == "freshbooks":
            for event in ("payment", "invoice", "credit_note"):
                self._call(
                    "POST", "/events/account/{t}/events/callbacks", {"callback": {"event": event, "uri": url}}
                )
        else:
            self.state.webhooks.configure(url, WEBHOOK_SECRET)

    def callbacks_verified(self) -> bool:
        return bool(self.state.callbacks) and all(c.verified for c in self.state.callbacks.values())

    # the accountant -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {DEV_TOKEN}", "Accept": "application/json"}
        if self.provider == "xero":
            headers["xero-tenant-id"] = self.tenant
        response = httpx.request(
            method, self.served.base_url + path.format(t=self.tenant), json=body, headers=headers, timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()

    def remote_invoice_id(self, number: str) -> str:
        if self.provider == "xero":
            return next(i["InvoiceID"] for i in self.state.invoices.values() if i["InvoiceNumber"] == number)
        if self.provider == "qbo":
            return next(i["Id"] for i in self.state.invoices.values() if i.get("DocNumber") == number)
        return str(next(i["id"] for i in self.state.invoices.values() if i["invoice_number"] == number))

    def enter_payment(self, invoice_id: str, amount: Decimal, reference: str = "BANK-4711") -> str:
        """What the accountant types in; returns the provider's payment id."""
        today = date.today().isoformat()
        if self.provider == "xero":
            body = {
                "Payments": [
                    {
                        "Invoice": {"InvoiceID": invoice_id},
                        "Account": {"Code": "090"},
                        "Date": today,
                        "Amount": str(amount),
                        "Reference": reference,
                    }
                ]
            }
            return str(self._call("PUT", "/api.xro/2.0/Payments", body)["Payments"][0]["PaymentID"])
        if self.provider == "qbo":
            invoice = self._call("GET", f"/v3/company/{{t}}/invoice/{invoice_id}")["Invoice"]
            body = {
                "CustomerRef": invoice["CustomerRef"],
                "TotalAmt": str(amount),
                "TxnDate": today,
                "PaymentRefNum": reference,
                "Line": [{"Amount": str(amount), "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]}],
            }
            return str(self._call("POST", "/v3/company/{t}/payment", body)["Payment"]["Id"])
        body = {
            "payment": {
                "invoiceid": int(invoice_id),
                "amount": {"amount": str(amount), "code": "USD"},
                "date": today,
                "type": "Bank Transfer",
                "note": reference,
            }
        }
        return str(
            self._call("POST", "/accounting/account/{t}/payments/payments", body)["response"]["result"][
                "payment"
            ]["id"]
        )

    def payments_on(self, invoice_id: str) -> list[Decimal]:
        """The live payments the books hold for the invoice."""
        if self.provider == "xero":
            return [
                Decimal(str(p["Amount"]))
                for p in self.state.payments.values()
                if p["Invoice"]["InvoiceID"] == invoice_id and p["Status"] != "DELETED"
            ]
        if self.provider == "qbo":
            return [
                Decimal(str(line["Amount"]))
                for p in self.state.payments.values()
                for line in p.get("Line") or []
                if any(
                    t.get("TxnId") == invoice_id and t.get("TxnType") == "Invoice"
                    for t in line.get("LinkedTxn") or []
                )
            ]
        return [
            Decimal(str(p["amount"]["amount"]))
            for p in self.state.payments.values()
            if str(p["invoiceid"]) == invoice_id and p["vis_state"] == 0
        ]


@contextmanager
def books_of(provider: str) -> Iterator[Books]:
    """The provider's stand-in on a real port, with an organisation of this test's own."""
    tag = uuid.uuid4().hex[:8]
    if provider == "xero":
        from standins.accounting.xero import XeroState, create_xero_app

        tenant = f"xero-{tag}"
        app, state = create_xero_app(XeroState(tenant_id=tenant, tokens={DEV_TOKEN}))
    elif provider == "qbo":
        from standins.accounting.qbo import QboState, create_qbo_app

        tenant = str(9130350000000000 + int(tag, 16) % 10**9)
        app, state = create_qbo_app(QboState(realm_id=tenant, tokens={DEV_TOKEN}))
    else:
        from standins.accounting.freshbooks import FreshBooksState, create_freshbooks_app

        tenant = f"fb{tag}"
        app, state = create_freshbooks_app(FreshBooksState(account_id=tenant, tokens={DEV_TOKEN}))
    state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
    with serve(app) as served:
        yield Books(provider, tenant, state, served)
