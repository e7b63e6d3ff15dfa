"""A process of its own for the native e-invoice steps: saxonche (the official rules) and pikepdf (the
PDF/A-3 file). A crash in either (a segfault, an abort in native code) kills a child process, never
the worker or the API; the call then raises ``BrokenProcessPool``, the pool starts a new child for
the next call, and the activity's retry policy retries.

Children are spawned (not forked: the worker is threaded), ignore Ctrl-C and exit with their parent
(``documents.rendering.render_process_init``). Each compiles a rule set on its first use and keeps
it, so only the first validation in a child pays the compile (about half a second per rule set).
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from documents.rendering import render_process_init

log = logging.getLogger("invoiceflow.einvoice")
T = TypeVar("T")


class EInvoicePool:
    """``processes`` children (0: run on the calling thread, for tests of the pure steps)."""

    def __init__(self, processes: int = 1) -> None:
        if processes < 0:
            raise ValueError(f"processes must be 0 or more, got {processes}")
        self.processes = processes
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a child; ``fn`` and its arguments must pickle (module-level, plain data)."""
        if self.processes == 0:
            return fn(*args)
        executor = self._running_executor()
        try:
            return executor.submit(fn, *args).result()
        except BrokenProcessPool:
            log.warning("an e-invoice process died; the next call starts a new one")
            with self._lock:
                if self._executor is executor:
                    self._executor = None
            executor.shutdown(wait=False, cancel_futures=True)
            raise

    def pids(self) -> list[int]:
        processes = getattr(self._executor, "_processes", None) or {}
        return [p.pid for p in list(processes.values()) if p.pid is not None]

    def shutdown(self, *, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=True)

    def _running_executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the e-invoice pool is shut down")
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=self.processes,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=render_process_init,
                )
            return self._executor


_shared: EInvoicePool | None = None
_shared_lock = threading.Lock()


def shared_pool(processes: int = 1) -> EInvoicePool:
    """One pool per process (the worker's activities and the API's downloads use the same one); it
    stops when the process exits."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = EInvoicePool(processes)
            atexit.register(_shared.shutdown, wait=False)
        return _shared
