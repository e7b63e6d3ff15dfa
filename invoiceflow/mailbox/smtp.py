"""The dev mailbox's SMTP side: the aiosmtpd handler that stores messages (with a ``before_accept`` hook that
lets tests hold a message between the end of DATA and the ``250`` reply) and ``DevMailbox``, which runs
the SMTP server in its own thread and, optionally, the HTTP viewer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from invoiceflow.mailbox.store import ACCEPTED_REPLY, BeforeAccept, MailStore
from invoiceflow.mailbox.viewer import create_viewer_app, url_host

log = logging.getLogger("invoiceflow.mailbox")


class MailboxHandler:
    """aiosmtpd handler: stores each message in a :class:`MailStore`, and nothing else.

    The message is stored only inside ``handle_DATA``, i.e. after the client has sent the whole message
    and its terminating dot, and immediately before the ``250`` reply. ``before_accept`` (an async
    callable taking the envelope) runs first: it may wait (tests use it to hold the reply) and may
    return an SMTP reply string such as ``"451 Try again later"`` to refuse the message (nothing is
    stored). If the client disconnects while ``before_accept`` is waiting, aiosmtpd cancels the session
    task (``SMTP.eof_received``/``connection_lost`` call ``_handler_coroutine.cancel()``), the
    ``CancelledError`` propagates out of this coroutine and nothing is stored.
    """

    def __init__(self, store: MailStore, before_accept: BeforeAccept | None = None) -> None:
        self.store = store
        self.before_accept = before_accept

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.before_accept is not None:
            verdict = await self.before_accept(envelope)
            if verdict is not None:
                return verdict
        transport = server.transport
        if transport is None or transport.is_closing():
            # The client is gone (cancellation not delivered yet): nobody would read our 250.
            return "421 Connection lost before the message was accepted"
        content = envelope.original_content
        if content is None:
            content = envelope.content if isinstance(envelope.content, bytes) else b""
        stored = self.store.save(content, envelope.mail_from or "", list(envelope.rcpt_tos))
        log.info(
            "mailbox: stored %s from %s to %s: %r",
            stored.id,
            stored.mail_from,
            stored.rcpt_tos,
            stored.subject,
        )
        return ACCEPTED_REPLY


class AcceptGate:
    """A thread-safe ``before_accept`` hook: while the gate is held, messages wait before their ``250``.

    Usage in a test::

        gate = AcceptGate()
        gate.hold()
        with DevMailbox(tmp_path, before_accept=gate) as mb:
            ...                          # a client sends DATA; the server now waits at the gate
            gate.wait_for_waiting(1)     # the message reached the gate
            ...                          # drop the client connection
            gate.wait_for_abandoned(1)   # the server saw the drop; the message was discarded
            gate.release()

    ``reply`` (if set) is returned instead of accepting, e.g. ``"451 Try again later"``.
    """

    def __init__(self, *, held: bool = False, reply: str | None = None) -> None:
        self._cond = threading.Condition()
        self._held = held
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self.reply = reply
        self.arrived = 0  # calls so far
        self.waiting = 0  # currently waiting at the gate
        self.abandoned = 0  # cancelled (client gone) while waiting
        self.passed = 0  # went through

    @property
    def held(self) -> bool:
        return self._held

    def hold(self) -> None:
        with self._cond:
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            waiters = list(self._waiters)
            self._waiters.clear()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(_resolve, future)

    async def __call__(self, envelope: Envelope) -> str | None:
        loop = asyncio.get_running_loop()
        with self._cond:
            self.arrived += 1
            if not self._held:
                self.passed += 1
                self._cond.notify_all()
                return self.reply
            future: asyncio.Future[None] = loop.create_future()
            waiter = (loop, future)
            self._waiters.add(waiter)
            self.waiting += 1
            self._cond.notify_all()
        try:
            await future
        except asyncio.CancelledError:
            with self._cond:
                self._waiters.discard(waiter)
                self.waiting -= 1
                self.abandoned += 1
                self._cond.notify_all()
            raise
        with self._cond:
            self.waiting -= 1
            self.passed += 1
            self._cond.notify_all()
        return self.reply

    def _wait(self, predicate: Callable[[], bool], what: str, timeout: float) -> None:
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(
                    f"AcceptGate: {what} not reached within {timeout}s (arrived={self.arrived}, "
                    f"waiting={self.waiting}, abandoned={self.abandoned}, passed={self.passed})"
                )

    def wait_for_waiting(self, count: int = 1, timeout: float = 10.0) -> None:
        self._wait(lambda: self.waiting >= count, f"{count} waiting", timeout)

    def wait_for_abandoned(self, count: int = 1, timeout: float = 10.0) -> None:
        self._wait(lambda: self.abandoned >= count, f"{count} abandoned", timeout)

    def wait_for_passed(self, count: int = 1, timeout: float = 10.0) -> None:
        self._wait(lambda: self.passed >= count, f"{count} passed", timeout)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    return AuthResult(success=True)


class _MailboxController(Controller):
    """aiosmtpd Controller that can bind port 0 and report the port it got."""

    async def _bind(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = server.sockets[0].getsockname()[1]
        return server

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._bind()


# --------------------------------------------------------------------------------------------------
# DevMailbox: SMTP server (+ optional viewer) in background threads
# --------------------------------------------------------------------------------------------------


class DevMailbox:
    """SMTP server storing into ``MailStore(store_dir)`` and optionally the HTTP viewer.

    ``smtp_port=0`` (the default) picks a free port; read it from ``.smtp_port`` after ``start()``.
    ``http_port=None`` (the default) runs no viewer; ``0`` picks a free port (``.http_port``,
    ``.http_url``). Both run in daemon threads; use as a context manager or call ``start()``/``stop()``.
    Any SMTP AUTH login is accepted (no TLS), so a client configured with credentials works too.
    """

    def __init__(
        self,
        store_dir: Path | str,
        *,
        smtp_port: int = 0,
        host: str = "127.0.0.1",
        http_port: int | None = None,
        before_accept: BeforeAccept | None = None,
    ) -> None:
        self.store = MailStore(store_dir)
        self.host = host
        self.handler = MailboxHandler(self.store, before_accept=before_accept)
        self._requested_smtp_port = smtp_port
        self._requested_http_port = http_port
        self._controller: _MailboxController | None = None
        self._http_server: Any = None
        self._http_thread: threading.Thread | None = None
        self.smtp_port: int | None = None
        self.http_port: int | None = None

    @property
    def http_url(self) -> str | None:
        if self.http_port is None:
            return None
        return f"http://{url_host(self.host)}:{self.http_port}"

    def start(self) -> DevMailbox:
        if self._controller is not None:
            raise RuntimeError("DevMailbox already started")
        controller = _MailboxController(
            self.handler,
            hostname=self.host,
            port=self._requested_smtp_port,
            server_hostname="invoiceflow-mailbox",
            ident="invoiceflow dev mailbox",
            auth_require_tls=False,
            authenticator=_accept_any_login,
        )
        controller.start()
        self._controller = controller
        self.smtp_port = controller.port
        try:
            if self._requested_http_port is not None:
                self._start_http(self._requested_http_port)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_http(self, port: int) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, port))
            sock.listen(128)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self.http_port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_viewer_app(self.store, smtp_hint=self.smtp_port),
            # Leave the process's logging configuration alone (the API may run in this process too).
            log_config=None,
            log_level=None,
            lifespan="off",
            access_log=False,
        )
        server = uvicorn.Server(config)
        self._http_server = server
        failure: list[BaseException] = []

        def serve() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as error:  # noqa: BLE001 - reported to start()
                failure.append(error)
            finally:
                sock.close()

        thread = threading.Thread(target=serve, name="invoiceflow-mailbox-http", daemon=True)
        thread.start()
        self._http_thread = thread
        deadline = time.monotonic() + 10
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"mailbox viewer failed to start: {failure[0] if failure else 'exited'}")
            if time.monotonic() > deadline:
                raise TimeoutError("mailbox viewer did not start within 10s")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._http_server is not None:
            self._http_server.should_exit = True
            if self._http_thread is not None:
                self._http_thread.join(timeout=10)
            self._http_server = None
            self._http_thread = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> DevMailbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
