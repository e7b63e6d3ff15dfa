"""`invoiceflow`: the single entry point (dev stack, worker, API, migrations, dev mailbox)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)


def _add_user_commands() -> None:
    from invoiceflow.users_cli import tokens_app, users_app

    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")


_add_user_commands()


def _logging() -> None:
    """INVOICEFLOW_LOG_FORMAT (json | console) and INVOICEFLOW_LOG_LEVEL, secrets redacted."""
    from observability.logs import configure_from_settings

    configure_from_settings(get_settings())


@app.command()
def dev(
    data_dir: Annotated[Path, typer.Option(help="PostgreSQL data, Temporal state, mail and logs.")] = Path(
        ".invoiceflow"
    ),
    api_port: Annotated[int, typer.Option()] = 8000,
    temporal_port: Annotated[int, typer.Option()] = 7233,
    ui_port: Annotated[int, typer.Option(help="Temporal Web UI.")] = 8233,
    smtp_port: Annotated[int, typer.Option(help="Dev mailbox SMTP port.")] = 1025,
    mail_ui_port: Annotated[int, typer.Option(help="Dev mailbox web viewer.")] = 8025,
    crm_port: Annotated[
        int, typer.Option(help="Where `invoiceflow demo` serves its HubSpot stand-in.")
    ] = 8091,
    accounting: Annotated[
        str | None,
        typer.Option(
            help="Sync to a local stand-in of xero, qbo, freshbooks or netsuite (on --accounting-port)."
        ),
    ] = None,
    accounting_port: Annotated[int, typer.Option()] = 8092,
    worker_metrics_port: Annotated[
        int, typer.Option(help="The worker's Prometheus /metrics (0: a free port, printed).")
    ] = 0,
) -> None:
    """Run everything on embedded defaults: PostgreSQL, Temporal + UI, dev mailbox, worker, API."""
    from invoiceflow.devstack import DevPorts, DevStack, DevStackError

    if accounting is not None and accounting not in ("xero", "qbo", "freshbooks", "netsuite"):
        typer.echo(
            f"error: --accounting must be xero, qbo, freshbooks or netsuite, not {accounting!r}", err=True
        )
        raise typer.Exit(2)
    stack = DevStack(
        data_dir=data_dir.resolve(),
        ports=DevPorts(
            api=api_port,
            temporal=temporal_port,
            ui=ui_port,
            smtp=smtp_port,
            mail_ui=mail_ui_port,
            crm=crm_port,
            accounting=accounting_port,
            worker_metrics=worker_metrics_port,
        ),
        accounting=accounting,
        settings=get_settings(),
        say=_say,
    )
    code = 0
    try:
        stack.start()
        typer.echo(stack.summary())
        code = stack.wait()
    except DevStackError as exc:
        _say(f"error: {exc}")
        code = 1
    except KeyboardInterrupt:
        pass
    finally:
        _say("stopping ...")
        stack.stop()
        _say("stopped.")
    raise typer.Exit(code)


def _say(message: str) -> None:
    """A line for the person at the terminal. Whoever started us may have closed our stderr (a
    terminal gone, a test that read what it needed): a message that cannot be written must never stop
    the stack from stopping its children."""
    try:
        typer.echo(message, err=True)
    except OSError:
        pass


@app.command()
def demo(
    api_url: Annotated[
        str, typer.Option(help="The API of a running `invoiceflow dev`.")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(help="Bearer token (default: INVOICEFLOW_API_TOKEN or dev-token).")
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            help="One webhook secret for every provider (default: the dev data dir's, per provider)."
        ),
    ] = None,
    crm_port: Annotated[int, typer.Option(help="The dev stack's --crm-port.")] = 8091,
    data_dir: Annotated[
        Path, typer.Option(help="The running `invoiceflow dev`'s data dir (its webhook-secrets.env).")
    ] = Path(".invoiceflow"),
) -> None:
    """Fire realistic signed webhooks (DocuSign, GitHub, Jira, HubSpot, ...) at a running
    `invoiceflow dev`."""
    from invoiceflow.demo import DemoError, config_from_env, run_demo

    try:
        config = config_from_env(api_url, token, secret, data_dir.resolve())
        config.crm_port = crm_port
        asyncio.run(run_demo(config, say=typer.echo))
    except (DemoError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc


@app.command()
def standin(
    provider: Annotated[str, typer.Argument(help="xero, qbo, freshbooks or netsuite")],
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8092,
    webhook_url: Annotated[str | None, typer.Option(help="Send the provider's webhooks here.")] = None,
    webhook_secret: Annotated[str, typer.Option(help="Xero webhook key / QBO verifier token.")] = "",
    no_quota: Annotated[
        bool, typer.Option("--no-quota", help="Answer without the provider's rate limits (benchmarks).")
    ] = False,
) -> None:
    """Serve an accounting API stand-in (used by `invoiceflow dev --accounting`)."""
    from standins.accounting.dev import PROVIDERS, serve_forever

    if provider not in PROVIDERS:
        typer.echo(f"error: unknown provider {provider!r}; choose {', '.join(PROVIDERS)}", err=True)
        raise typer.Exit(2)
    serve_forever(
        provider, host, port, webhook_url=webhook_url, webhook_secret=webhook_secret, quota=not no_quota
    )


@app.command()
def worker() -> None:
    """Run the Temporal worker (workflows and activities) against INVOICEFLOW_* services."""
    import worker as worker_module

    _logging()
    asyncio.run(worker_module.run(get_settings()))


@app.command()
def api(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Serve the operator API with uvicorn."""
    import uvicorn

    from api.main import create_app

    _logging()
    # Our middleware writes the access log (paths redacted); uvicorn's own would print link tokens.
    uvicorn.run(
        create_app(get_settings()), host=host, port=port, log_level="info", log_config=None, access_log=False
    )


@app.command()
def dispatcher() -> None:
    """Hand accepted webhook events to Temporal, in a process of its own (run it with
    INVOICEFLOW_DISPATCHER_IN_API=false on the API; any number may run)."""
    from api.webhooks import dispatcher_process

    _logging()
    asyncio.run(dispatcher_process.run(get_settings()))


@app.command()
def migrate() -> None:
    """Apply database migrations to INVOICEFLOW_DATABASE_URL."""
    from persistence.migrate import current, upgrade

    settings = get_settings()
    try:
        url = settings.require_database_url()
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    upgrade(url)
    typer.echo(f"database at revision {current(url)}")


@app.command("approval-rules")
def approval_rules(
    file: Annotated[
        Path, typer.Argument(help="YAML file with a top-level 'rules:' list.", exists=True, dir_okay=False)
    ],
) -> None:
    """Replace the approval rules with those in a YAML file (all or nothing)."""
    from billing.errors import MoneyError
    from persistence import approval_rules as repo
    from persistence.db import session_scope

    try:
        rules = repo.parse_yaml(file.read_text())
        with session_scope(get_settings().require_database_url()) as session:
            repo.replace_all(session, rules)
    except (MoneyError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(rules)} approval rule(s) loaded: {', '.join(r.name for r in rules) or '(none)'}")


@app.command()
def mailbox(
    dir: Annotated[Path, typer.Option(help="Where messages are kept.")] = Path(".invoiceflow/mail"),
    smtp_port: Annotated[int, typer.Option()] = 1025,
    http_port: Annotated[int, typer.Option()] = 8025,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
) -> None:
    """Run the dev mailbox: an SMTP server that keeps every message, with a web viewer."""
    from invoiceflow.mailbox import run_mailbox

    _logging()
    run_mailbox(dir, smtp_port, http_port, host)


@app.command()
def connect(
    provider: Annotated[str, typer.Argument(help="xero, qbo or freshbooks.")],
    tenant: Annotated[
        str | None,
        typer.Option(
            help="Organisation id (Xero tenant, FreshBooks account); default: its setting, or QBO's realmId."
        ),
    ] = None,
) -> None:
    """Connect an accounting organisation: allow access in the browser, paste where it sent you."""
    from accounting import tokens
    from accounting.errors import AccountingError

    settings = get_settings()
    try:
        oauth = tokens.oauth_app(settings, provider)
        state = tokens.new_state()
        typer.echo(
            f"1. Open this address, sign in to {provider} and allow access:\n\n   "
            f"{tokens.authorization_url(oauth, state)}\n"
        )
        typer.echo(f"2. The browser is then sent to {oauth.redirect_uri}?code=... (that page need not load).")
        params = tokens.parse_redirect(typer.prompt("   Paste that address (or only the code)"), state)
        tenant_id = tenant or params.get("realmId") or tokens.configured_tenant(settings, provider)
        if not tenant_id:
            raise ValueError(
                f"which {provider} organisation? pass --tenant (Xero lists yours at "
                "GET https://api.xero.com/connections with the new token)"
            )
        grant = tokens.exchange_code(oauth, params["code"], timeout_s=settings.accounting_timeout_s)
        tokens.save_connection(
            settings.require_database_url(), tokens.token_cipher(settings), provider, tenant_id, grant
        )
    except AccountingError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except (ValueError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"connected {provider} organisation {tenant_id}; tokens stored encrypted, access token valid "
        f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC (refreshed automatically)"
    )
    if settings.accounting_provider != provider:
        typer.echo(f"set INVOICEFLOW_ACCOUNTING_PROVIDER={provider} to start syncing to it")


@app.command()
def reconcile() -> None:
    """Compare every synced invoice with the accounting provider's copy (exit 1 when any differs)."""
    from accounting.errors import AccountingError
    from accounting.reconcile import reconcile as run_reconcile

    settings = get_settings()
    if settings.accounting_provider == "none":
        typer.echo("no accounting provider configured (INVOICEFLOW_ACCOUNTING_PROVIDER)")
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("comparing with " + settings.accounting_provider),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("reconcile", total=None)
    try:
        with bar:
            differences = asyncio.run(
                run_reconcile(
                    settings, progress=lambda done, total: bar.update(task, completed=done, total=total)
                )
            )
    except AccountingError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for difference in differences:
        typer.echo(
            f"{difference.number} (invoice {difference.invoice_id}, {difference.provider} "
            f"{difference.external_id}):"
        )
        for problem in difference.problems:
            typer.echo(f"  - {problem}")
    if differences:
        typer.echo(f"{len(differences)} invoice(s) differ at {settings.accounting_provider}", err=True)
        raise typer.Exit(1)
    typer.echo(f"every synced invoice matches {settings.accounting_provider}")


accounting_app = typer.Typer(
    no_args_is_help=True, help="The accounting organisation: customers and the books."
)
app.add_typer(accounting_app, name="accounting")


@accounting_app.command("import-customers")
def import_customers(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be linked or created.")] = False,
) -> None:
    """Link our customers to the books' contacts (by id, tax id, then email) or create ours from them."""
    from rich.progress import Progress

    from accounting.errors import AccountingError
    from services.books_customers import fetch_contacts, plan_and_apply

    settings = get_settings()
    if settings.accounting_provider == "none":
        typer.echo("no accounting provider configured (INVOICEFLOW_ACCOUNTING_PROVIDER)", err=True)
        raise typer.Exit(2)
    try:
        tenant_id, contacts = asyncio.run(fetch_contacts(settings))
    except AccountingError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    with Progress(transient=True) as progress:
        task = progress.add_task(f"{settings.accounting_provider} contacts", total=len(contacts))
        report = plan_and_apply(
            settings, tenant_id, contacts, dry_run=dry_run, advance=lambda: progress.advance(task)
        )
    verb = "would be " if dry_run else ""
    for contact, how in report.linked:
        typer.echo(f"linked{' (dry run)' if dry_run else ''}: {contact} -> {how}")
    for contact in report.created:
        typer.echo(f"created{' (dry run)' if dry_run else ''}: {contact}")
    for contact, why in report.ambiguous:
        typer.echo(f"ambiguous, left alone: {contact}: {why}")
    typer.echo(
        f"{len(contacts)} contact(s): {len(report.already)} already linked, "
        f"{len(report.linked)} {verb}linked, {len(report.created)} {verb}created, "
        f"{len(report.ambiguous)} ambiguous"
    )
    if report.ambiguous:
        raise typer.Exit(1)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """What needs a person: approvals, sync failures, unmatched events, holds, the outbox (exit 1 if any)."""
    import json

    from invoiceflow.status import gather, render

    try:
        report = gather(get_settings().require_database_url())
    except RuntimeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        from rich.console import Console

        Console().print(render(report))
    raise typer.Exit(1 if report.needs_attention else 0)


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check settings, PostgreSQL and migrations, Temporal, search attributes, SMTP and the accounting
    connection, and say what to fix (exit 1 when anything failed)."""
    import json
    from dataclasses import asdict

    from invoiceflow.doctor import render, run_checks

    checks = asyncio.run(run_checks(get_settings()))
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        from rich.console import Console

        Console().print(render(checks))
    failed = [c for c in checks if not c.ok]
    if failed and not as_json:
        typer.echo(f"{len(failed)} problem(s) to fix", err=True)
    raise typer.Exit(1 if failed else 0)


if __name__ == "__main__":
    app()
