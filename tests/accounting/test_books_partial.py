"""A partial payment entered in the books: the invoice becomes partially paid and the next reminder
names what is still due. Time-skipping test server (the reminder is days away), real PostgreSQL and
SMTP, the API on a real port receiving the provider's webhook."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from api.main import create_app
from standins.server import ServedApp, free_port
from tests.accounting.books import PROVIDER_NAMES, books_of
from tests.accounting.test_books_inbound import _status
from tests.support import customer_body, eventually, kind_of, to, wait_mail
from worker import build_worker


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_a_partial_payment_in_the_books_and_the_reminder_names_the_rest(
    time_env, make_settings, mailbox, provider
) -> None:  # type: ignore[no-untyped-def]
    client = time_env.client
    with books_of(provider) as books:
        port = free_port()
        settings = make_settings(
            client,
            public_url=f"http://127.0.0.1:{port}",
            **books.settings_overrides(),
            accounting_poll_minutes=0,
        )
        books.connect(settings)
        served = ServedApp(create_app(settings), port=port, lifespan="on").start()
        try:
            async with (
                build_worker(client, settings),
                httpx.AsyncClient(
                    base_url=settings.public_url,
                    headers={"Authorization": f"Bearer {settings.api_token}"},
                    timeout=30,
                ) as api,
            ):
                books.webhooks_to(settings.public_url)
                if provider == "freshbooks":
                    await eventually(_verified(books), what="callbacks verified")
                customer = (
                    await api.post("/customers", json=customer_body(currency="USD", payment_terms="net_14"))
                ).json()
                created = await api.post(
                    "/invoices",
                    json={
                        "customer_id": customer["id"],
                        "lines": [{"description": "Retainer", "unit_price": "1000.00"}],
                    },
                )
                invoice = created.json()
                synced = await eventually(_synced(api, invoice["id"]), what="synced")
                books.enter_payment(synced["accounting"]["external_id"], Decimal("400.00"))
                partial = await _status(api, invoice["id"], "partially_paid", timeout=10)
                assert (partial["amount_paid"], partial["amount_due"]) == ("400.00", "600.00")

                due = date.fromisoformat(partial["due_date"])
                now = await time_env.get_current_time()
                first = datetime(due.year, due.month, due.day, 12, tzinfo=UTC) - timedelta(days=3)
                await time_env.sleep(first - now)  # past the first reminder (3 days before due, 09:00)
                client_mail = customer["emails"][0]
                messages = await wait_mail(
                    mailbox, 1, where=lambda m: to(client_mail)(m) and kind_of(m) == "reminder", timeout=30
                )
                text = messages[0].text_body() or ""
                assert "600.00" in text and "1,000.00" not in text and "1000.00" not in text, text
        finally:
            served.stop()


def _verified(books):  # type: ignore[no-untyped-def]
    async def probe() -> bool:
        return books.callbacks_verified()

    return probe


def _synced(api: httpx.AsyncClient, invoice_id: str):  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if (body.get("accounting") or {}).get("status") == "synced" else None

    return probe
