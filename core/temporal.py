"""Temporal client and search-attribute registration shared by the worker, the API and the dev stack.

The kernel knows no workflow: callers pass the search attributes to register
(``workflows.search_attributes.ALL``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from core.payload_converter import DATA_CONVERTER, with_payload_hints
from core.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The TLS the settings ask for: ``False`` (plain, the dev server), ``True`` (system CAs), or a
    ``TLSConfig`` with our CA, client certificate and key (mTLS) and server name."""
    if not settings.temporal_uses_tls:
        return False
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        raise ValueError(
            "INVOICEFLOW_TEMPORAL_TLS_CERT and INVOICEFLOW_TEMPORAL_TLS_KEY go together: set both"
        )
    if not (settings.temporal_tls_ca or settings.temporal_tls_cert or settings.temporal_tls_server_name):
        return True

    def read(path: Path | None) -> bytes | None:
        return path.read_bytes() if path is not None else None

    return TLSConfig(
        server_root_ca_cert=read(settings.temporal_tls_ca),
        domain=settings.temporal_tls_server_name,
        client_cert=read(settings.temporal_tls_cert),
        client_private_key=read(settings.temporal_tls_key),
    )


async def connect(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    interceptors: Sequence[ClientInterceptor] = (),
    lazy: bool = False,
) -> Client:
    """A client for the worker, the API and the CLI alike: address, namespace, TLS / mTLS and a
    Temporal Cloud API key from the settings (``authorization: Bearer <key>`` on every call)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key,
        runtime=runtime,
        interceptors=interceptors,
        lazy=lazy,
        data_converter=DATA_CONVERTER,
    )


def with_our_converter(client: Client) -> Client:
    """The same connection with our payload converter (``core.payload_converter``), for a client made
    elsewhere (the tests' Temporal environments); a client that has it, or a converter of its own, as is."""
    converter = with_payload_hints(client.data_converter)
    if converter is client.data_converter:
        return client
    config = client.config()
    config["data_converter"] = converter
    return Client(**config)


async def register_search_attributes(client: Client, keys: Iterable[SearchAttributeKey]) -> None:
    """Idempotently add our custom search attributes (needed on servers started without the CLI flags,
    e.g. the time-skipping test server, which cannot list them, or a fresh cluster)."""
    wanted = {
        key.name: IndexedValueType.ValueType(SearchAttributeIndexedValueType(key.indexed_value_type).value)
        for key in keys
    }
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        wanted = {k: v for k, v in wanted.items() if k not in existing.custom_attributes}
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
    if not wanted:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=wanted)
        )
    except RPCError as exc:
        if exc.status != RPCStatusCode.ALREADY_EXISTS:
            raise
