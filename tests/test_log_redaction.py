"""No link token, operator token or credential in a log line: the access log of a real uvicorn server
serving the API, with the logging configuration `invoiceflow api` uses."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import uvicorn

from api.main import create_app
from core.links import sign_invoice_page
from core.log_redaction import redact, redacted_log_config
from standins.server import free_port

pytestmark = pytest.mark.asyncio


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_redact_covers_paths_queries_and_headers() -> None:
    line = (
        '127.0.0.1:5000 - "GET /reports/aging/page?as_of=2026-01-01&token=s3cr3t HTTP/1.1" 200 '
        "/approvals/abc.def-ghi/preview.pdf /i/tok3n/open.gif /estimates/view/xyz "
        "/webhooks/pandadoc?signature=deadbeef Authorization: Bearer op-token"
    )
    clean = redact(line)
    for secret in ("s3cr3t", "abc.def-ghi", "tok3n", "xyz", "deadbeef", "op-token"):
        assert secret not in clean, (secret, clean)
    assert "as_of=2026-01-01" in clean and "/approvals/[redacted]/preview.pdf" in clean


async def test_the_access_log_of_the_api_holds_no_token(make_settings, temporal_env) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    settings = make_settings(temporal_env.client, api_token="operator-secret-token")
    config = redacted_log_config()
    config["loggers"]["uvicorn.access"]["handlers"] = ["access", "keep"]
    config["handlers"]["keep"] = {"()": Keep, "formatter": "access", "filters": ["redact_secrets"]}
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_config=config, lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        page_token = sign_invoice_page(settings.secret_key, "00000000-0000-0000-0000-000000000001")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get("/reports/aging/page", params={"token": "operator-secret-token"})
            await http.get(f"/i/{page_token}")
            await http.get("/approvals/some-approval-token-value/preview.pdf")
    finally:
        server.should_exit = True
        await task
    [keep] = [h for h in logging.getLogger("uvicorn.access").handlers if isinstance(h, Keep)]
    text = "\n".join(keep.lines)
    assert text.count("[redacted]") >= 3, text
    for secret in ("operator-secret-token", page_token, "some-approval-token-value"):
        assert secret not in text, (secret, text)
    logging.getLogger("uvicorn.access").removeHandler(keep)
