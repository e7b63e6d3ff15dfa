"""`invoiceflow doctor`: checks an installation the way an operator would, and says what to fix.

Settings (secrets left at their dev defaults, TLS files), PostgreSQL and its migrations, Temporal (the
address, TLS / API key, the namespace, our search attributes), SMTP (connect, STARTTLS, login) and the
accounting connection (a stored grant that still yields an access token). Each check runs even when an
earlier one failed, so one run lists every problem."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from typing import Any

from core.settings import DEFAULT_API_TOKEN, DEFAULT_SECRET, Settings
from observability.readiness import Check, database_checks


def settings_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    if settings.secret_key == DEFAULT_SECRET:
        checks.append(
            Check(
                "secret key",
                False,
                "INVOICEFLOW_SECRET_KEY is the dev default: anyone can forge approval links",
                "set INVOICEFLOW_SECRET_KEY to a long random value (e.g. `openssl rand -hex 32`)",
            )
        )
    else:
        checks.append(Check("secret key", True, "set"))
    if settings.api_token == DEFAULT_API_TOKEN:
        checks.append(
            Check(
                "API token",
                False,
                "INVOICEFLOW_API_TOKEN is the dev default `dev-token`",
                "set INVOICEFLOW_API_TOKEN to a long random value",
            )
        )
    else:
        checks.append(Check("API token", True, "set"))
    if not settings.database_url:
        checks.append(
            Check(
                "database URL",
                False,
                "INVOICEFLOW_DATABASE_URL is not set",
                "point INVOICEFLOW_DATABASE_URL at PostgreSQL (or use `invoiceflow dev`)",
            )
        )
    problems = []
    for name in ("temporal_tls_ca", "temporal_tls_cert", "temporal_tls_key"):
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            problems.append(f"INVOICEFLOW_{name.upper()}={path} is not a readable file")
    if (settings.temporal_tls_cert is None) != (settings.temporal_tls_key is None):
        problems.append("INVOICEFLOW_TEMPORAL_TLS_CERT and INVOICEFLOW_TEMPORAL_TLS_KEY go together")
    if problems:
        checks.append(Check("Temporal TLS files", False, "; ".join(problems), "fix the paths named"))
    elif settings.temporal_uses_tls:
        mode = "mTLS" if settings.temporal_tls_cert else "API key" if settings.temporal_api_key else "TLS"
        checks.append(Check("Temporal TLS files", True, mode))
    return checks


async def temporal_checks(settings: Settings, timeout_s: float = 8.0) -> list[Check]:
    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from core.temporal import connect
    from workflows.search_attributes import CLI_TYPES

    try:
        client = await asyncio.wait_for(connect(settings), timeout=timeout_s)
        await asyncio.wait_for(
            client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            ),
            timeout=timeout_s,
        )
    except Exception as exc:  # noqa: BLE001 - the answer is the error
        text = f"{type(exc).__name__}: {exc}"[:300]
        fix = "check INVOICEFLOW_TEMPORAL_ADDRESS"
        if "namespace" in text.lower() and "not found" in text.lower():
            fix = f"create the namespace: `temporal operator namespace create {settings.temporal_namespace}`"
        elif "certificate" in text.lower() or "tls" in text.lower() or "handshake" in text.lower():
            fix = "check the TEMPORAL_TLS_* files and INVOICEFLOW_TEMPORAL_TLS_SERVER_NAME"
        elif "unauth" in text.lower() or "permission" in text.lower():
            fix = "check INVOICEFLOW_TEMPORAL_API_KEY (or the client certificate) and the namespace's access"
        return [
            Check("temporal", False, text, fix),
            Check("search attributes", False, "Temporal unreachable", "fix Temporal first"),
        ]
    checks = [
        Check("temporal", True, f"{settings.temporal_address}, namespace {settings.temporal_namespace}")
    ]
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        missing = sorted(set(CLI_TYPES) - set(listed.custom_attributes))
    except Exception as exc:  # noqa: BLE001 - Temporal Cloud: the operator API may be closed to this key
        checks.append(
            Check(
                "search attributes",
                False,
                f"cannot list them: {exc}"[:300],
                "check in the Temporal UI / Cloud console that they exist",
            )
        )
        return checks
    if missing:
        commands = "; ".join(
            f"temporal operator search-attribute create --namespace {settings.temporal_namespace} "
            f"--name {name} --type {CLI_TYPES[name]}"
            for name in missing
        )
        checks.append(Check("search attributes", False, f"missing: {', '.join(missing)}", commands))
    else:
        checks.append(Check("search attributes", True, f"all {len(CLI_TYPES)} registered"))
    return checks


def smtp_check(settings: Settings, timeout_s: float = 8.0) -> Check:
    if not settings.smtp_host:
        return Check(
            "SMTP",
            False,
            "INVOICEFLOW_SMTP_HOST is not set: no email can go out",
            "set INVOICEFLOW_SMTP_HOST (and _PORT, _USERNAME, _PASSWORD, _STARTTLS)",
        )
    where = f"{settings.smtp_host}:{settings.smtp_port}"
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout_s) as smtp:
            smtp.ehlo()
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
    except smtplib.SMTPAuthenticationError as exc:
        return Check(
            "SMTP",
            False,
            f"{where} refused the login: {exc.smtp_code}",
            "check INVOICEFLOW_SMTP_USERNAME and INVOICEFLOW_SMTP_PASSWORD",
        )
    except (OSError, smtplib.SMTPException) as exc:
        return Check(
            "SMTP",
            False,
            f"{where}: {type(exc).__name__}: {exc}"[:300],
            "check INVOICEFLOW_SMTP_HOST/PORT, and INVOICEFLOW_SMTP_STARTTLS for port 587",
        )
    detail = (
        where
        + (", STARTTLS" if settings.smtp_starttls else "")
        + (", login ok" if settings.smtp_username else "")
    )
    return Check("SMTP", True, detail)


async def accounting_check(settings: Settings, timeout_s: float = 15.0) -> Check:
    provider = settings.accounting_provider
    if provider == "none":
        return Check("accounting", True, "not configured (INVOICEFLOW_ACCOUNTING_PROVIDER=none)")
    from accounting.connection import open_connection
    from accounting.errors import AccountingError
    from accounting.tokens import resolve_tenant

    try:
        tenant = resolve_tenant(settings)
        connection = open_connection(settings, tenant)
        try:
            await asyncio.wait_for(connection.store.access_token(), timeout=timeout_s)
        finally:
            await connection.aclose()
    except AccountingError as exc:
        return Check(
            "accounting",
            False,
            f"{provider}: {exc.message}"[:300],
            f"run `invoiceflow connect {provider}` (and check the {provider.upper()}_CLIENT_* settings)",
        )
    except Exception as exc:  # noqa: BLE001
        return Check(
            "accounting",
            False,
            f"{provider}: {type(exc).__name__}: {exc}"[:300],
            f"check the {provider} settings and the network, or run `invoiceflow connect {provider}`",
        )
    return Check("accounting", True, f"{provider} organisation {tenant}: access token valid")


async def run_checks(settings: Settings) -> list[Check]:
    checks = settings_checks(settings)
    if settings.database_url:
        checks += await asyncio.to_thread(database_checks, settings.database_url)
    checks += await temporal_checks(settings)
    checks.append(await asyncio.to_thread(smtp_check, settings))
    if settings.database_url:
        checks.append(await accounting_check(settings))
    return checks


def render(checks: list[Check]) -> Any:
    from rich.table import Table

    table = Table(title="invoiceflow doctor", title_justify="left")
    table.add_column("check")
    table.add_column("")
    table.add_column("detail")
    table.add_column("what to do")
    for check in checks:
        table.add_row(
            check.name, "[green]ok[/]" if check.ok else "[bold red]FAIL[/]", check.detail, check.fix
        )
    return table
