"""The PDF render pool: renders in other processes what the renderer renders in this one, starts nothing
until asked, stops with its owner, recovers from a dead process, and leaves no process behind when the
worker that owns it is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from activities.pdf import RenderPool
from documents.rendering import InvoiceDocument, Party, render_invoice_pdf, render_invoice_pdf_from_dict
from tests.documents.samples import NUMBER, document, page_texts, text

ROOT = Path(__file__).resolve().parents[2]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_until_gone(pids: list[int], within_s: float = 60.0) -> list[int]:
    """The pids still alive after up to ``within_s`` (a liveness bound, not a speed assertion)."""
    deadline = time.monotonic() + within_s
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


@pytest.fixture
def pool() -> Iterator[RenderPool]:
    pool = RenderPool(2)
    yield pool
    pool.shutdown()


def test_a_document_survives_the_trip_as_plain_data() -> None:
    doc = document(lines=2, customer=Party(name="Łukasz & <Sons>", address="a\nb"), status_stamp="PAID")
    data = doc.to_dict()
    assert InvoiceDocument.from_dict(data) == doc
    assert page_texts(render_invoice_pdf_from_dict(data, None)) == page_texts(render_invoice_pdf(doc))


def test_pool_renders_what_the_renderer_renders(pool: RenderPool) -> None:
    for doc in (document(), document(lines=60)):
        assert page_texts(pool.render(doc)) == page_texts(render_invoice_pdf(doc))


def test_pool_uses_the_template_folder(pool: RenderPool, tmp_path: Path) -> None:
    (tmp_path / "invoice.html").write_text("<html><body><p>Pooled {{ doc.number }}</p></body></html>")
    assert f"Pooled {NUMBER}" in text(pool.render(document(), tmp_path))


def test_concurrent_renders_in_the_pool_do_not_mix(pool: RenderPool) -> None:
    docs = [
        replace(document(lines=4), number=f"INV-P-{i}", customer=Party(name=f"Customer {i}"))
        for i in range(6)
    ]
    with ThreadPoolExecutor(max_workers=4) as threads:
        pdfs = list(threads.map(pool.render, docs))
    for i, pdf in enumerate(pdfs):
        content = text(pdf)
        assert f"INV-P-{i}" in content and f"Customer {i}" in content
        assert not any(f"INV-P-{j}" in content for j in range(6) if j != i)
    assert 1 <= len(pool.pids()) <= 2
    assert os.getpid() not in pool.pids()


def test_render_errors_come_back_as_render_errors(pool: RenderPool, tmp_path: Path) -> None:
    from documents.rendering import RenderError

    (tmp_path / "invoice.html").write_text("<p>{{ doc.totl }}</p>")
    with pytest.raises(RenderError, match="totl"):
        pool.render(document(), tmp_path)
    assert NUMBER in text(pool.render(document()))  # the process is still fine


def test_no_process_starts_before_the_first_render() -> None:
    pool = RenderPool(2)
    try:
        assert pool.pids() == []
        pool.render(document())
        assert len(pool.pids()) == 1  # one render needed one process
    finally:
        pool.shutdown()


def test_zero_processes_render_on_the_calling_thread() -> None:
    pool = RenderPool(0)
    assert NUMBER in text(pool.render(document()))
    assert pool.pids() == []


def test_shutdown_stops_the_processes_and_later_renders_fail(pool: RenderPool) -> None:
    list(ThreadPoolExecutor(2).map(pool.render, [document(), document()]))
    pids = pool.pids()
    assert pids and all(alive(pid) for pid in pids)
    pool.shutdown()
    assert [pid for pid in pids if alive(pid)] == []  # shutdown waits for them
    assert pool.pids() == []
    with pytest.raises(RuntimeError, match="shut down"):
        pool.render(document())
    pool.shutdown()  # idempotent


def test_a_dead_render_process_is_replaced(pool: RenderPool) -> None:
    pool.render(document())
    [pid] = pool.pids()
    os.kill(pid, signal.SIGKILL)
    assert wait_until_gone([pid]) == []
    outcomes: list[str] = []
    for _ in range(3):
        try:
            outcomes.append(text(pool.render(document())))
        except BrokenProcessPool:
            outcomes.append("broken")
    # The render that finds the pool broken may fail (and is retried by Temporal); later ones work.
    assert outcomes.count("broken") <= 1 and NUMBER in outcomes[-1], outcomes
    assert pid not in pool.pids()


KILLED_WORKER = """
import os, signal, sys
from concurrent.futures import ThreadPoolExecutor
from activities.pdf import RenderPool
from tests.documents.samples import document

if __name__ == "__main__":
    pool = RenderPool(2)
    with ThreadPoolExecutor(2) as threads:
        list(threads.map(pool.render, [document(), document()]))
    print(" ".join(map(str, pool.pids())), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no shutdown, no atexit: as the OOM killer would
"""


def test_render_processes_exit_when_their_worker_is_killed(tmp_path: Path) -> None:
    script, out, err = tmp_path / "killed_worker.py", tmp_path / "out.txt", tmp_path / "err.txt"
    script.write_text(KILLED_WORKER)
    # Files, not pipes: a process that outlives the script would hold a pipe open and hang run().
    with out.open("w") as stdout, err.open("w") as stderr:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=stdout,
            stderr=stderr,
            timeout=120,
        )
    assert done.returncode == -signal.SIGKILL, err.read_text()[-2000:]
    pids = [int(pid) for pid in out.read_text().split()]
    assert len(pids) == 2, err.read_text()[-2000:]
    left = wait_until_gone(pids)
    for pid in left:  # do not leave them running for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"render processes outlived their worker: {left}"


async def test_worker_starts_render_processes_only_when_rendering_and_stops_them(
    temporal_env, make_settings
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from worker import build_worker

    settings = make_settings(temporal_env.client, render_processes=2)
    async with build_worker(temporal_env.client, settings) as worker:
        assert worker.render_pool.processes == 2
        assert worker.render_pool.pids() == []  # a worker that renders nothing starts nothing
        assert NUMBER in text(await asyncio.to_thread(worker.render_pool.render, document()))
        pids = worker.render_pool.pids()
        assert pids
    assert [pid for pid in pids if alive(pid)] == []  # stopped with the worker, not some time later
    with pytest.raises(RuntimeError, match="shut down"):
        worker.render_pool.render(document())
