"""The configured NetSuite account: its connector and M2M token source, from settings."""

from __future__ import annotations

from accounting.errors import ConnectionProblem
from accounting.netsuite import NetSuiteConnector, base_url_for
from accounting.netsuite_auth import M2MTokenSource, credentials
from accounting.netsuite_http import netsuite_http_settings, netsuite_policy
from core.settings import Settings


def currency_ids(value: str) -> dict[str, str]:
    """``"USD=1, EUR=4"`` → {"USD": "1", "EUR": "4"}."""
    pairs: dict[str, str] = {}
    for part in value.split(","):
        if not part.strip():
            continue
        code, sep, internal = part.partition("=")
        if not sep or not code.strip() or not internal.strip():
            raise ConnectionProblem(
                f"INVOICEFLOW_NETSUITE_CURRENCY_IDS: {part.strip()!r} is not CODE=id (e.g. USD=1)",
                provider="netsuite",
            )
        pairs[code.strip().upper()] = internal.strip()
    return pairs


def open_netsuite(settings: Settings, account_id: str) -> tuple[M2MTokenSource, NetSuiteConnector]:
    """The account's M2M token source and its connector (``accounting.connection`` wraps them)."""
    base_url = settings.netsuite_base_url or base_url_for(account_id)
    store = M2MTokenSource(credentials(settings, base_url), timeout_s=settings.accounting_timeout_s)
    connector = NetSuiteConnector(
        account_id=account_id,
        token_provider=store.access_token,
        base_url=base_url,
        currency_ids=currency_ids(settings.netsuite_currency_ids),
        deposit_account_id=settings.accounting_payment_account,
        subsidiary_id=settings.netsuite_subsidiary_id,
        settings=netsuite_http_settings(settings.accounting_timeout_s),
        policy=netsuite_policy(settings.netsuite_concurrency),
    )
    return store, connector
