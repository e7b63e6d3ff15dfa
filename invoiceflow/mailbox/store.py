"""The dev mailbox's store: every accepted message as one ``.eml`` file in a directory.

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

import contextlib
import email.policy
import logging
import mimetypes
import os
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import quote, unquote

from aiosmtpd.smtp import Envelope

log = logging.getLogger("invoiceflow.mailbox")


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
