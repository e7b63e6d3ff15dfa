"""Xero requires contact names unique across active contacts: two of our customers with one name both
sync, the second under a disambiguated name, each found again by our id (ContactNumber) afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import pytest

from accounting.base import SyncStatus
from accounting.xero import XeroConnector
from standins.accounting.xero import XeroState, create_xero_app
from standins.server import ServedApp, serve
from tests.accounting.helpers import customer
from tests.accounting.test_xero import TOKEN, connector


@pytest.fixture
def state() -> XeroState:
    return XeroState(tenant_id="tenant-1", tokens={TOKEN})


@pytest.fixture
def served(state: XeroState) -> Iterator[ServedApp]:
    app, _ = create_xero_app(state)
    with serve(app) as running:
        yield running


@pytest.fixture
async def xero(served: ServedApp) -> AsyncIterator[XeroConnector]:
    client = connector(served)
    yield client
    await client.aclose()


async def test_two_customers_with_the_same_name_both_get_a_contact(
    xero: XeroConnector, state: XeroState
) -> None:
    first = replace(customer("a"), name="Acme GmbH")
    second = replace(customer("b"), name="Acme GmbH")
    one = await xero.ensure_customer(first, idempotency_key="cus_a")
    two = await xero.ensure_customer(second, idempotency_key="cus_b")
    assert one.status == two.status == SyncStatus.CREATED
    assert one.external_id != two.external_id
    names = {c["ContactNumber"]: c["Name"] for c in state.contacts.values()}
    assert names[first.customer_id] == "Acme GmbH"
    assert (
        names[second.customer_id].startswith("Acme GmbH (")
        and second.customer_id[:8] in names[second.customer_id]
    )
    # Found again by our id, whatever its name became: no third contact.
    again = await xero.ensure_customer(second, idempotency_key="cus_b:again")
    assert again.status == SyncStatus.EXISTING and again.external_id == two.external_id
    assert len(state.contacts) == 2
