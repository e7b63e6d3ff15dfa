"""The API refuses at creation what the official rules would refuse at issue, naming the business term
and the rule; and keeps accepting today's free-text address next to the structured one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.einvoice.cases import SELLER
from tests.support import api_client, customer_body

ADDRESS = {"line1": "Königsallee 1", "city": "Düsseldorf", "postal_code": "40212", "country": "de"}


def _rules(response) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.text
    return {(d.get("term", ""), d.get("rule", "")) for d in response.json()["detail"]}


async def _customer(api, **fields: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    created = await api.post("/customers", json=customer_body(currency="EUR", **fields))
    assert created.status_code == 201, created.text
    return created.json()


async def test_customer_fields_round_trip(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, **SELLER)
    async with api_client(settings, temporal_env.client) as api:
        c = await _customer(
            api,
            address=ADDRESS,
            tax_id="DE987654321",
            buyer_reference="04011000-12345-03",
            endpoint="9930:DE987654321",
            einvoice_format="xrechnung",
        )
        assert c["postal_address"] == {**ADDRESS, "line2": "", "region": "", "country": "DE"}
        assert c["address"] == "Königsallee 1\n40212 Düsseldorf\nDE"  # what the PDF prints
        assert (c["einvoice_format"], c["endpoint"], c["buyer_reference"]) == (
            "xrechnung",
            "9930:DE987654321",
            "04011000-12345-03",
        )
        free = await _customer(api, address="1 Main Street\nSpringfield")  # today's free text still works
        assert free["address"] == "1 Main Street\nSpringfield" and free["postal_address"] is None
        assert free["einvoice_format"] == "none"
        patched = await api.patch(
            f"/customers/{free['id']}", json={"address": {"city": "Springfield", "country": "US"}}
        )
        assert patched.status_code == 200, patched.text
        assert patched.json()["postal_address"]["city"] == "Springfield"


async def test_customer_refusals_name_the_term_and_rule(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, **SELLER)
    async with api_client(settings, temporal_env.client) as api:
        no_country = await api.post(
            "/customers",
            json=customer_body(address={"line1": "Main St 1", "city": "X"}, einvoice_format="facturx"),
        )
        assert ("BT-55", "BR-11") in _rules(no_country)
        no_leitweg = await api.post(
            "/customers", json=customer_body(address=ADDRESS, einvoice_format="xrechnung")
        )
        assert ("BT-10", "BR-DE-15") in _rules(no_leitweg)
        no_endpoint = await api.post(
            "/customers", json=customer_body(address=ADDRESS, einvoice_format="peppol")
        )
        assert ("BT-49", "PEPPOL-EN16931-R010") in _rules(no_endpoint)
        bad_endpoint = await api.post("/customers", json=customer_body(endpoint="DE987654321"))
        assert bad_endpoint.status_code == 422 and "endpoint" in bad_endpoint.text
        # The same rule lets a complete customer through (each refusal above is about its one field).
        ok = await _customer(api, address=ADDRESS, einvoice_format="facturx")
        switched = await api.patch(f"/customers/{ok['id']}", json={"einvoice_format": "xrechnung"})
        assert ("BT-10", "BR-DE-15") in _rules(switched)


LINE = {"description": "Consulting", "quantity": "1", "unit_price": "100.00"}


@pytest.mark.parametrize(
    ("line", "customer", "expected"),
    [
        (
            {"tax_rate": "0", "tax_category": "AE", "tax_exemption_reason": "Reverse charge"},
            {},
            ("BT-48", "BR-AE-02"),
        ),
        (
            {"tax_rate": "0", "tax_category": "K", "tax_exemption_reason": "Intra-community"},
            {},
            ("BT-48", "BR-IC-02"),
        ),
        ({"tax_rate": "0", "tax_category": "E"}, {"tax_id": "DE1"}, ("BT-120", "BR-E-10")),
        ({"tax_rate": "0", "tax_category": "S"}, {"tax_id": "DE1"}, ("BT-152", "BR-S-05")),
        ({"tax_rate": "19", "tax_category": "Z"}, {"tax_id": "DE1"}, ("BT-152", "BR-Z-05")),
    ],
)
async def test_invoice_refusals_name_the_term_and_rule(
    temporal_env, make_settings, line, customer, expected
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, **SELLER)
    async with api_client(settings, temporal_env.client) as api:
        c = await _customer(api, address=ADDRESS, einvoice_format="facturx", **customer)
        refused = await api.post("/invoices", json={"customer_id": c["id"], "lines": [{**LINE, **line}]})
        assert expected in _rules(refused)
        listed = await api.get("/invoices", params={"customer_id": c["id"]})
        assert listed.json()["items"] == []  # nothing half-written


async def test_currency_with_three_decimals_and_peppol_reference(temporal_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(temporal_env.client, **SELLER)
    async with api_client(settings, temporal_env.client) as api:
        kwd = await _customer(api, address=ADDRESS, einvoice_format="facturx")
        refused = await api.post(
            "/invoices",
            json={"customer_id": kwd["id"], "currency": "KWD", "lines": [{**LINE, "unit_price": "10.125"}]},
        )
        rules = _rules(refused)
        assert ("BT-5", "BR-DEC-23") in rules
        assert "KWD has 3 decimals" in refused.text
        peppol = await _customer(api, address=ADDRESS, einvoice_format="peppol", endpoint="0208:0123456749")
        line = {**LINE, "tax_rate": "21"}
        no_ref = await api.post("/invoices", json={"customer_id": peppol["id"], "lines": [line]})
        assert ("BT-10/BT-13", "PEPPOL-EN16931-R003") in _rules(no_ref)


def test_the_dev_stack_has_a_seller_an_e_invoice_can_name() -> None:
    """`invoiceflow dev` fills the seller an EN 16931 invoice needs, and what the user set wins."""
    from invoiceflow.demo import dev_environment

    env = dev_environment({"INVOICEFLOW_SELLER_NAME": "Mine Ltd"})
    assert env["INVOICEFLOW_SELLER_NAME"] == "Mine Ltd"
    assert env["INVOICEFLOW_SELLER_COUNTRY"] == "DE" and env["INVOICEFLOW_SELLER_VAT_ID"].startswith("DE")
    assert env["INVOICEFLOW_SELLER_IBAN"] and env["INVOICEFLOW_SELLER_ENDPOINT"].startswith("9930:")
