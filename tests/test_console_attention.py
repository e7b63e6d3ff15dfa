"""The console's home page lists what needs a person: here, an invoice whose e-invoice was refused by
the rules (recorded the way the e-invoice activity records it) is counted and linked, and leaves the
list once its e-invoice is valid. Over HTTP with a signed-in session (real PostgreSQL)."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

from activities.einvoice import EInvoiceActivities
from activities.pdf import RenderPool
from billing.totals import LineInput
from documents.einvoice.model import EInvoiceRefused
from documents.einvoice.pool import EInvoicePool
from documents.einvoice.produce import Produced, refusal
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Customer
from tests.test_console_auth import browser, make_user, sign_in


def _refused_invoice(settings) -> uuid.UUID:  # type: ignore[no-untyped-def]
    url = settings.require_database_url()
    with session_scope(url) as session:
        tag = uuid.uuid4().hex[:6]
        customer = Customer(
            name=f"Stadtwerke {tag}",
            emails=[f"ap-{tag}@stadt.example"],
            currency="EUR",
            timezone="UTC",
            payment_terms="net_30",
            einvoice_format="xrechnung",
        )
        session.add(customer)
        session.flush()
        invoice = repo.create_invoice(
            session,
            repo.NewInvoice(
                customer=customer,
                currency="EUR",
                payment_terms="net_30",
                lines=[LineInput(description="Metering", quantity=Decimal(1), unit_price=Decimal("40"))],
            ),
        )
        produced = Produced("xrechnung", b"", b"", "application/xml", "", refusal(EInvoiceRefused("no city")))
        EInvoiceActivities(settings, RenderPool(0), EInvoicePool(0))._invalid(session, invoice, produced)
        return invoice.id


async def test_home_lists_refused_einvoices(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client)
    invoice_id = _refused_invoice(settings)
    async with browser(settings, temporal_env.client) as http:
        await sign_in(http, make_user(settings, "viewer"))
        home = await http.get("/app")
        assert home.status_code == 200
        count = re.search(r'id="einvoice-refused">(\d+)<', home.text)
        assert count is not None and int(count.group(1)) >= 1
        assert f'href="/app/invoices/{invoice_id}"' in home.text and "BR-DEC" in home.text
        listed = await http.get("/app/invoices", params={"status": "einvoice_invalid"})
        assert f"/app/invoices/{invoice_id}" in listed.text

        with session_scope(settings.require_database_url()) as session:  # fixed: it went out
            fixed = repo.get_invoice(session, invoice_id)
            fixed.einvoice_status, fixed.status = "valid", "open"
        assert f'href="/app/invoices/{invoice_id}"' not in (await http.get("/app")).text
