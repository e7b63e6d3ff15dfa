"""docker-compose cannot run here; keep what it registers in step with the code by reading it."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from core.settings import Settings
from workflows.search_attributes import ALL, CLI_TYPES

ROOT = Path(__file__).resolve().parent.parent


def test_compose_registers_every_search_attribute() -> None:
    script = (ROOT / "docker" / "temporal-search-attributes.sh").read_text()
    registered = dict(re.findall(r"^\s+(\w+)=(\w+)$", script, re.MULTILINE))
    assert registered == CLI_TYPES
    assert set(CLI_TYPES) == {key.name for key in ALL}


def test_compose_app_environment_names_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["x-app-env"]
    fields = {f"INVOICEFLOW_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields, set(env) - fields
    for service in ("migrate", "api", "dispatcher", "worker"):
        assert compose["services"][service]["environment"]["INVOICEFLOW_DATABASE_URL"].startswith(
            "postgresql://"
        )
