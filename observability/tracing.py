"""OpenTelemetry traces: one trace from an HTTP request (a webhook, an operator call) through the
Temporal workflow it starts or updates to the activities that send the email and call the books.

Pieces: FastAPI and httpx instrumentation (server spans for requests, client spans for the accounting
and CRM calls), and the Temporal SDK's ``TracingInterceptor`` on the client and the worker, which carries
the context in Temporal headers across the server into workflow and activity spans. Spans go to an OTLP
collector (``INVOICEFLOW_OTLP_ENDPOINT``, OTLP over HTTP); unset, nothing is set up and nothing costs."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

log = logging.getLogger("invoiceflow.tracing")
_provider: TracerProvider | None = None
_endpoints: set[str] = set()  # OTLP endpoints already exporting (create_app may run more than once)


def setup(service: str, otlp_endpoint: str | None = None, *, exporter: SpanExporter | None = None) -> bool:
    """Install the process's tracer provider once (OpenTelemetry allows one); later calls add
    ``exporter`` to it. Returns whether tracing is on."""
    global _provider
    if exporter is None and not otlp_endpoint:
        return _provider is not None
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": service}))
        trace.set_tracer_provider(_provider)
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor().instrument()
    if otlp_endpoint and otlp_endpoint not in _endpoints:
        _endpoints.add(otlp_endpoint)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        log.info("exporting traces", extra={"otlp_endpoint": endpoint})
    if exporter is not None:
        _provider.add_span_processor(SimpleSpanProcessor(exporter))
    return True


def enabled() -> bool:
    return _provider is not None


def temporal_interceptors() -> list[Any]:
    """The SDK's interceptor for client and worker while tracing is on (it is both kinds)."""
    if not enabled():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_app(app: Any) -> None:
    if enabled():
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,/healthz,/readyz")


TRACE_PREFIX = "trace."


def carrier() -> dict[str, str]:
    """The current trace context as ``trace.``-prefixed fields (W3C ``traceparent``), to keep with work
    handed over later by another task, such as a webhook event waiting in the inbox; empty when off."""
    if not enabled():
        return {}
    from opentelemetry import propagate

    fields: dict[str, str] = {}
    propagate.inject(fields)
    return {TRACE_PREFIX + k: v for k, v in fields.items()}


@contextmanager
def continued(fields: Mapping[str, Any] | None) -> Iterator[None]:
    """Run the block in the trace that ``carrier()`` saved in ``fields`` (no-op without one)."""
    saved = {
        k.removeprefix(TRACE_PREFIX): str(v) for k, v in (fields or {}).items() if k.startswith(TRACE_PREFIX)
    }
    if not saved or not enabled():
        yield
        return
    from opentelemetry import context, propagate

    token = context.attach(propagate.extract(saved))
    try:
        yield
    finally:
        context.detach(token)


def flush() -> None:
    if _provider is not None:
        _provider.force_flush()
