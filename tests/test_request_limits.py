"""Request bodies are bounded before they are read, and anonymous bodies are refused before parsing.

Driven at the ASGI level with a ``receive`` that counts what the app pulls, so "not read" is measured:
a 50 MB body announced by Content-Length is refused without one byte consumed; a streamed body without
a length is cut off at the limit. Also over a real socket (uvicorn), where the client sends only the
headers of a 50 MB request and gets its answer without sending the body.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.main import create_app

pytestmark = pytest.mark.asyncio

FIFTY_MB = 50 * 1024 * 1024
CHUNK = 64 * 1024


class Client:
    """One ASGI request; ``consumed`` counts the body bytes the app read."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumed = 0

    async def post(
        self, path: str, headers: dict[str, str], *, length: int | None, total: int
    ) -> tuple[int, Any]:
        sent = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            size = min(CHUNK, total - sent)
            sent += size
            self.consumed += size
            return {"type": "http.request", "body": b"[" * size, "more_body": sent < total}

        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        if length is not None:
            raw_headers.append((b"content-length", str(length).encode()))
        else:
            raw_headers.append((b"transfer-encoding", b"chunked"))
        raw_headers.append((b"content-type", b"application/json"))
        status, body = 0, b""

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, body
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body += message.get("body", b"")

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": raw_headers,
            "client": ("127.0.0.1", 5000),
            "server": ("invoiceflow.test", 80),
        }
        await self.app(scope, receive, send)
        return status, json.loads(body) if body.startswith(b"{") else body


@pytest.fixture
def app(make_settings):  # type: ignore[no-untyped-def]
    return create_app(make_settings(generic_webhook_secret="generic-secret"))


async def test_fifty_megabytes_announced_are_refused_unread(app) -> None:  # type: ignore[no-untyped-def]
    client = Client(app)
    status, _ = await client.post("/customers", {}, length=FIFTY_MB, total=FIFTY_MB)
    assert (status, client.consumed) == (413, 0)
    # Anonymous, to an operator route, within the limit: 401 before the body (FastAPI reads and parses
    # a body before it runs the route's authentication).
    status, _ = await client.post("/customers", {}, length=500_000, total=500_000)
    assert (status, client.consumed) == (401, 0)
    # Authenticated but too large: 413 before the body.
    status, _ = await client.post(
        "/customers", {"Authorization": "Bearer test-token"}, length=FIFTY_MB, total=FIFTY_MB
    )
    assert (status, client.consumed) == (413, 0)
    # A webhook receiver (anonymous by nature: its signature is inside what it must read).
    status, _ = await client.post("/webhooks/generic", {}, length=FIFTY_MB, total=FIFTY_MB)
    assert (status, client.consumed) == (413, 0)


async def test_a_streamed_body_is_cut_off_at_the_limit(app, make_settings) -> None:  # type: ignore[no-untyped-def]
    limit = make_settings().max_body_bytes
    client = Client(app)
    status, _ = await client.post("/webhooks/generic", {}, length=None, total=FIFTY_MB)
    assert status == 413
    assert client.consumed <= limit + CHUNK
    client = Client(app)
    status, _ = await client.post("/customers", {}, length=None, total=FIFTY_MB)
    assert (status, client.consumed) == (401, 0)


async def test_over_a_real_socket_the_body_is_never_sent(served_api) -> None:  # type: ignore[no-untyped-def]
    settings = served_api(generic_webhook_secret="generic-secret")
    host, port = settings.public_url.removeprefix("http://").split(":")
    for path, auth in (("/customers", ""), ("/webhooks/generic", ""), ("/customers", "Bearer test-token")):
        reader, writer = await asyncio.open_connection(host, int(port))
        head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {FIFTY_MB}\r\n" + (f"Authorization: {auth}\r\n" if auth else "") + "\r\n"
        writer.write(head.encode())
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        writer.close()
        assert b"413" in status_line, (path, status_line)
