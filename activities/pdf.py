"""Render an invoice PDF and store it; the workflow gets a key, never the bytes (2 MB payload limit).

A sync activity on the worker's thread pool, never on the event loop. The render itself, pure Python and
CPU-bound, runs in a ``RenderPool`` of processes: xhtml2pdf renders one document at a time per process
(a process-wide lock), and a render on a thread would also hold the GIL the workflows need. Re-rendering
on retry overwrites the same key, so the activity is idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from temporalio import activity

from activities.invoices import non_retryable
from core.settings import Settings
from documents.builders import invoice_document
from documents.rendering import (
    InvoiceDocument,
    render_invoice_pdf,
    render_invoice_pdf_from_dict,
    render_process_init,
)
from observability.metrics import RENDER_SECONDS, timed
from persistence import invoices as repo
from persistence.db import session_scope
from persistence.models import Document, Invoice
from workflows.payloads import ActivityName, RenderedPdf, RenderRequest

log = logging.getLogger("invoiceflow.pdf")


def render_and_store(
    url: str,
    pool: RenderPool,
    settings: Settings,
    load: Callable[[Session], tuple[InvoiceDocument, str]],
    record: Callable[[Session, str], None],
) -> RenderedPdf:
    """Read what to render (``load``: the document and its storage key), render it outside any
    transaction (the slow part, needing no lock), then store the PDF under its key and let ``record``
    note the key on its owner. The same key and content on a retry: storing is idempotent."""
    try:
        with session_scope(url) as session:
            document, key = load(session)
    except repo.InvoiceNotFound as exc:
        raise non_retryable(exc) from exc
    content = timed(RENDER_SECONDS, pool.render, document, settings.template_dir)
    with session_scope(url) as session:
        digest = store_document(session, key, content, "application/pdf")
        record(session, key)
    return RenderedPdf(key=key, sha256=digest, size=len(content))


class RenderPool:
    """Invoice PDFs rendered in up to ``processes`` worker processes; ``processes=0`` renders on the
    calling thread (one render at a time per process, as xhtml2pdf allows).

    The processes start on first use, not with the worker (tests and workers that render nothing pay
    nothing), from a forkserver that has the renderer imported, so a new one is a cheap fork (spawn where
    forkserver does not exist). They get plain data (``InvoiceDocument.to_dict()``, the template folder as
    a string) and return bytes. ``shutdown`` stops them; a process whose worker died exits by itself
    (``render_process_init``). A render process that dies breaks the whole executor: it is replaced for
    the next render and the failed render raises ``BrokenProcessPool``, which the activity's retry
    policy retries. As with any multiprocessing, a render process imports the main module of the
    process that started it: entry points keep their ``if __name__ == "__main__"`` guard.
    """

    def __init__(self, processes: int) -> None:
        if processes < 0:
            raise ValueError(f"processes must be 0 or more, got {processes}")
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def render(self, document: InvoiceDocument, template_dir: Path | str | None = None) -> bytes:
        if self.processes == 0:
            return render_invoice_pdf(document, Path(template_dir) if template_dir else None)
        executor = self._running_executor()
        folder = str(template_dir) if template_dir else None
        try:
            return executor.submit(render_invoice_pdf_from_dict, document.to_dict(), folder).result()
        except BrokenProcessPool:  # from submit() or result(): a process died, now or earlier
            log.warning("a PDF render process died; the next render starts new ones")
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            raise

    def pids(self) -> list[int]:
        """Process ids of the render processes running now (for the benchmark and tests)."""
        executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return [process.pid for process in list(processes.values()) if process.pid is not None]

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the render processes (after their current render); later renders raise. Idempotent."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    def _running_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the PDF render pool is shut down")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes, mp_context=_render_context(), initializer=render_process_init
                )
            return self._executor


def _render_context() -> multiprocessing.context.BaseContext:
    """forkserver with the renderer preloaded: no fork of a threaded worker (unsafe), no fresh interpreter
    importing xhtml2pdf for every process (slow); spawn where there is no forkserver (Windows)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # The renderer and the libraries it imports on first use, so that a render process starts warm.
    context.set_forkserver_preload(
        [
            "documents.rendering",
            "xhtml2pdf.pisa",
            "xhtml2pdf.config.resources",
            "pypdf",
            "documents.css_cache",
            "documents.page_count",
        ]
    )
    return context


def pdf_key(invoice: Invoice) -> str:
    return f"invoices/{invoice.id}/{invoice.number or 'draft'}.pdf"


def store_document(session, key: str, content: bytes, content_type: str) -> str:  # type: ignore[no-untyped-def]
    digest = hashlib.sha256(content).hexdigest()
    stmt = insert(Document).values(key=key, content=content, content_type=content_type, sha256=digest)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"content": content, "sha256": digest, "content_type": content_type}
        )
    )
    return digest


class PdfActivities:
    def __init__(self, settings: Settings, render_pool: RenderPool | None = None) -> None:
        """``render_pool`` None renders on the activity's thread; the worker passes its pool."""
        self._settings = settings
        self._url = settings.require_database_url()
        self._pool = render_pool if render_pool is not None else RenderPool(0)

    @activity.defn(name=ActivityName.RENDER_INVOICE_PDF)
    def render_invoice_pdf(self, request: RenderRequest) -> RenderedPdf:
        invoice_id = uuid.UUID(request.invoice_id)

        def load(session: Session) -> tuple[InvoiceDocument, str]:
            invoice = repo.get_invoice(session, invoice_id)
            return invoice_document(invoice, self._settings), pdf_key(invoice)

        def record(session: Session, key: str) -> None:
            # One UPDATE, not the invoice with its customer, lines and payments loaded to set one column.
            done = session.execute(update(Invoice).where(Invoice.id == invoice_id).values(pdf_key=key))
            assert done.rowcount == 1  # type: ignore[attr-defined]

        return render_and_store(self._url, self._pool, self._settings, load, record)
