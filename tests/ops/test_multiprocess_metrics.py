"""Several processes serving one port (uvicorn --workers): with PROMETHEUS_MULTIPROC_DIR set, a scrape
of any of them shows the samples of all (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

INCREMENT = (
    "from observability import metrics; metrics.INVOICES_ISSUED.inc(); "
    "metrics.HTTP_REQUESTS.labels('GET', '/invoices', '200').inc(3)"
)
SCRAPE = "import sys; from observability import metrics; sys.stdout.write(metrics.exposition().decode())"


def test_a_scrape_merges_every_process(tmp_path: Path) -> None:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    for _ in range(2):
        subprocess.run([sys.executable, "-c", INCREMENT], env=env, check=True, timeout=60)
    text = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("invoiceflow_invoices_issued_total", ())] == 2
    route = (("method", "GET"), ("route", "/invoices"), ("status", "200"))
    assert samples[("invoiceflow_http_requests_total", route)] == 6
