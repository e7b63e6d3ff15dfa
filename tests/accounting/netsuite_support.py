"""The NetSuite stand-in on a real port with a registered M2M certificate, and connectors for it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from accounting.base import AccountingCustomer, AccountingInvoice
from accounting.mapping import LineSpec, build_invoice
from accounting.netsuite import NetSuiteConnector
from accounting.netsuite_auth import M2MCredentials, M2MTokenSource
from accounting.netsuite_http import netsuite_http_settings, netsuite_policy
from standins.accounting.netsuite import TOKEN_PATH, NetSuiteState, create_netsuite_app
from standins.accounting.netsuite_keys import key_pair
from standins.server import ServedApp, serve

D = Decimal
CLIENT_ID = "ns-integration-client"
CERTIFICATE_ID = "cert-m2m-1"
_KEYS: dict[str, tuple[str, str]] = {}


def keys(name: str = "main") -> tuple[str, str]:
    """(private key PEM, certificate PEM), made once per test session (RSA key generation is slow-ish)."""
    if name not in _KEYS:
        _KEYS[name] = key_pair(f"invoiceflow-{name}")
    return _KEYS[name]


@dataclass
class NetSuite:
    state: NetSuiteState
    served: ServedApp
    private_key: str

    @property
    def base_url(self) -> str:
        return self.served.base_url

    def credentials(self, **overrides: Any) -> M2MCredentials:
        values: dict[str, Any] = {
            "client_id": CLIENT_ID,
            "certificate_id": CERTIFICATE_ID,
            "private_key": self.private_key,
            "token_url": self.base_url + TOKEN_PATH,
        }
        values.update(overrides)
        return M2MCredentials(**values)

    def connector(self, *, timeout_s: float = 5.0, concurrency: int = 5, **creds: Any) -> NetSuiteConnector:
        source = M2MTokenSource(self.credentials(**creds), timeout_s=timeout_s)
        return NetSuiteConnector(
            account_id=self.state.account_id,
            token_provider=source.access_token,
            base_url=self.base_url,
            settings=netsuite_http_settings(timeout_s),
            policy=netsuite_policy(concurrency),
        )

    async def accountant(self) -> httpx.AsyncClient:
        """An HTTP client with a token of its own, as someone working in NetSuite's books would have."""
        token = await M2MTokenSource(self.credentials()).access_token()
        return httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})

    def env(self) -> dict[str, object]:
        """The settings that point invoiceflow at this stand-in."""
        return {
            "accounting_provider": "netsuite",
            "netsuite_account_id": self.state.account_id,
            "netsuite_base_url": self.base_url,
            "netsuite_client_id": CLIENT_ID,
            "netsuite_certificate_id": CERTIFICATE_ID,
            "netsuite_private_key": self.private_key,
            "accounting_sales_account": "10",
            "accounting_tax_codes": "20=5,19=6",
        }


@pytest.fixture
def netsuite() -> Iterator[NetSuite]:
    private, certificate = keys()
    state = NetSuiteState(account_id=f"TSTDRV{uuid.uuid4().hex[:6].upper()}", concurrency=3)
    state.register_certificate(CERTIFICATE_ID, certificate, CLIENT_ID)
    app, _ = create_netsuite_app(state)
    with serve(app) as served:
        yield NetSuite(state, served, private)


def customer(tag: str | None = None) -> AccountingCustomer:
    tag = tag or uuid.uuid4().hex[:6]
    return AccountingCustomer(
        customer_id=str(uuid.uuid4()), name=f"Globex {tag}", email=f"ap-{tag}@globex.example", currency="USD"
    )


def invoice(number: str | None = None, *, who: AccountingCustomer | None = None) -> AccountingInvoice:
    """Three lines at 20 %, 19 % and 0 %, a fractional quantity and a 4-decimal price: 1,875.00 + 99.99 +
    1.00 net, 375.00 + 19.00 tax (per rate group), 2,369.99 total."""
    return build_invoice(
        invoice_id=str(uuid.uuid4()),
        number=number or f"INV-{uuid.uuid4().hex[:6]}",
        customer=who or customer(),
        issue_date=date(2026, 6, 10),
        due_date=date(2026, 7, 10),
        currency="USD",
        lines=[
            LineSpec("Consulting, June", D("12.5"), D("150.00"), D("20"), "10", "5"),
            LineSpec("Hosting", D("1"), D("99.99"), D("19"), "10", "6"),
            LineSpec("Printing", D("3"), D("0.3333"), D("0"), "10", ""),
        ],
    )
