"""Estimates: the client answers on the hosted page from the email; acceptance converts the estimate
into an invoice with exactly its lines, discounts and tax; declines and expiry are recorded."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.support import api_client, customer_body, eventually, record_history, to, wait_mail
from worker import build_worker

LINK = re.compile(r"https?://[^\s\"<>]+(/estimates/view/[A-Za-z0-9._\-]+)")
LINES = [
    {
        "description": "Discovery workshop",
        "quantity": "2",
        "unit_price": "1250.00",
        "discount_percent": "10",
        "tax_rate": "19",
    },
    {
        "description": "Architecture document",
        "quantity": "1",
        "unit_price": "3333.33",
        "discount_amount": "333.33",
        "tax_rate": "7",
    },
]


async def _estimate(api, mailbox, **overrides):  # type: ignore[no-untyped-def]
    customer = (
        await api.post("/customers", json=customer_body(currency="EUR", timezone="Europe/Berlin"))
    ).json()
    body = {
        "customer_id": customer["id"],
        "lines": LINES,
        "valid_until": overrides.pop("valid_until"),
        "notes": "Kick-off in January",
    }
    response = await api.post("/estimates", json=body | overrides)
    assert response.status_code == 201, response.text
    estimate = response.json()
    [email] = await wait_mail(mailbox, 1, where=to(customer["emails"][0]))
    assert estimate["number"] in email.subject
    return customer, estimate, LINK.search(email.text_body() or "").group(1)  # type: ignore[union-attr]


async def test_accepting_on_the_page_creates_the_exact_invoice(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        today = (await time_env.get_current_time()).date()
        customer, estimate, link = await _estimate(
            api, mailbox, valid_until=(today + timedelta(days=30)).isoformat()
        )
        assert estimate["number"].startswith("EST-") and estimate["status"] == "draft"
        # 2 × 1250 − 10% = 2250.00 at 19% → 427.50; 3333.33 − 333.33 = 3000.00 at 7% → 210.00
        assert (estimate["subtotal"], estimate["tax_total"], estimate["total"]) == (
            "5250.00",
            "637.50",
            "5887.50",
        )

        shown = await api.get(link)
        assert shown.status_code == 200 and "5,887.50 EUR" in shown.text and "Accept" in shown.text
        accepted = await api.post(
            link, data={"decision": "accept", "note": "go ahead"}, headers={"User-Agent": "client-browser"}
        )
        assert accepted.status_code == 200 and "accepted" in accepted.text

        async def converted():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/estimates/{estimate['id']}")).json()
            return body if body["invoice_id"] else None

        done = await converted() or await eventually(converted, what="converted")
        assert done["status"] == "accepted" and done["decision_note"] == "go ahead"

        async def invoice_open():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{done['invoice_id']}")).json()
            return body if body["status"] == "open" else None

        invoice = await eventually(invoice_open, what="invoice sent")
        assert (invoice["subtotal"], invoice["tax_total"], invoice["total"]) == (
            "5250.00",
            "637.50",
            "5887.50",
        )
        assert [
            (
                l["description"],
                l["quantity"],
                l["unit_price"],
                l["discount_percent"],
                l["discount_amount"],
                l["tax_rate"],
            )
            for l in invoice["lines"]
        ] == [
            ("Discovery workshop", "2", "1250.00", "10", "0", "19"),
            ("Architecture document", "1", "3333.33", "0", "333.33", "7"),
        ]
        accepted_event = next(e for e in invoice["timeline"] if e["kind"] == "estimate.accepted")
        assert accepted_event["data"]["user_agent"] == "client-browser"
        await wait_mail(mailbox, 2, where=to(customer["emails"][0]))  # the estimate, then the invoice

        again = await api.post(link, data={"decision": "accept"})
        assert again.status_code == 409 and "accepted" in again.text
        assert (await api.post(f"/estimates/{estimate['id']}/convert", json={})).status_code == 409
        assert (await api.get(link[:-2] + "xx")).status_code == 400
        await record_history(client.get_workflow_handle(estimate["workflow_id"]), "estimate_accepted_on_page")


async def test_decline_expiry_and_operator_conversion(time_env, make_settings, mailbox) -> None:
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        today = (await time_env.get_current_time()).date()
        past = await api.post(
            "/estimates",
            json={
                "customer_id": (await api.post("/customers", json=customer_body())).json()["id"],
                "lines": LINES,
                "valid_until": (today - timedelta(days=2)).isoformat(),
            },
        )
        assert past.status_code == 422 and "valid_until" in past.text

        _, declined, link = await _estimate(
            api, mailbox, valid_until=(today + timedelta(days=30)).isoformat()
        )
        assert (await api.post(link, data={"decision": "decline", "note": "budget cut"})).status_code == 200

        async def status_of(estimate_id: str, expected: str):  # type: ignore[no-untyped-def]
            return (await api.get(f"/estimates/{estimate_id}")).json()["status"] == expected

        await eventually(lambda: status_of(declined["id"], "declined"), what="declined")
        assert (await api.get(f"/estimates/{declined['id']}")).json()["invoice_id"] is None

        _, expiring, expiring_link = await _estimate(
            api, mailbox, valid_until=(today + timedelta(days=2)).isoformat()
        )
        await eventually(lambda: status_of(expiring["id"], "sent"), what="sent")
        await time_env.sleep(timedelta(days=4))
        await eventually(lambda: status_of(expiring["id"], "expired"), what="expired")
        late = await api.post(expiring_link, data={"decision": "accept"})
        assert late.status_code == 409 and "expired" in late.text
        await record_history(client.get_workflow_handle(expiring["workflow_id"]), "estimate_expired")

        _, by_phone, _ = await _estimate(api, mailbox, valid_until=(today + timedelta(days=30)).isoformat())
        await eventually(lambda: status_of(by_phone["id"], "sent"), what="sent")
        converted = await api.post(f"/estimates/{by_phone['id']}/convert", json={"note": "accepted by phone"})
        assert (
            converted.status_code == 200
            and converted.json()["status"] == "accepted"
            and converted.json()["invoice_id"]
        )


async def test_an_estimate_with_a_project_plan_becomes_a_project_and_bills_its_deposit(
    time_env, make_settings, mailbox
) -> None:
    """Accepting counts as the signature: the deposit invoice goes out at once, the milestones wait for
    their events and recoup the deposit."""
    client = time_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        today = (await time_env.get_current_time()).date()
        customer = (await api.post("/customers", json=customer_body(currency="EUR"))).json()
        lines = [
            {"description": "Portal rebuild", "quantity": "1", "unit_price": "10000.00", "tax_rate": "19"}
        ]
        body = {
            "customer_id": customer["id"],
            "lines": lines,
            "valid_until": (today + timedelta(days=30)).isoformat(),
            "project": {
                "category": "fixed-scope",
                "deposit": {"percent": "30"},
                "milestones": [
                    {"key": "design", "name": "Design", "percent": "40"},
                    {"key": "build", "name": "Build", "percent": "60"},
                ],
            },
        }
        mixed = await api.post("/estimates", json=body | {"lines": lines + [lines[0] | {"tax_rate": "7"}]})
        assert mixed.status_code == 422 and "one tax rate" in mixed.text
        too_much = await api.post(
            "/estimates",
            json=body | {"project": {"milestones": [{"key": "a", "name": "A", "percent": "101"}]}},
        )
        assert too_much.status_code == 422 and "percent" in too_much.text

        created = await api.post("/estimates", json=body)
        assert created.status_code == 201, created.text
        estimate = created.json()
        [email] = await wait_mail(mailbox, 1, where=to(customer["emails"][0]))
        link = LINK.search(email.text_body() or "").group(1)  # type: ignore[union-attr]
        assert (await api.post(link, data={"decision": "accept"})).status_code == 200

        async def project_billed():  # type: ignore[no-untyped-def]
            est = (await api.get(f"/estimates/{estimate['id']}")).json()
            if not est["project_id"]:
                return None
            project = (await api.get(f"/projects/{est['project_id']}")).json()
            return project if project["invoices"] else None

        project = await eventually(project_billed, what="deposit billed")
        assert project["contract_amount"] == "10000.00" and project["category"] == "fixed-scope"
        assert project["deposit"]["billed"] == "3000.00" and project["pending"] == ["design", "build"]
        [deposit] = project["invoices"]

        async def sent():  # type: ignore[no-untyped-def]
            invoice = (await api.get(f"/invoices/{deposit['id']}")).json()
            return invoice if invoice["status"] == "open" else None

        invoice = await eventually(sent, what="deposit invoice sent")
        assert invoice["total"] == "3570.00"  # 3,000 + 19 % VAT
        await wait_mail(mailbox, 2, where=to(customer["emails"][0]))  # the estimate, then the deposit invoice

        done = await api.post(f"/projects/{project['id']}/milestones/design/complete", json={})
        assert done.status_code == 202

        async def design_billed():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/projects/{project['id']}")).json()
            return body if len(body["invoices"]) == 2 else None

        after = await eventually(design_billed, what="design milestone billed")
        # 4,000 less its share of the deposit (3,000 × 4,000 / 10,000 = 1,200) = 2,800 net, + 19 %.
        assert after["milestones"][0]["deposit_applied"] == "1200.00"
        assert sorted(i["total"] for i in after["invoices"]) == ["3332.00", "3570.00"]
        assert (await api.post(link, data={"decision": "accept"})).status_code == 409
        await record_history(
            client.get_workflow_handle(estimate["workflow_id"]), "estimate_accepted_into_project"
        )
