"""`invoiceflow users ...` and `invoiceflow tokens ...`: console users and their API tokens, from a shell
(the first admin, a forgotten password, a script's token). Passwords come from stdin or a prompt, never
from the command line (where `ps` and shell history would keep them)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from core.settings import Settings, get_settings

T = TypeVar("T")
users_app = typer.Typer(
    no_args_is_help=True, help="Console users: create, list, disable, set-role, reset-password."
)
tokens_app = typer.Typer(no_args_is_help=True, help="Per-user API tokens: create (shown once), list, revoke.")
ACTOR = "cli"


def _run(fn: Callable[..., T]) -> T:
    from persistence import users
    from persistence.db import session_scope

    try:
        with session_scope(get_settings().require_database_url()) as session:
            return fn(session)
    except (users.UserError, RuntimeError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _password(confirm: bool = True) -> str:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


@users_app.command("create")
def create(
    email: str,
    role: Annotated[str, typer.Option(help="admin, finance or viewer.")] = "finance",
) -> None:
    """Create a user; the password is read from stdin (one line) or prompted for."""
    from persistence import users

    password = _password()
    user = _run(lambda s: users.create_user(s, email, role, password, actor=ACTOR))
    typer.echo(f"created {user.email} ({user.role})")


@users_app.command("list")
def list_() -> None:
    from persistence import users

    rows = _run(lambda s: [(u.email, u.role, u.disabled, u.last_login_at) for u in users.list_users(s)])
    for email, role, disabled, last in rows:
        state = "disabled" if disabled else "active"
        typer.echo(f"{email}\t{role}\t{state}\tlast sign-in {last.isoformat() if last else 'never'}")


@users_app.command("disable")
def disable(email: str) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    from persistence import users

    _run(lambda s: users.set_disabled(s, email, True, actor=ACTOR))
    typer.echo(f"disabled {email}")


@users_app.command("enable")
def enable(email: str) -> None:
    from persistence import users

    _run(lambda s: users.set_disabled(s, email, False, actor=ACTOR))
    typer.echo(f"enabled {email}")


@users_app.command("set-role")
def set_role(email: str, role: str) -> None:
    """Change a user's role (their sessions end; tokens above the new role come down to it)."""
    from persistence import users

    _run(lambda s: users.set_role(s, email, role, actor=ACTOR))
    typer.echo(f"{email} is now {role}")


@users_app.command("reset-password")
def reset_password(email: str) -> None:
    """Set a new password (stdin or prompt); every session of the user ends."""
    from persistence import users

    password = _password()
    _run(lambda s: users.reset_password(s, email, password, actor=ACTOR))
    typer.echo(f"password of {email} reset")


@tokens_app.command("create")
def token_create(
    email: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "script",
    role: Annotated[str | None, typer.Option(help="At most the user's role; default: the user's.")] = None,
) -> None:
    """Mint a token for a user and print it once (only its hash is stored)."""
    from persistence import users

    token_id, secret = _run(
        lambda s: (lambda t: (t[0].id, t[1]))(users.create_token(s, email, name, role, actor=ACTOR))
    )
    typer.echo(f"token {token_id} (store it now, it is not shown again):", err=True)
    typer.echo(secret)


@tokens_app.command("list")
def token_list(email: Annotated[str | None, typer.Argument()] = None) -> None:
    from persistence import users

    rows = _run(
        lambda s: [
            (t.id, t.user.email, t.name, t.role, t.prefix, t.revoked_at, t.last_used_at)
            for t in users.list_tokens(s, email)
        ]
    )
    for token_id, owner, name, role, prefix, revoked, used in rows:
        state = (
            f"revoked {revoked.isoformat()}"
            if revoked
            else f"last used {used.isoformat() if used else 'never'}"
        )
        typer.echo(f"{token_id}\t{owner}\t{name}\t{role}\t{prefix}…\t{state}")


@tokens_app.command("revoke")
def token_revoke(token_id: uuid.UUID) -> None:
    from persistence import users

    _run(lambda s: users.revoke_token(s, token_id, actor=ACTOR))
    typer.echo(f"revoked {token_id}")


def ensure_first_admin(settings: Settings, database_url: str) -> str:
    """For `invoiceflow dev`: when no user exists, create the admin of INVOICEFLOW_ADMIN_EMAIL /
    INVOICEFLOW_ADMIN_PASSWORD, or one with a generated password. Returns how to sign in (the generated
    password only this once)."""
    from persistence import users
    from persistence.db import session_scope

    with session_scope(database_url) as session:
        existing = users.list_users(session)
        if existing:
            admins = [u.email for u in existing if u.role == "admin" and not u.disabled]
            who = f"e.g. {admins[0]}" if admins else "`invoiceflow users create EMAIL --role admin`"
            return f"sign in with a console user ({who}; `invoiceflow users list`)"
        email = settings.admin_email or "admin@invoiceflow.localhost"
        password = settings.admin_password or users.generate_password()
        users.create_user(session, email, "admin", password, actor="invoiceflow dev")
    if settings.admin_password:
        return f"sign in as {email} with INVOICEFLOW_ADMIN_PASSWORD"
    return (
        f"sign in as {email} / {password} (generated, shown once: `invoiceflow users reset-password {email}`)"
    )
