"""A small, real development mailbox (in the spirit of Mailpit), in Python.

* :class:`MailStore` keeps every accepted message as one ``.eml`` file in a directory.
* :class:`MailboxHandler` is the aiosmtpd handler that stores messages, with an optional
  ``before_accept`` hook that lets tests hold a message between the end of DATA and the ``250`` reply.
* :class:`DevMailbox` runs the SMTP server (aiosmtpd ``Controller`` in its own thread) and, optionally,
  the HTTP viewer; it is what the test suite and ``invoiceflow dev`` use.
* :func:`create_viewer_app` is the FastAPI viewer (HTML pages and a small JSON API).
* :func:`run_mailbox` runs SMTP and the viewer in the foreground until SIGINT/SIGTERM
  (``invoiceflow mailbox``).

Storage format: ``<YYYYmmddTHHMMSS.ffffffZ>-<uuid hex>.eml`` (the file name without ``.eml`` is the
message id; names sort by arrival). The file is the message exactly as received over SMTP, preceded by
two header lines recording the SMTP envelope::

    X-Invoiceflow-Envelope-From: <billing@example.com>
    X-Invoiceflow-Envelope-To: <client@example.com>, <bcc@example.com>

(addresses are percent-encoded where they contain characters outside the usual address set), so the
file still opens in any mail client. Files are written to a temporary name and renamed into place, so a
reader never sees a partial message.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import logging
import mimetypes
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import DictLoader, Environment, select_autoescape

__all__ = [
    "AcceptGate",
    "Attachment",
    "DevMailbox",
    "MailStore",
    "MailboxHandler",
    "MessageNotFound",
    "StoredMessage",
    "create_viewer_app",
    "run_mailbox",
]

log = logging.getLogger(__name__)

ENVELOPE_FROM_HEADER = "X-Invoiceflow-Envelope-From"
ENVELOPE_TO_HEADER = "X-Invoiceflow-Envelope-To"
ACCEPTED_REPLY = "250 Message accepted for delivery"

_ID_RE = re.compile(r"^(\d{8}T\d{6}\.\d{6})Z-[0-9a-f]{32}$")
_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%f"
_ENVELOPE_RE = re.compile(
    rb"\A"
    + ENVELOPE_FROM_HEADER.encode()
    + rb": ?([^\r\n]*)\r?\n"
    + ENVELOPE_TO_HEADER.encode()
    + rb": ?([^\r\n]*)\r?\n"
)
_PATH_RE = re.compile(r"<([^<>]*)>")
# Characters left as they are in the envelope headers; everything else (%, <, >, comma, space, quotes,
# non-ASCII, ...) is percent-encoded so the two lines always parse back to the exact addresses.
_ADDRESS_SAFE = "!#$&'*+-./=?@^_`{|}~"
_CONTENT_TYPE_RE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")

_clock_lock = threading.Lock()
_last_stamp_us = 0


def _next_timestamp() -> datetime:
    """Current UTC time, strictly increasing within the process (so ids sort in arrival order)."""
    global _last_stamp_us
    with _clock_lock:
        now_us = time.time_ns() // 1000
        if now_us <= _last_stamp_us:
            now_us = _last_stamp_us + 1
        _last_stamp_us = now_us
    return datetime.fromtimestamp(now_us // 1_000_000, UTC).replace(microsecond=now_us % 1_000_000)


def _encode_path(address: str) -> str:
    return "<" + quote(address, safe=_ADDRESS_SAFE) + ">"


def _decode_paths(value: bytes) -> list[str]:
    return [unquote(match) for match in _PATH_RE.findall(value.decode("ascii", "replace"))]


# --------------------------------------------------------------------------------------------------
# Stored messages
# --------------------------------------------------------------------------------------------------


class MessageNotFound(KeyError):
    """No message with that id in the store (or the id is not a valid message id)."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes = field(repr=False)
    content_id: str | None = None

    @property
    def size(self) -> int:
        return len(self.payload)


@dataclass(eq=False)
class StoredMessage:
    """One message in a :class:`MailStore`.

    ``id`` is the store's id (the file name without ``.eml``); ``message_id`` is the Message-ID header
    (with its angle brackets), ``mail_from``/``rcpt_tos`` the SMTP envelope, ``raw`` the message exactly
    as the client sent it and ``message`` its parse (``email.policy.default``).
    """

    id: str
    received_at: datetime
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    message_id: str | None
    path: Path
    raw: bytes = field(repr=False)
    message: EmailMessage = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StoredMessage) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def size(self) -> int:
        return len(self.raw)

    def header(self, name: str) -> str | None:
        """A header's decoded value (``None`` if absent or unparseable)."""
        try:
            value = self.message[name]
        except Exception:  # malformed header: the email package can raise while parsing it
            return None
        # Unfold: a long header folded right after its name keeps the fold's leading space otherwise.
        return None if value is None else str(value).strip()

    def attachments(self) -> list[Attachment]:
        """Every part that is not the displayed text/HTML body, in document order."""
        parts = _attachment_parts(self.message)
        return [_attachment_from_part(part, index) for index, part in enumerate(parts)]

    def text_body(self) -> str | None:
        """The text/plain body (line endings normalised to \\n), or None."""
        return _body_text(self.message, "plain")

    def html_body(self) -> str | None:
        """The text/html body (line endings normalised to \\n), or None."""
        return _body_text(self.message, "html")


def _parse_file(path: Path, data: bytes) -> StoredMessage:
    stored_id = path.name[: -len(".eml")]
    match = _ENVELOPE_RE.match(data)
    if match:
        senders = _decode_paths(match.group(1))
        mail_from = senders[0] if senders else ""
        rcpt_tos = _decode_paths(match.group(2))
        raw = data[match.end() :]
    else:  # a foreign .eml dropped into the folder: no envelope recorded
        mail_from, rcpt_tos, raw = "", [], data
    parser = BytesParser(policy=email.policy.default)
    parsed: EmailMessage = parser.parsebytes(raw)  # type: ignore[assignment]
    stamp = _ID_RE.match(stored_id)
    received_at = (
        datetime.strptime(stamp.group(1), _TIMESTAMP_FORMAT).replace(tzinfo=UTC)
        if stamp
        else datetime.fromtimestamp(path.stat().st_mtime, UTC)
    )
    stored = StoredMessage(
        id=stored_id,
        received_at=received_at,
        mail_from=mail_from,
        rcpt_tos=rcpt_tos,
        subject="",
        message_id=None,
        path=path,
        raw=raw,
        message=parsed,
    )
    stored.subject = stored.header("Subject") or ""
    mid = stored.header("Message-ID")
    stored.message_id = mid.strip() if mid else None
    return stored


def _body_parts(message: EmailMessage) -> set[int]:
    ids = set()
    for kind in ("plain", "html"):
        try:
            body = message.get_body(preferencelist=(kind,))
        except Exception:
            body = None
        if body is not None and body.get_content_type() == f"text/{kind}":
            ids.add(id(body))
    return ids


def _attachment_parts(message: EmailMessage) -> Iterator[Message]:
    bodies = _body_parts(message)

    def walk(part: Message) -> Iterator[Message]:
        if part.get_content_type() == "message/rfc822" and part is not message:
            yield part  # an attached e-mail is one attachment; don't list its insides
        elif part.is_multipart():
            for sub in part.get_payload():  # type: ignore[union-attr]
                yield from walk(sub)
        elif id(part) not in bodies:
            yield part

    yield from walk(message)


def _attachment_from_part(part: Message, index: int) -> Attachment:
    content_type = part.get_content_type()
    if not _CONTENT_TYPE_RE.match(content_type):
        content_type = "application/octet-stream"
    if content_type == "message/rfc822":
        inner = part.get_payload()
        inner_message = inner[0] if isinstance(inner, list) and inner else None
        payload = inner_message.as_bytes() if inner_message is not None else b""
    else:
        payload = part.get_payload(decode=True) or b""
    try:
        filename = part.get_filename()
    except Exception:
        filename = None
    if not filename:
        extension = mimetypes.guess_extension(content_type) or ".bin"
        if content_type == "message/rfc822":
            extension = ".eml"
        filename = f"part-{index + 1}{extension}"
    content_id = part.get("Content-ID")
    return Attachment(
        filename=str(filename),
        content_type=content_type,
        payload=payload,
        content_id=str(content_id).strip().strip("<>") if content_id else None,
    )


def _body_text(message: EmailMessage, kind: str) -> str | None:
    try:
        part = message.get_body(preferencelist=(kind,))
    except Exception:
        return None
    if part is None or part.get_content_type() != f"text/{kind}":
        return None
    try:
        text = part.get_content()
    except Exception:  # unknown charset, broken transfer encoding...
        payload = part.get_payload(decode=True) or b""
        text = payload.decode("utf-8", "replace")
    return text.replace("\r\n", "\n")  # SMTP line endings -> Python's


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class MailStore:
    """Messages as ``.eml`` files in ``directory`` (created if needed). Safe to use from several threads."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"MailStore({str(self.directory)!r})"

    def save(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> StoredMessage:
        """Store one message atomically (temporary file, fsync, rename) and return it."""
        received_at = _next_timestamp()
        stored_id = f"{received_at.strftime(_TIMESTAMP_FORMAT)}Z-{uuid.uuid4().hex}"
        envelope = (
            f"{ENVELOPE_FROM_HEADER}: {_encode_path(mail_from)}\r\n"
            f"{ENVELOPE_TO_HEADER}: {', '.join(_encode_path(rcpt) for rcpt in rcpt_tos)}\r\n"
        ).encode("ascii")
        data = envelope + bytes(raw)
        final = self.directory / f"{stored_id}.eml"
        tmp = self.directory / f".{stored_id}.eml.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable (best effort)
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return _parse_file(final, data)

    def _paths(self) -> list[Path]:
        return sorted(self.directory.glob("*.eml"), key=lambda path: path.name)

    def list(self) -> list[StoredMessage]:
        """All messages, oldest first (newest last)."""
        messages = []
        for path in self._paths():
            try:
                messages.append(_parse_file(path, path.read_bytes()))
            except FileNotFoundError:  # deleted meanwhile
                continue
        return messages

    def get(self, id: str) -> StoredMessage:  # noqa: A002 - the store's own word for it
        """The message with this store id; ``MessageNotFound`` (a ``KeyError``) if there is none."""
        if not _ID_RE.match(id):
            raise MessageNotFound(id)
        path = self.directory / f"{id}.eml"
        try:
            return _parse_file(path, path.read_bytes())
        except FileNotFoundError:
            raise MessageNotFound(id) from None

    def delete(self, id: str) -> None:  # noqa: A002
        if not _ID_RE.match(id):
            raise MessageNotFound(id)
        try:
            (self.directory / f"{id}.eml").unlink()
        except FileNotFoundError:
            raise MessageNotFound(id) from None

    def clear(self) -> int:
        """Delete every message; returns how many were deleted."""
        deleted = 0
        for path in self._paths():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                deleted += 1
        for leftover in self.directory.glob(".*.eml.tmp"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
        return deleted

    def __len__(self) -> int:
        return len(self._paths())

    def wait_for(
        self,
        count: int = 1,
        *,
        timeout: float = 10.0,
        where: Callable[[StoredMessage], bool] | None = None,
        interval: float = 0.05,
    ) -> list[StoredMessage]:
        """Poll until at least ``count`` messages (matching ``where``, if given) are stored; return them.

        Raises ``TimeoutError`` with what *is* there if that does not happen within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = [message for message in self.list() if where is None or where(message)]
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                subjects = [message.subject for message in found]
                raise TimeoutError(
                    f"expected {count} message(s) in {self.directory} within {timeout}s, found "
                    f"{len(found)}: {subjects!r}"
                )
            time.sleep(interval)


# --------------------------------------------------------------------------------------------------
# SMTP side
# --------------------------------------------------------------------------------------------------

BeforeAccept = Callable[[Envelope], Awaitable[str | None]]


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
        return f"http://{_url_host(self.host)}:{self.http_port}"

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


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


# --------------------------------------------------------------------------------------------------
# HTTP viewer
# --------------------------------------------------------------------------------------------------

_PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-src 'self'; "
    "frame-ancestors 'none'; form-action 'none'; base-uri 'none'"
)
# For the message's own HTML: no scripts, no network except our own attachment URLs (cid: images),
# unique origin (sandbox), only embeddable by the viewer.
_MESSAGE_HTML_CSP = (
    "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)
_DOWNLOAD_CSP = "default-src 'none'; sandbox"

_TEMPLATES = {
    "base.html": """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{% block title %}Mailbox{% endblock %} · invoiceflow</title>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 0; color: #1d2330; background: #f6f7f9; }
  header { background: #1d2330; color: #fff; padding: .7rem 1.2rem; }
  header a { color: #fff; text-decoration: none; font-weight: 600; }
  header span { color: #aab2c0; margin-left: .8rem; }
  main { padding: 1.2rem; max-width: 1200px; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
  th { background: #eef0f3; font-weight: 600; white-space: nowrap; }
  td.time { white-space: nowrap; color: #5b6472; }
  .muted { color: #5b6472; }
  .meta th { width: 11rem; background: #fff; color: #5b6472; font-weight: 500; }
  pre { background: #fff; border: 1px solid #e3e6eb; padding: .8rem; white-space: pre-wrap;
        word-break: break-word; }
  iframe { width: 100%; height: 32rem; border: 1px solid #e3e6eb; background: #fff; }
  ul.attachments { padding-left: 1.2rem; }
  nav a { margin-right: 1rem; }
  h1 { font-size: 1.3rem; margin: 0 0 .8rem; word-break: break-word; }
  h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
</style>
</head>
<body>
<header><a href="/">invoiceflow mailbox</a><span>{{ store_dir }}</span></header>
<main>
{% block content %}{% endblock %}
</main>
</body>
</html>
""",
    "list.html": """{% extends "base.html" %}
{% block content %}
<h1>{{ messages|length }} message{{ "" if messages|length == 1 else "s" }}</h1>
{% if messages %}
<table>
<thead><tr><th>Received (UTC)</th><th>From</th><th>To</th><th>Subject</th><th>Attachments</th></tr></thead>
<tbody>
{% for m in messages %}
<tr>
  <td class="time">{{ m.received }}</td>
  <td>{{ m.from_ }}</td>
  <td>{{ m.to|join(", ") }}</td>
  <td><a href="/messages/{{ m.id }}">{{ m.subject or "(no subject)" }}</a></td>
  <td>{% for a in m.attachments %}{{ a.filename }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% else %}
<p class="muted">No messages yet.{% if smtp_hint %} Send mail to SMTP port {{ smtp_hint }}.{% endif %}</p>
{% endif %}
{% endblock %}
""",
    "message.html": """{% extends "base.html" %}
{% block title %}{{ subject or "(no subject)" }}{% endblock %}
{% block content %}
<nav><a href="/">&larr; All messages</a><a href="/messages/{{ id }}/raw">Raw source</a></nav>
<h1>{{ subject or "(no subject)" }}</h1>
<table class="meta">
{% for name, value in summary %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>
{% endfor %}
</table>
{% if attachments %}
<h2>Attachments</h2>
<ul class="attachments">
{% for a in attachments %}
<li><a href="/messages/{{ id }}/attachments/{{ loop.index0 }}">{{ a.filename }}</a>
  <span class="muted">{{ a.content_type }}, {{ a.size }} bytes</span></li>
{% endfor %}
</ul>
{% endif %}
{% if has_html %}
<h2>HTML</h2>
<iframe sandbox title="HTML body" src="/messages/{{ id }}/html"></iframe>
{% endif %}
{% if text is not none %}
<h2>Text</h2>
<pre>{{ text }}</pre>
{% endif %}
<h2>Headers</h2>
<table class="meta">
{% for name, value in headers %}<tr><th>{{ name }}</th><td>{{ value }}</td></tr>
{% endfor %}
</table>
{% endblock %}
""",
}


def _attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {"filename": attachment.filename, "content_type": attachment.content_type, "size": attachment.size}


def _message_json(message: StoredMessage) -> dict[str, Any]:
    return {
        "id": message.id,
        "received_at": message.received_at.isoformat(),
        "from": message.mail_from,
        "to": list(message.rcpt_tos),
        "subject": message.subject,
        "message_id": message.message_id,
        "header_from": message.header("From"),
        "header_to": message.header("To"),
        "size": message.size,
        "attachments": [_attachment_json(attachment) for attachment in message.attachments()],
    }


def _display(raw_value: str) -> str:
    """A header as written (no address re-formatting), with RFC 2047 encoded-words decoded, unfolded."""
    try:
        value = str(make_header(decode_header(str(raw_value))))
    except Exception:
        value = str(raw_value)
    return " ".join(value.split())


def _headers(message: StoredMessage) -> list[tuple[str, str]]:
    """All headers in order, for display."""
    return [(name, _display(value)) for name, value in message.message.raw_items()]


def _display_header(message: StoredMessage, name: str) -> str:
    for header_name, value in message.message.raw_items():
        if header_name.lower() == name.lower():
            return _display(value)
    return ""


def _content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:150] or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _rewrite_cid_urls(html: str, message: StoredMessage) -> str:
    """Point ``cid:`` references (inline images) at the attachment URLs of this viewer."""
    by_cid = {
        attachment.content_id: index
        for index, attachment in enumerate(message.attachments())
        if attachment.content_id
    }
    if not by_cid:
        return html

    def replace(match: re.Match[str]) -> str:
        index = by_cid.get(unquote(match.group(2)))
        if index is None:
            return match.group(0)
        return f"{match.group(1)}/messages/{message.id}/attachments/{index}"

    return re.sub(r"""(["'(=\s])cid:([^"'()\s>]+)""", replace, html)


def create_viewer_app(store: MailStore, *, smtp_hint: str | int | None = None) -> FastAPI:
    """The mailbox viewer: HTML pages and a JSON API over ``store``.

    * ``GET /`` — all messages, newest first.
    * ``GET /messages/{id}`` — one message; ``/raw`` (message/rfc822), ``/html`` (the HTML body, served
      with a sandboxing CSP, shown in a sandboxed iframe), ``/attachments/{index}`` (download).
    * ``GET /api/messages`` — JSON, newest first: ``id, received_at, from, to`` (the SMTP envelope),
      ``subject, message_id, header_from, header_to, size, attachments[{filename, content_type, size}]``.
    * ``GET /api/messages/{id}`` — the same plus ``text``, ``html`` and ``headers``.
    * ``DELETE /api/messages`` — delete everything (``{"deleted": n}``);
      ``DELETE /api/messages/{id}`` — one message.
    """
    templates = Environment(
        loader=DictLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    app = FastAPI(title="invoiceflow mailbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def load(message_id: str) -> StoredMessage:
        try:
            return store.get(message_id)
        except MessageNotFound:
            raise HTTPException(status_code=404, detail="No such message") from None

    def render(name: str, **context: Any) -> HTMLResponse:
        html = templates.get_template(name).render(store_dir=str(store.directory), **context)
        return HTMLResponse(html)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        rows = []
        for message in reversed(store.list()):
            rows.append(
                {
                    "id": message.id,
                    "received": message.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "from_": _display_header(message, "From") or message.mail_from,
                    "to": message.rcpt_tos,
                    "subject": message.subject,
                    "attachments": message.attachments(),
                }
            )
        return render("list.html", messages=rows, smtp_hint=smtp_hint if smtp_hint is not None else "")

    @app.get("/messages/{message_id}", response_class=HTMLResponse)
    def show(message_id: str) -> HTMLResponse:
        message = load(message_id)
        summary = [
            ("Received", message.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("From", _display_header(message, "From")),
            ("To", _display_header(message, "To")),
            ("Cc", _display_header(message, "Cc")),
            ("Date", _display_header(message, "Date")),
            ("Message-ID", message.message_id or ""),
            ("Envelope from", message.mail_from or "<>"),
            ("Envelope to", ", ".join(message.rcpt_tos)),
        ]
        return render(
            "message.html",
            id=message.id,
            subject=message.subject,
            summary=[(name, value) for name, value in summary if value],
            attachments=message.attachments(),
            has_html=message.html_body() is not None,
            text=message.text_body(),
            headers=_headers(message),
        )

    @app.get("/messages/{message_id}/html")
    def show_html(message_id: str) -> Response:
        message = load(message_id)
        html = message.html_body()
        if html is None:
            raise HTTPException(status_code=404, detail="This message has no HTML part")
        return Response(
            _rewrite_cid_urls(html, message),
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": _MESSAGE_HTML_CSP},
        )

    @app.get("/messages/{message_id}/raw")
    def raw(message_id: str) -> Response:
        message = load(message_id)
        return Response(
            message.raw,
            media_type="message/rfc822",
            headers={
                "Content-Disposition": f'inline; filename="{message.id}.eml"',
                "Content-Security-Policy": _DOWNLOAD_CSP,
            },
        )

    @app.get("/messages/{message_id}/attachments/{index}")
    def attachment(message_id: str, index: int) -> Response:
        attachments = load(message_id).attachments()
        if not 0 <= index < len(attachments):
            raise HTTPException(status_code=404, detail="No such attachment")
        item = attachments[index]
        return Response(
            item.payload,
            media_type=item.content_type,
            headers={
                "Content-Disposition": _content_disposition(item.filename),
                "Content-Security-Policy": _DOWNLOAD_CSP,
            },
        )

    @app.get("/api/messages")
    def api_list() -> JSONResponse:
        return JSONResponse([_message_json(message) for message in reversed(store.list())])

    @app.get("/api/messages/{message_id}")
    def api_get(message_id: str) -> JSONResponse:
        message = load(message_id)
        body = _message_json(message)
        body.update(
            text=message.text_body(),
            html=message.html_body(),
            headers=[[name, value] for name, value in _headers(message)],
        )
        return JSONResponse(body)

    @app.delete("/api/messages")
    def api_clear() -> JSONResponse:
        return JSONResponse({"deleted": store.clear()})

    @app.delete("/api/messages/{message_id}")
    def api_delete(message_id: str) -> JSONResponse:
        try:
            store.delete(message_id)
        except MessageNotFound:
            raise HTTPException(status_code=404, detail="No such message") from None
        return JSONResponse({"deleted": 1})

    return app


# --------------------------------------------------------------------------------------------------
# Foreground runner (`invoiceflow mailbox`)
# --------------------------------------------------------------------------------------------------


def run_mailbox(
    store_dir: Path, smtp_port: int = 1025, http_port: int = 8025, host: str = "127.0.0.1"
) -> None:
    """Run the SMTP server (background thread) and the viewer (uvicorn, this thread) until SIGINT/SIGTERM.

    Returns normally after a signal, with both servers stopped. Must be called from the main thread.
    """
    store = MailStore(store_dir)
    server = uvicorn.Server(
        uvicorn.Config(
            create_viewer_app(store, smtp_hint=smtp_port),
            host=host,
            port=http_port,
            log_level="info",
            lifespan="off",
            access_log=False,
        )
    )

    def request_exit(signum: int, frame: object) -> None:
        # Before uvicorn runs (and when it re-raises the signal after its graceful shutdown) this is the
        # handler: just ask the server to stop instead of raising KeyboardInterrupt / dying on SIGTERM.
        server.should_exit = True

    # aiosmtpd logs every SMTP command at INFO; our own "stored ..." line is enough here.
    if logging.getLogger("mail.log").level == logging.NOTSET:
        logging.getLogger("mail.log").setLevel(logging.WARNING)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, request_exit) for sig in handled}
    try:
        mailbox = DevMailbox(store.directory, smtp_port=smtp_port, host=host)
        with mailbox:
            print(
                f"invoiceflow mailbox: SMTP {host}:{mailbox.smtp_port}, "
                f"viewer http://{_url_host(host)}:{http_port} (messages in {store.directory}); "
                "Ctrl-C to stop",
                flush=True,
            )
            if not server.should_exit:
                server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
