"""Temporal client and search-attribute registration shared by the worker, the API and the dev stack.

The kernel knows no workflow: callers pass the search attributes to register
(``workflows.search_attributes.ALL``)."""

from __future__ import annotations

from collections.abc import Iterable

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)


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
