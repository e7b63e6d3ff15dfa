"""The benchmark harness runs end to end with tiny numbers, so it cannot rot. (Figures are not
asserted: speed targets live in the benchmark, never in timed unit tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.timeout(600)  # the bench's own bound below: its reminder wave waits for a window to open
def test_bench_runs_and_writes_every_key(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--invoices",
            "3",
            "--parked",
            "12",
            "--wave-margin-s",
            "1",
            "--webhook-rate",
            "5",
            "--webhook-seconds",
            "1",
            "--webhook-runs",
            "2",
            "--sections",
            "throughput,pdf,parked,webhook,scale",
            "--scale-invoices",
            "2",
            "--json",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    throughput = results["throughput"]
    assert throughput["invoices"] == 3 and throughput["invoice_emails_accepted"] == 3
    # Every invoice and its payment reached the books once.
    assert (
        throughput["books_invoices"],
        throughput["books_payments"],
        throughput["books_duplicate_numbers"],
    ) == (3, 3, 0)
    assert throughput["request_to_email_p99_ms"] >= throughput["request_to_email_p50_ms"] > 0
    for key in ("invoices_per_s", "bare_wf_per_s", "ratio"):
        assert throughput[key] > 0
    # The bare baseline runs as many regular and local activities as the invoices' histories show.
    life, bare = throughput["per_invoice"], throughput["per_bare_wf"]
    assert life["local_activities"] > 0 and life["workflow_tasks"] > 0 and life["events"] > 0
    assert (bare["activities"], bare["local_activities"]) == (
        round(life["activities"]),
        round(life["local_activities"]),
    )
    # The books calls our client made per life, by operation: the invoice created, its payment recorded.
    calls = throughput["books_calls_per_life"]
    assert calls["POST invoice"] == 1 and calls["POST payment"] == 1, calls
    # Where a life waits, per activity type and for workflow tasks, as its histories show it.
    waits = throughput["life_waits"]
    assert {"render_invoice_pdf", "send_email", "sync_accounting", "workflow task"} <= set(waits), waits
    assert waits["send_email"]["count"] == 2 and waits["render_invoice_pdf"]["count"] == 1, waits
    assert all(w["ran_ms"] > 0 and w["queued_ms"] >= 0 for w in waits.values()), waits
    assert results["pdf"]["one_page_ms"] > 0 and results["pdf"]["ten_page_ms"] > results["pdf"]["one_page_ms"]
    parked = results["parked"]
    assert parked["invoices"] == 12 and parked["worker_rss_mb"] > 0 and parked["worker_rss_samples"]
    # 10 invoices park first to measure the rate; the other 2 get the wave's reminder, at the window start or
    # after.
    assert (
        parked["wave_invoices"] == 2
        and parked["wave_all_sent_after_s"] >= parked["wave_first_sent_after_s"] >= 0
    )
    # (A 1 s margin parks them too close to the wave to continue as new: test_parked_continue_as_new.)
    assert parked["history_events_at_park"] > 0 and parked["cpu_ms_per_reminder"]["worker"] > 0
    # The same life with 1, then 2 worker processes (2 API processes): the books hold each once.
    scale = results["scale"]
    assert [r["worker_processes"] for r in scale["runs"]] == [1, 2]
    for run in scale["runs"]:
        expected = run["books_expected"]
        assert expected == 2 + 2 * run["worker_processes"]  # 2 measured lives, 2 a worker to warm up
        assert (run["books_invoices"], run["books_payments"], run["books_duplicate_numbers"]) == (
            expected,
            expected,
            0,
        )
        assert len(run["cpu_ms_per_life_by_worker_process"]) == run["worker_processes"]
        assert run["lives_per_s"] > 0 and run["cpu_ms_per_life"]["worker"] > 0
    webhook = results["webhook"]
    assert webhook["measured"] is True and webhook["errors"] == 0
    assert webhook["runs"] == 2 and all(run["requests"] >= 5 for run in webhook["per_run"])
    assert all(run["p99_ms"] >= run["p50_ms"] > 0 for run in webhook["per_run"])
    assert webhook["p99_ms_max"] >= webhook["p99_ms_min"] > 0
    assert (webhook["lost"], webhook["duplicated"]) == (0, 0)
    for shares in [run["machine"] for run in webhook["per_run"]] + [
        throughput["machine_during_lives"],
        throughput["machine_during_bare"],
    ]:
        assert set(shares) == {"busy_pct", "steal_pct", "idle_pct"} and shares["busy_pct"] > 0, shares
        assert abs(sum(shares.values()) - 100) < 0.5, shares
