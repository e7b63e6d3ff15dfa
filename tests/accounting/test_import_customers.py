"""``invoiceflow accounting import-customers``: contacts of the books link to our customers by id, tax
id, then email; ambiguous matches are listed and left alone; the rest become customers of ours, linked,
so issuing them an invoice creates no second contact in the books. ``--dry-run`` writes nothing."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import select
from typer.testing import CliRunner

from accounting.reconcile import customer_system
from core.settings import get_settings
from invoiceflow.cli import app
from persistence.db import session_scope
from persistence.models import Customer, CustomerExternalId
from tests.accounting.books import books_of
from tests.support import api_client, customer_body, eventually
from worker import build_worker


def _contact(state, name: str, email: str = "", tax: str = "") -> str:  # type: ignore[no-untyped-def]
    contact_id = str(uuid.uuid4())
    state.contacts[contact_id] = {
        "ContactID": contact_id,
        "ContactStatus": "ACTIVE",
        "Name": name,
        "EmailAddress": email,
        "TaxNumber": tax,
        "DefaultCurrency": "USD",
        "UpdatedDateUTC": "/Date(1764547200000+0000)/",
    }
    return contact_id


def _links(url: str, system: str) -> dict[str, uuid.UUID]:
    with session_scope(url) as session:
        rows = session.execute(
            select(CustomerExternalId.external_id, CustomerExternalId.customer_id).where(
                CustomerExternalId.system == system
            )
        ).all()
    return {external: customer for external, customer in rows}


async def test_import_links_creates_and_never_guesses(temporal_env, make_settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    tag = uuid.uuid4().hex[:8]
    with books_of("xero") as books:
        settings = make_settings(temporal_env.client, **books.settings_overrides())
        books.connect(settings)
        url = settings.require_database_url()
        async with api_client(settings, temporal_env.client) as api:
            by_tax = (await api.post("/customers", json=customer_body(tax_id=f"DE 12{tag}"))).json()
            by_email = (
                await api.post("/customers", json=customer_body(emails=[f"ap-{tag}@initech.example"]))
            ).json()
            for _ in range(2):
                await api.post("/customers", json=customer_body(emails=[f"shared-{tag}@umbrella.example"]))
        c_tax = _contact(books.state, f"Initrode {tag}", email=f"other-{tag}@x.example", tax=f"de12{tag}")
        c_email = _contact(books.state, f"Initech {tag}", email=f"AP-{tag}@initech.example")
        c_ambiguous = _contact(books.state, f"Umbrella {tag}", email=f"shared-{tag}@umbrella.example")
        c_new = _contact(books.state, f"Hooli {tag}", email=f"ap-{tag}@hooli.example", tax=f"US-{tag}")
        contacts_before = len(books.state.contacts)
        system = customer_system("xero", books.tenant)

        for name, value in books.settings_overrides().items():
            monkeypatch.setenv(f"INVOICEFLOW_{name.upper()}", str(value))
        monkeypatch.setenv("INVOICEFLOW_DATABASE_URL", url)
        monkeypatch.setenv("INVOICEFLOW_SECRET_KEY", settings.secret_key)  # the tokens were stored with it
        get_settings.cache_clear()
        try:
            runner = CliRunner()
            dry = await asyncio.to_thread(runner.invoke, app, ["accounting", "import-customers", "--dry-run"])
            assert dry.exit_code == 1, dry.output  # 1: something is ambiguous
            assert "2 would be linked, 1 would be created, 1 ambiguous" in dry.output, dry.output
            assert _links(url, system) == {}  # a dry run writes nothing

            done = await asyncio.to_thread(runner.invoke, app, ["accounting", "import-customers"])
            assert done.exit_code == 1, done.output
            assert (
                f"ambiguous, left alone: Umbrella {tag}" in done.output
                and "2 customers share its email" in done.output
            )
            links = _links(url, system)
            assert links[c_tax] == uuid.UUID(by_tax["id"]) and links[c_email] == uuid.UUID(by_email["id"])
            assert c_ambiguous not in links
            with session_scope(url) as session:
                hooli = session.get(Customer, links[c_new])
                assert hooli is not None and hooli.name == f"Hooli {tag}" and hooli.tax_id == f"US-{tag}"

            again = await asyncio.to_thread(runner.invoke, app, ["accounting", "import-customers"])
            assert "0 linked, 0 created" in again.output, again.output  # linked once, created once
        finally:
            get_settings.cache_clear()

        # The customer made from a contact is that contact in the books: its invoice creates no other.
        async with (
            build_worker(temporal_env.client, settings),
            api_client(settings, temporal_env.client) as api,
        ):
            created = await api.post(
                "/invoices",
                json={
                    "customer_id": str(links[c_new]),
                    "lines": [{"description": "Audit", "unit_price": "100.00"}],
                },
            )
            assert created.status_code == 201, created.text

            async def synced():  # type: ignore[no-untyped-def]
                body = (await api.get(f"/invoices/{created.json()['id']}")).json()
                return body if (body.get("accounting") or {}).get("status") == "synced" else None

            await eventually(synced, what="synced")
        assert len(books.state.contacts) == contacts_before
        [remote] = [i for i in books.state.invoices.values()]
        assert remote["Contact"]["ContactID"] == c_new
