"""A public hosted link cannot grow the append-only timeline without bound: views and opens are counted
per visitor and day, the first of each visitor's day is on the timeline (for at most ten visitors a
day), the rest only counted. Before, 300 views and 300 pixel hits made 600 timeline rows."""

from __future__ import annotations

from core.links import sign_invoice_page
from persistence.link_visits import VISITORS_PER_DAY
from tests.support import api_client, customer_body, eventually
from worker import build_worker


async def test_views_and_opens_are_counted_not_each_written(temporal_env, make_settings) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        line = {"description": "Support", "quantity": "1", "unit_price": "90.00"}
        invoice = (await api.post("/invoices", json={"customer_id": customer["id"], "lines": [line]})).json()

        async def issued():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "open" else None

        await eventually(issued, what="open")
        token = sign_invoice_page(settings.secret_key, invoice["id"])
        same = {"User-Agent": "Mail/1.0"}
        for _ in range(300):
            assert (await api.get(f"/i/{token}", headers=same)).status_code == 200
            assert (await api.get(f"/i/{token}/open.gif", headers=same)).status_code == 200
        for n in range(VISITORS_PER_DAY + 5):  # more visitors than the daily cap
            await api.get(f"/i/{token}", headers={"User-Agent": f"Browser/{n}"})

        body = (await api.get(f"/invoices/{invoice['id']}")).json()
        kinds = [e["kind"] for e in body["timeline"]]
        assert kinds.count("opened") == 1
        assert kinds.count("viewed") == VISITORS_PER_DAY  # the first visitor and the next nine
        assert body["link_activity"]["opened"] == {"count": 300, "visitors": 1}
        assert body["link_activity"]["viewed"] == {"count": 300 + VISITORS_PER_DAY + 5, "visitors": 16}
