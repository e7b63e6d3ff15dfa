"""One accounting stand-in per test on a real port, with an organisation of its own (so ``reconcile``,
which reads every invoice synced to that organisation, sees only this test's invoices), its connection
stored, and helpers to wait for a sync row and read what the books hold."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from accounting.base import RemoteInvoice
from accounting.connection import open_connection
from accounting.tokens import TokenGrant, save_connection, token_cipher
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingSync
from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS
from standins.server import serve
from tests.support import eventually

TENANT_SETTING = {"xero": "xero_tenant_id", "qbo": "qbo_realm_id", "freshbooks": "freshbooks_account_id"}


@dataclass
class Books:
    provider: str
    tenant: str
    state: Any
    settings: Settings

    async def remote(self, external_id: str) -> RemoteInvoice:
        connection = open_connection(self.settings, self.tenant)
        try:
            return await connection.connector.fetch_invoice(external_id)
        finally:
            await connection.aclose()

    def row(self, kind: str, object_id: str) -> AccountingSync | None:
        with session_scope(self.settings.require_database_url()) as session:
            return session.scalars(
                select(AccountingSync).where(
                    AccountingSync.provider == self.provider,
                    AccountingSync.tenant_id == self.tenant,
                    AccountingSync.kind == kind,
                    AccountingSync.object_id == uuid.UUID(object_id),
                )
            ).one_or_none()

    async def synced(self, kind: str, object_id: str, *, timeout: float = 45.0) -> AccountingSync:
        async def probe() -> AccountingSync | None:
            found = self.row(kind, object_id)
            return found if found is not None and found.status == "synced" else None

        return await eventually(probe, timeout=timeout, what=f"{kind} {object_id} synced")


def _state(provider: str, tenant: str) -> tuple[Any, Any]:
    if provider == "xero":
        from standins.accounting.xero import XeroState, create_xero_app

        state: Any = XeroState(tenant_id=tenant, tokens={DEV_TOKEN})
        state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
        return create_xero_app(state)
    if provider == "qbo":
        from standins.accounting.qbo import QboState, create_qbo_app

        state = QboState(realm_id=tenant, tokens={DEV_TOKEN})
        state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
        return create_qbo_app(state)
    from standins.accounting.freshbooks import FreshBooksState, create_freshbooks_app

    state = FreshBooksState(account_id=tenant, tokens={DEV_TOKEN})
    state.oauth.add_refresh_token(DEV_REFRESH_TOKEN)
    return create_freshbooks_app(state)


@contextmanager
def books(provider: str, make_settings: Any, client: Any, **overrides: Any) -> Iterator[Books]:
    tenant = {
        "xero": f"tenant-{uuid.uuid4().hex[:10]}",
        "qbo": str(random.randrange(10**15, 10**16)),
        "freshbooks": f"acct{uuid.uuid4().hex[:6]}",
    }[provider]
    app, state = _state(provider, tenant)
    with serve(app) as served:
        env = PROVIDERS[provider].env(served.base_url)
        values = {key.removeprefix("INVOICEFLOW_").lower(): value for key, value in env.items()}
        values[TENANT_SETTING[provider]] = tenant
        if provider == "qbo":
            values["accounting_tax_codes"] = "0=NON"
        settings = make_settings(
            client, accounting_provider=provider, accounting_timeout_s=5.0, **(values | overrides)
        )
        save_connection(
            settings.require_database_url(),
            token_cipher(settings),
            provider,
            tenant,
            TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(hours=1)),
        )
        yield Books(provider, tenant, state, settings)


D = Decimal
