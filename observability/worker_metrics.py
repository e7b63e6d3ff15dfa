"""The worker's ``/metrics``: the Temporal SDK's own metrics and invoiceflow's, on one port.

The SDK's metrics (task slots, schedule-to-start latency, sticky cache, poll and activity failures) come
from its Rust core, which serves them itself through ``PrometheusConfig``; ours live in
prometheus-client. Prometheus should scrape one target per worker, so the SDK's server binds an
ephemeral loopback port and this server (``INVOICEFLOW_WORKER_METRICS_PORT``) answers a scrape with our
samples followed by the SDK's text. The two never share a name: ours start ``invoiceflow_``, the SDK's
``temporal_``."""

from __future__ import annotations

import logging
import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.registry import Collector
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from observability.metrics import CONTENT_TYPE_LATEST, exposition

log = logging.getLogger("invoiceflow.metrics")


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sdk_runtime(prometheus_address: str | None) -> Runtime:
    """A Temporal runtime whose core logs go through Python logging (so they are JSON and redacted like
    the rest) and, given an address, whose metrics are served there."""
    return Runtime(
        telemetry=TelemetryConfig(
            logging=LoggingConfig(
                filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
                forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
            ),
            metrics=PrometheusConfig(bind_address=prometheus_address) if prometheus_address else None,
        )
    )


class MetricsServer:
    """``GET /metrics`` on ``host:port`` (0: any free port, see ``.port``) in a daemon thread."""

    def __init__(
        self, host: str, port: int, *, sdk_url: str | None = None, collectors: tuple[Collector, ...] = ()
    ) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = server.scrape()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE_LATEST)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - scrapes are not news
                return

        self.sdk_url = sdk_url
        self.collectors = collectors
        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.host, self.port = host, int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="metrics", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def scrape(self) -> bytes:
        ours = exposition(*self.collectors)
        if not self.sdk_url:
            return ours
        try:
            with urllib.request.urlopen(self.sdk_url, timeout=3) as answer:  # noqa: S310 - our loopback
                sdk = answer.read()
        except OSError as exc:
            log.warning("Temporal SDK metrics unavailable: %s", exc)
            sdk = b""
        return ours + (b"" if ours.endswith(b"\n") else b"\n") + sdk

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
