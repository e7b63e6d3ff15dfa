"""One organisation's connector: the configured provider's client with its token source, ready to use.
NetSuite (machine-to-machine, nothing stored) comes from ``accounting.netsuite_connection``."""

from __future__ import annotations

from dataclasses import dataclass

from accounting.base import AccountingConnector
from accounting.freshbooks import FreshBooksConnector
from accounting.http import HttpSettings
from accounting.netsuite_auth import M2MTokenSource
from accounting.netsuite_connection import open_netsuite
from accounting.oauth import _check_provider, oauth_app, token_cipher
from accounting.qbo import QboConnector
from accounting.shared_limit import configured_limiter
from accounting.tokens import TokenStore
from accounting.xero import XeroConnector
from core.settings import Settings

# --- one organisation's connector ------------------------------------------------------------------


@dataclass
class Connection:
    """A connector and its token store for the configured organisation."""

    provider: str
    tenant_id: str
    store: TokenStore | M2MTokenSource
    connector: AccountingConnector

    async def aclose(self) -> None:
        await self.connector.aclose()


def open_connection(settings: Settings, tenant_id: str) -> Connection:
    """The connector for ``settings.accounting_provider``. Its rate limiter is the deployment-wide one
    of the organisation (``accounting.shared_limit``, call it on the event loop that uses it), or with
    ``accounting_rate_limit_scope=process`` the process-wide one (``accounting.ratelimit.limiter_for``)."""
    provider = _check_provider(settings.accounting_provider)
    if provider == "netsuite":
        m2m, netsuite = open_netsuite(settings, tenant_id)
        return Connection(provider=provider, tenant_id=tenant_id, store=m2m, connector=netsuite)
    app = oauth_app(settings, provider)
    store = TokenStore(
        database_url=settings.require_database_url(),
        cipher=token_cipher(settings),
        app=app,
        tenant_id=tenant_id,
        timeout_s=settings.accounting_timeout_s,
    )
    http = HttpSettings(timeout_s=settings.accounting_timeout_s)
    policy, limiter = configured_limiter(settings, provider, tenant_id)
    connector: AccountingConnector
    if provider == "xero":
        connector = XeroConnector(
            tenant_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.xero_base_url,
            payment_account_code=settings.accounting_payment_account or "090",
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    elif provider == "qbo":
        connector = QboConnector(
            realm_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.qbo_base_url,
            deposit_account_id=settings.accounting_payment_account,
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    else:
        connector = FreshBooksConnector(
            account_id=tenant_id,
            token_provider=store.access_token,
            base_url=settings.freshbooks_base_url,
            settings=http,
            policy=policy,
            limiter=limiter,
        )
    return Connection(provider=provider, tenant_id=tenant_id, store=store, connector=connector)
