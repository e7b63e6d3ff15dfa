"""A tax rate the connected books have no code for is refused when the invoice is created (422 naming
the line), not found at sync time after the invoice went out; and the dev stack's stand-ins and tax
mappings cover every rate the README's own examples use."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import delete, insert, select

from accounting.reconcile import NO_TAX, tax_code_map
from accounting.tokens import TokenGrant, save_connection, token_cipher
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import AccountingConnection
from standins.accounting.dev import PROVIDERS
from tests.support import api_client, customer_body

README = Path(__file__).resolve().parents[2] / "README.md"


async def test_an_unmapped_rate_is_refused_at_creation_while_books_are_connected(
    temporal_env, make_settings
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        temporal_env.client, accounting_provider="xero", accounting_tax_codes="0=NONE,15=OUTPUT"
    )
    lines = [
        {"description": "Hosting", "unit_price": "10.00", "tax_rate": "15"},
        {"description": "Portal", "unit_price": "10.00", "tax_rate": "19"},
    ]
    url = settings.require_database_url()
    columns = [c.name for c in AccountingConnection.__table__.columns]
    with session_scope(url) as session:  # other tests' xero organisations step aside for this one
        others = [
            {c: getattr(row, c) for c in columns}
            for row in session.scalars(
                select(AccountingConnection).where(AccountingConnection.provider == "xero")
            )
        ]
        session.execute(delete(AccountingConnection).where(AccountingConnection.provider == "xero"))
    try:
        await _refused_while_connected(temporal_env, settings, lines)
    finally:
        with session_scope(url) as session:
            session.execute(delete(AccountingConnection).where(AccountingConnection.provider == "xero"))
            if others:
                session.execute(insert(AccountingConnection), others)


async def _refused_while_connected(temporal_env, settings, lines) -> None:  # type: ignore[no-untyped-def]
    async with api_client(settings, temporal_env.client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        # Not connected yet: nothing will be synced, so nothing is refused.
        assert (
            await api.post("/invoices", json={"customer_id": customer["id"], "lines": lines})
        ).status_code == 201
        grant = TokenGrant("at", "rt", datetime.now(UTC) + timedelta(hours=1))
        save_connection(
            settings.require_database_url(), token_cipher(settings), "xero", "tax-check-org", grant
        )
        refused = await api.post("/invoices", json={"customer_id": customer["id"], "lines": lines})
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["detail"]
        assert error["loc"] == ["body", "lines", 1, "tax_rate"]
        assert (
            "no xero tax code for 19 %" in error["msg"] and "INVOICEFLOW_ACCOUNTING_TAX_CODES" in error["msg"]
        )
        mapped = [lines[0], {"description": "Printing", "unit_price": "1.00", "tax_rate": "0"}]
        assert (
            await api.post("/invoices", json={"customer_id": customer["id"], "lines": mapped})
        ).status_code == 201


def readme_tax_rates() -> set[Decimal]:
    """Every ``"tax_rate": "<n>"`` in the README's examples."""
    return {Decimal(rate) for rate in re.findall(r'"tax_rate":\s*"([0-9.]+)"', README.read_text())}


def test_the_dev_stack_maps_every_tax_rate_of_the_readme_examples() -> None:
    rates = readme_tax_rates()
    assert Decimal(19) in rates  # the first invoice of the README
    for provider, dev in PROVIDERS.items():
        env = dev.env("http://127.0.0.1:1")
        settings = Settings(accounting_tax_codes=env.get("INVOICEFLOW_ACCOUNTING_TAX_CODES", ""))
        codes = tax_code_map(settings)
        _, state = dev.app()
        for rate in rates:
            code = codes.get(rate, NO_TAX[provider] if rate == 0 else None)
            assert code is not None, f"{provider}: no tax code for the README's {rate} %"
            known = getattr(state, "tax_rates", None) or getattr(state, "tax_codes", None)
            if known is not None:  # Xero TaxType / QBO TaxCode: the stand-in must know it, at that rate
                assert known.get(code) == rate, f"{provider}: {code} is {known.get(code)} %, not {rate} %"
            elif getattr(state, "known_taxes", None) is not None:
                assert code in state.known_taxes, f"{provider}: no tax named {code}"
        json.dumps(env)  # the settings are plain strings
