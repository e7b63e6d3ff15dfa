"""The dev mailbox's web viewer: HTML pages (templates beside this module) and a small JSON API."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from invoiceflow.mailbox.store import Attachment, MailStore, MessageNotFound, StoredMessage

log = logging.getLogger("invoiceflow.mailbox")


def url_host(host: str) -> str:
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
        loader=FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
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
