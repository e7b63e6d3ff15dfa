"""Webhook secrets of a dev data dir: random per data dir, kept in ``<data-dir>/webhook-secrets.env``.

`invoiceflow dev` used to give every unset webhook secret one public value, so anyone who read the
README could sign a payment to a dev stack. Now each provider without a configured secret gets a random
one the first time a data dir is used (``secrets.token_urlsafe``, Stripe's in its ``whsec_`` form),
written ``KEY=value`` per line with mode 0600 and reused on every later start; `invoiceflow demo`
reads the same file to sign what it sends. A secret set in the environment always wins.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILE_NAME = "webhook-secrets.env"
WEBHOOK_PROVIDERS = (
    "hubspot",
    "pipedrive",
    "jira",
    "linear",
    "github",
    "asana",
    "docusign",
    "dropbox_sign",
    "pandadoc",
    "generic",
    "stripe",
)


def env_name(provider: str) -> str:
    return f"INVOICEFLOW_{provider.upper()}_WEBHOOK_SECRET"


def secrets_file(data_dir: Path) -> Path:
    return data_dir / FILE_NAME


def _new_secret(provider: str) -> str:
    value = secrets.token_urlsafe(32)
    return f"whsec_{value}" if provider == "stripe" else value


def read_secrets(data_dir: Path) -> dict[str, str]:
    """Provider → secret, from the data dir's file (empty when there is none yet)."""
    path = secrets_file(data_dir)
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    by_env = {env_name(p): p for p in WEBHOOK_PROVIDERS}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and name in by_env and value:
            found[by_env[name]] = value
    return found


def ensure_secrets(data_dir: Path) -> dict[str, str]:
    """The data dir's secrets, creating the file (0600) or adding providers it lacks."""
    found = read_secrets(data_dir)
    missing = [p for p in WEBHOOK_PROVIDERS if p not in found]
    if missing:
        found |= {p: _new_secret(p) for p in missing}
        data_dir.mkdir(parents=True, exist_ok=True)
        path = secrets_file(data_dir)
        text = "# Webhook secrets of this dev data dir (invoiceflow dev); the environment's win.\n"
        text += "".join(f"{env_name(p)}={found[p]}\n" for p in WEBHOOK_PROVIDERS)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(path, 0o600)
    return found


def effective_secrets(data_dir: Path, env: dict[str, str]) -> dict[str, str]:
    """What each provider's receiver verifies with: the environment's value, else the data dir's."""
    stored = read_secrets(data_dir)
    return {p: env.get(env_name(p)) or stored.get(p, "") for p in WEBHOOK_PROVIDERS}
