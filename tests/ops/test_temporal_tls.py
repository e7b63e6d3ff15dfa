"""Temporal beyond one machine: the worker and the API run an invoice through a TLS endpoint with
mutual TLS, a client without the right certificate is refused, and an API key travels as Temporal Cloud
expects it (``authorization: Bearer <key>`` on every gRPC call). The dev server speaks plain gRPC, so a
TLS-terminating proxy of the test's own stands in front of it (``tests/ops/tls_proxy.py``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from core.settings import Settings
from core.temporal import connect, tls_config
from tests.conftest import target_of
from tests.ops.tls_proxy import TlsProxy, issue, make_ca
from worker import build_worker


@pytest.fixture
def pki(tmp_path: Path) -> dict:
    ca = make_ca(tmp_path, "cluster")
    rogue = make_ca(tmp_path, "rogue")
    return {
        "ca": ca,
        "server": issue(tmp_path, "server", ca, server=True),
        "client": issue(tmp_path, "worker", ca, server=False),
        "rogue_client": issue(tmp_path, "intruder", rogue, server=False),
    }


def tls_settings(
    base: Settings, proxy: TlsProxy, pki: dict, client: str | None = "client", **more: object
) -> Settings:
    values: dict[str, object] = {
        "temporal_address": proxy.address,
        "temporal_tls_ca": pki["ca"].cert,
        "temporal_tls_server_name": "localhost",
        **more,
    }
    if client:
        values |= {"temporal_tls_cert": pki[client].cert, "temporal_tls_key": pki[client].key}
    return base.model_copy(update=values)


async def test_worker_and_api_run_an_invoice_over_mtls(temporal_env, served_api, make_settings, pki) -> None:  # type: ignore[no-untyped-def]
    proxy = await TlsProxy(target_of(temporal_env.client), pki["server"], client_ca=pki["ca"]).start()
    try:
        api_settings = served_api(
            temporal_address=proxy.address,
            temporal_tls_ca=pki["ca"].cert,
            temporal_tls_cert=pki["client"].cert,
            temporal_tls_key=pki["client"].key,
            temporal_tls_server_name="localhost",
        )
        settings = api_settings
        client = await connect(settings)
        auth = {"Authorization": f"Bearer {settings.api_token}"}
        async with build_worker(client, settings), httpx.AsyncClient(base_url=settings.public_url) as http:
            customer = (
                await http.post(
                    "/customers",
                    headers=auth,
                    json={"name": "Hooli", "emails": ["ap@hooli.example.com"], "currency": "EUR"},
                )
            ).json()
            created = await http.post(
                "/invoices",
                headers=auth,
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "TLS", "unit_price": "10.00"}],
                },
            )
            assert created.status_code == 201, created.text
            deadline = time.monotonic() + 30
            status = ""
            while time.monotonic() < deadline and status != "open":
                status = (await http.get(f"/invoices/{created.json()['id']}", headers=auth)).json()["status"]
                await asyncio.sleep(0.3)
            assert status == "open"
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["temporal"] == "ok", ready.text
        # Everything went through the proxy, every connection with our client certificate.
        assert proxy.peers and all("worker" in peer for peer in proxy.peers), proxy.peers
        assert any(h.get(":path", "").endswith("/PollWorkflowTaskQueue") for h in proxy.headers)
        paths = {h.get(":path", "").rsplit("/", 1)[-1] for h in proxy.headers}
        assert {"StartWorkflowExecution", "RespondActivityTaskCompleted"} <= paths or (
            "ExecuteMultiOperation" in paths and "RespondActivityTaskCompleted" in paths
        ), paths
    finally:
        await proxy.stop()


@pytest.mark.parametrize("client", [None, "rogue_client"])
async def test_a_client_without_the_right_certificate_is_refused(
    temporal_env, make_settings, pki, client
) -> None:  # type: ignore[no-untyped-def]
    proxy = await TlsProxy(target_of(temporal_env.client), pki["server"], client_ca=pki["ca"]).start()
    try:
        settings = tls_settings(make_settings(temporal_env.client), proxy, pki, client)
        with pytest.raises(RuntimeError):
            await asyncio.wait_for(connect(settings), timeout=20)
        assert proxy.peers == []
        # The same proxy lets the right certificate in.
        good = await connect(tls_settings(make_settings(temporal_env.client), proxy, pki))
        assert await good.service_client.check_health()
    finally:
        await proxy.stop()


async def test_api_key_is_sent_as_a_bearer_authorization_header(temporal_env, make_settings, pki) -> None:  # type: ignore[no-untyped-def]
    # Temporal Cloud's API-key namespaces: TLS with the public CAs (here ours) and no client certificate.
    proxy = await TlsProxy(target_of(temporal_env.client), pki["server"]).start()
    try:
        key = "tcak-test-0123456789abcdef"
        settings = tls_settings(make_settings(temporal_env.client), proxy, pki, None, temporal_api_key=key)
        client = await connect(settings)
        assert await client.service_client.check_health()
        await client.workflow_service.get_system_info(GetSystemInfoRequest())
        grpc_calls = [
            h for h in proxy.headers if h.get(":path", "").startswith("/temporal.api.workflowservice")
        ]
        assert grpc_calls, proxy.headers
        assert all(h.get("authorization") == f"Bearer {key}" for h in grpc_calls), grpc_calls
        assert all(h.get(":scheme") == "https" for h in grpc_calls)
    finally:
        await proxy.stop()


def test_tls_settings_build_the_sdk_config(tmp_path: Path, make_settings) -> None:  # type: ignore[no-untyped-def]
    base = make_settings()
    assert tls_config(base) is False
    assert tls_config(base.model_copy(update={"temporal_api_key": "k" * 12})) is True
    with pytest.raises(ValueError, match="go together"):
        tls_config(base.model_copy(update={"temporal_tls_cert": tmp_path / "c.pem"}))
