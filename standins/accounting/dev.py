"""The accounting stand-ins as a service of `invoiceflow dev --accounting=<provider>`.

`invoiceflow standin <provider>` serves one stand-in on a port with a known access token, tenant and
refresh token; the dev stack points the worker's `INVOICEFLOW_<PROVIDER>_*` settings at it and stores
that token as the organisation's connection, so issued invoices show up in the stand-in at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

DEV_TOKEN = "dev-accounting-token"
DEV_REFRESH_TOKEN = "dev-accounting-refresh"
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
}


def serve_forever(provider: str, host: str, port: int) -> None:
    import uvicorn

    app, _ = PROVIDERS[provider].app()
    uvicorn.run(app, host=host, port=port, log_level="warning")
