"""The accounting stand-ins as a service of `invoiceflow dev --accounting=<provider>`.

`invoiceflow standin <provider>` serves one stand-in on a port with a known access token, tenant and
refresh token; the dev stack points the worker's `INVOICEFLOW_<PROVIDER>_*` settings at it and stores
that token as the organisation's connection, so issued invoices show up in the stand-in at once.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

DEV_TOKEN = "dev-accounting-token"
DEV_REFRESH_TOKEN = "dev-accounting-refresh"
# The settings that switch each provider's webhook receiver on, and the value the dev stack gives them
# (FreshBooks' verifier comes from its verification request; any value switches the receiver on).
WEBHOOK_SETTINGS = {
    "xero": "INVOICEFLOW_XERO_WEBHOOK_KEY",
    "qbo": "INVOICEFLOW_QBO_WEBHOOK_VERIFIER",
    "freshbooks": "INVOICEFLOW_FRESHBOOKS_WEBHOOK_VERIFIER",
}
# The rates the README's examples use (19 % and 7 %, German VAT) exist in every dev organisation and are
# mapped in its INVOICEFLOW_ACCOUNTING_TAX_CODES, so the README's first invoice syncs as it stands.
DEV_XERO_TAX_RATES = {"TAX001": Decimal(19), "TAX002": Decimal(7)}
DEV_QBO_TAX_CODES = {"3": Decimal(19), "4": Decimal(7)}


@dataclass(frozen=True)
class DevAccounting:
    tenant: str
    app: Callable[[], tuple[Any, Any]]
    env: Callable[[str], dict[str, str]]  # base URL → INVOICEFLOW_* settings


def _xero() -> tuple[Any, Any]:
    from standins.accounting.xero import XeroState, create_xero_app

    state = XeroState(tenant_id=PROVIDERS["xero"].tenant, tokens={DEV_TOKEN})
    state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
    for tax_type, rate in DEV_XERO_TAX_RATES.items():  # custom rates are TAX001, TAX002, ... in Xero
        state.add_tax_rate(tax_type, rate)
    return create_xero_app(state)


def _qbo() -> tuple[Any, Any]:
    from standins.accounting.qbo import QboState, create_qbo_app

    state = QboState(realm_id=PROVIDERS["qbo"].tenant, tokens={DEV_TOKEN})
    state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
    for code, rate in DEV_QBO_TAX_CODES.items():
        state.add_tax_code(code, rate)
    return create_qbo_app(state)


def _freshbooks() -> tuple[Any, Any]:
    from standins.accounting.freshbooks import FreshBooksState, create_freshbooks_app

    state = FreshBooksState(account_id=PROVIDERS["freshbooks"].tenant, tokens={DEV_TOKEN})
    state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
    return create_freshbooks_app(state)


NETSUITE_DEV_CLIENT_ID = "dev-netsuite-client"
NETSUITE_DEV_CERTIFICATE_ID = "dev-netsuite-certificate"


def netsuite_dev_key(path: Path) -> Path:
    """The dev stack's M2M private key (made on first use, kept in the data dir): the worker signs its
    client assertions with it and the stand-in registers its public half as the mapped certificate."""
    if not path.exists():
        from standins.accounting.netsuite_keys import key_pair

        path.parent.mkdir(parents=True, exist_ok=True)
        private, _ = key_pair("invoiceflow-dev")
        path.write_text(private)
        path.chmod(0o600)
    return path


def _netsuite() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import serialization

    from standins.accounting.netsuite import NetSuiteState, create_netsuite_app

    state = NetSuiteState(account_id=PROVIDERS["netsuite"].tenant)
    key_file = os.environ.get("INVOICEFLOW_NETSUITE_PRIVATE_KEY_FILE")
    if key_file:  # the public half of the dev key is the certificate mapped for the dev client id
        private = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        state.register_certificate(NETSUITE_DEV_CERTIFICATE_ID, public, NETSUITE_DEV_CLIENT_ID)
    return create_netsuite_app(state)


PROVIDERS: dict[str, DevAccounting] = {
    "xero": DevAccounting(
        "dev-xero-tenant",
        _xero,
        lambda base: {
            "INVOICEFLOW_XERO_BASE_URL": f"{base}/api.xro/2.0",
            "INVOICEFLOW_XERO_TOKEN_URL": f"{base}/identity/connect/token",
            "INVOICEFLOW_XERO_TENANT_ID": "dev-xero-tenant",
            "INVOICEFLOW_XERO_CLIENT_ID": "xero-client",
            "INVOICEFLOW_XERO_CLIENT_SECRET": "xero-secret",
            "INVOICEFLOW_ACCOUNTING_TAX_CODES": "0=NONE,7=TAX002,15=OUTPUT,19=TAX001,20=OUTPUT2",
        },
    ),
    "qbo": DevAccounting(
        "9130350000000001",
        _qbo,
        lambda base: {
            "INVOICEFLOW_QBO_BASE_URL": base,
            "INVOICEFLOW_QBO_TOKEN_URL": f"{base}/oauth2/v1/tokens/bearer",
            "INVOICEFLOW_QBO_REALM_ID": "9130350000000001",
            "INVOICEFLOW_QBO_CLIENT_ID": "qbo-client",
            "INVOICEFLOW_QBO_CLIENT_SECRET": "qbo-secret",
            # A QBO line names an Item (which decides the income account), and a US company's tax code.
            "INVOICEFLOW_ACCOUNTING_SALES_ACCOUNT": "1",
            "INVOICEFLOW_ACCOUNTING_TAX_CODES": "0=NON,7=4,8.875=TAX,19=3",
        },
    ),
    "freshbooks": DevAccounting(
        "xZNQ1X",
        _freshbooks,
        lambda base: {
            "INVOICEFLOW_FRESHBOOKS_BASE_URL": base,
            "INVOICEFLOW_FRESHBOOKS_TOKEN_URL": f"{base}/auth/oauth/token",
            "INVOICEFLOW_FRESHBOOKS_ACCOUNT_ID": "xZNQ1X",
            "INVOICEFLOW_FRESHBOOKS_CLIENT_ID": "freshbooks-client",
            "INVOICEFLOW_FRESHBOOKS_CLIENT_SECRET": "freshbooks-secret",
            "INVOICEFLOW_ACCOUNTING_TAX_CODES": "7=VAT7,19=VAT19",  # FreshBooks taxes go by name
        },
    ),
    # M2M: no stored connection; the dev stack adds INVOICEFLOW_NETSUITE_PRIVATE_KEY_FILE (netsuite_dev_key).
    "netsuite": DevAccounting(
        "TSTDRV1234567",
        _netsuite,
        lambda base: {
            "INVOICEFLOW_NETSUITE_BASE_URL": base,
            "INVOICEFLOW_NETSUITE_ACCOUNT_ID": "TSTDRV1234567",
            "INVOICEFLOW_NETSUITE_CLIENT_ID": NETSUITE_DEV_CLIENT_ID,
            "INVOICEFLOW_NETSUITE_CERTIFICATE_ID": NETSUITE_DEV_CERTIFICATE_ID,
            # The stand-in's item "Services" and its 20 % and 19 % tax codes.
            "INVOICEFLOW_ACCOUNTING_SALES_ACCOUNT": "10",
            "INVOICEFLOW_ACCOUNTING_TAX_CODES": "20=5,19=6",
        },
    ),
}


def serve_forever(
    provider: str,
    host: str,
    port: int,
    *,
    webhook_url: str | None = None,
    webhook_secret: str = "",
    quota: bool = True,
) -> None:
    """Serve the stand-in; with ``webhook_url`` it sends the provider's signed webhooks there (Xero and
    QBO: configured here, as in their developer portals; FreshBooks: once a callback is registered
    through its API, see ``register_freshbooks_callbacks``)."""
    import uvicorn

    app, state = PROVIDERS[provider].app()
    if not quota:
        state.core.traffic.quota = None
    if webhook_url and provider in ("xero", "qbo"):
        state.webhooks.configure(webhook_url, webhook_secret)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def register_freshbooks_callbacks(base_url: str, account_id: str, uri: str) -> None:
    """Register payment, invoice and credit note callbacks through FreshBooks' API, as an operator
    would; FreshBooks then sends each a verification request, which our receiver answers."""
    import httpx

    for event in ("payment", "invoice", "credit_note"):
        response = httpx.post(
            f"{base_url}/events/account/{account_id}/events/callbacks",
            json={"callback": {"event": event, "uri": uri}},
            headers={"Authorization": f"Bearer {DEV_TOKEN}"},
            timeout=10,
        )
        response.raise_for_status()
