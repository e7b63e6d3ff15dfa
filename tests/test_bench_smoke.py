"""The benchmark harness runs end to end with tiny numbers, so it cannot rot. (Figures are not
asserted: speed targets live in the benchmark, never in timed unit tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_runs_and_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--invoices", "3", "--parked", "3", "--webhook-rate", "5", "--webhook-seconds", "1",
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["throughput"]["invoices"] == 3 and results["throughput"]["emails_accepted"] == 6  # invoice + receipt each
    for key in ("invoices_per_s", "bare_wf_per_s", "ratio"):
        assert results["throughput"][key] > 0
    assert results["pdf"]["one_page_ms"] > 0 and results["pdf"]["ten_page_ms"] > results["pdf"]["one_page_ms"]
    assert results["parked"]["invoices"] == 3 and results["parked"]["worker_rss_mb"] > 0
    webhook = results["webhook"]
    assert webhook["measured"] is True and webhook["requests"] >= 5 and webhook["errors"] == 0
    assert (webhook["lost"], webhook["duplicated"]) == (0, 0) and webhook["p99_ms"] >= webhook["p50_ms"] > 0
