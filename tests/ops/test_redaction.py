"""Redaction of secrets in log lines: configured values, signed link tokens, credentials in paths,
query strings, headers and URLs, whichever logger wrote them (uvicorn's access log format included)."""

from __future__ import annotations

import io
import json
import logging

import pytest
from itsdangerous import URLSafeTimedSerializer

from core.settings import Settings
from observability import logs, redact

TOKEN = URLSafeTimedSerializer("k", salt="approval").dumps({"i": "inv", "a": "pm@firm.example"})


@pytest.mark.parametrize(
    ("raw", "query", "expected"),
    [
        (f"/approvals/{TOKEN}", "", "/approvals/[REDACTED]"),
        (f"/approvals/{TOKEN}/preview.pdf", "", "/approvals/[REDACTED]/preview.pdf"),
        ("/i/abc123def456", "", "/i/[REDACTED]"),
        ("/estimates/view/xyz987", "", "/estimates/view/[REDACTED]"),
        ("/webhooks/asana", "token=s3cr3t-value&x=1", "/webhooks/asana?token=[REDACTED]&x=1"),
        ("/accounting/oauth/callback", "code=abc&state=def&realmId=42", None),
        ("/invoices/7b0c", "status=open", "/invoices/7b0c?status=open"),
    ],
    # Fixed ids: the signed token holds a timestamp, and parallel workers must collect the same names.
    ids=["approval", "approval-preview", "invoice-page", "estimate", "query-token", "oauth", "plain"],
)
def test_access_log_paths(raw: str, query: str, expected: str | None) -> None:
    cleaned = redact.path(raw, query)
    if expected is not None:
        assert cleaned == expected
    else:
        assert "abc" not in cleaned and "def" not in cleaned and "realmId=42" in cleaned


def test_free_text_loses_known_secrets_tokens_and_credentials() -> None:
    r = redact.Redactor(["op-token-123456", "short"])
    line = (
        f'127.0.0.1:5000 - "GET /approvals/{TOKEN}?token=op-token-123456 HTTP/1.1" 200 '
        "Authorization: Bearer eyJhbGciOi.abc.def postgresql://app:pw-in-url@db/x ?api_key=zzz9"
    )
    out = r.text(line)
    for secret in (TOKEN, "op-token-123456", "eyJhbGciOi", "pw-in-url", "zzz9"):
        assert secret not in out, secret
    assert "short" not in r.known  # too short to redact safely: would eat ordinary words
    assert "200" in out and "GET /approvals/" in out


@pytest.mark.parametrize(
    "value",
    [
        TOKEN,  # the shortest-circuit checks must still let each pattern see what it needs
        f"x {TOKEN} y",
        "ab12cdef.wxyz.0123456789abcdef",  # SIGNED_TOKEN's shortest match, exactly
        "https://user:pw-in-url@host/x",
        "see ?key=abc123",
        "a&signature=zzzz9",
        "Basic dXNlcjpwdw==",
        "op-token-123456",
        "x@y.example",
        "token=abc",  # no ? or &: not a query string, left alone by every layer
        "hello",
        "a.b.c",
    ],
)
def test_free_text_redaction_matches_every_pattern_run_on_every_string(value: str) -> None:
    """`Redactor.text` skips a pattern when the text lacks what it needs (a speed-up): the result must be
    what running every pattern on every string gives."""
    r = redact.Redactor(["op-token-123456"])
    expected = value
    for secret in r.known:
        expected = expected.replace(secret, redact.REDACTED)
    expected = redact.URL_USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{redact.REDACTED}@", expected)
    expected = redact.QUERY_CREDENTIAL.sub(lambda m: m.group(1) + redact.REDACTED, expected)
    expected = redact.BEARER.sub(lambda m: f"{m.group(1)} {redact.REDACTED}", expected)
    expected = redact.SIGNED_TOKEN.sub(redact.REDACTED, expected)
    assert r.text(value) == expected


def test_secrets_of_settings_covers_every_secret_setting() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        api_token="tok-aaaaaaaa",
        secret_key="key-bbbbbbbb",
        smtp_password="pw-cccccccc",
        stripe_webhook_secret="whsec_dddddddd,whsec_eeeeeeee",
        xero_client_secret="xs-ffffffff",
        temporal_api_key="tcak-gggggggg",
        database_url="postgresql://app:db-hhhhhhhh@db:5432/x",
    )
    found = set(redact.secrets_of(settings))
    assert {
        "tok-aaaaaaaa",
        "key-bbbbbbbb",
        "pw-cccccccc",
        "whsec_dddddddd",
        "whsec_eeeeeeee",
        "xs-ffffffff",
        "tcak-gggggggg",
        "db-hhhhhhhh",
    } <= found
    names = set(Settings.model_fields)
    assert set(redact.SECRET_SETTINGS) <= names  # no typo hides a secret
    secretish = {n for n in names if n.endswith(("_secret", "_password", "_token", "_api_key", "_key"))}
    # temporal_tls_key is a path; the key itself is never read into a setting.
    assert secretish - set(redact.SECRET_SETTINGS) == {"temporal_tls_key"}, secretish - set(
        redact.SECRET_SETTINGS
    )


@pytest.fixture
def restored_logging():  # type: ignore[no-untyped-def]
    """configure() rewires the process's logging: put back what the rest of the session had."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore", "alembic")
    saved = {
        n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
        for n in names
    }
    yield
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    logging.captureWarnings(False)


def test_json_lines_from_any_logger_are_redacted_and_parse(restored_logging) -> None:  # type: ignore[no-untyped-def]
    logging.getLogger("uvicorn.access").setLevel(logging.INFO)  # other tests' servers may have raised it
    stream = io.StringIO()
    settings = Settings(_env_file=None, api_token="op-token-77777777")  # type: ignore[call-arg]
    logs.configure("json", "INFO", settings=settings, stream=stream)
    try:
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d',
            "127.0.0.1:1",
            "GET",
            "/reports/aging/page?token=op-token-77777777",
            "1.1",
            200,
        )
        logging.getLogger("anything").warning("failed", extra={"url": f"http://h/approvals/{TOKEN}", "n": 3})
        try:
            raise ValueError("bad token op-token-77777777")
        except ValueError:
            logging.getLogger("anything").exception("boom")
    finally:
        logging.getLogger().handlers.clear()
    text = stream.getvalue()
    assert "op-token-77777777" not in text and TOKEN not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["event"].split(" ")[0] for line in lines] == ["127.0.0.1:1", "failed", "boom"]
    assert lines[1]["n"] == 3 and lines[1]["level"] == "warning" and "[REDACTED]" in lines[1]["url"]
    assert "ValueError" in lines[2]["exception"]


@pytest.mark.asyncio
async def test_the_access_log_of_a_served_api_holds_no_token(  # type: ignore[no-untyped-def]
    restored_logging, make_settings, temporal_env
) -> None:
    """A real uvicorn serving the API as `invoiceflow api` does (our middleware writes the access log,
    uvicorn's own is off), fed a link token, the operator token in a query and an approval token."""
    import asyncio

    import httpx
    import uvicorn

    from api.main import create_app
    from core.links import sign_invoice_page
    from standins.server import free_port

    port = free_port()
    settings = make_settings(temporal_env.client, api_token="operator-secret-token")
    stream = io.StringIO()
    logs.configure("json", "INFO", settings=settings, stream=stream)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    task = asyncio.create_task(server.serve())
    page_token = sign_invoice_page(settings.secret_key, "00000000-0000-0000-0000-000000000001")
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await http.get("/reports/aging/page", params={"token": "operator-secret-token"})
            await http.get(f"/i/{page_token}")
            await http.get("/approvals/some-approval-token-value/preview.pdf")
    finally:
        server.should_exit = True
        await task
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line.get("logger") == "invoiceflow.http"]
    assert len(requests) >= 3, lines
    text = stream.getvalue()
    for secret in ("operator-secret-token", page_token, "some-approval-token-value"):
        assert secret not in text, (secret, text)
    assert text.count("[REDACTED]") >= 3, text
