"""The templates must ship in the wheel (the Docker image installs the wheel, not the source tree)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from documents.rendering import BUILTIN_TEMPLATE_DIR, EMAIL_KINDS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = BUILTIN_TEMPLATE_DIR.parent


def test_every_template_the_code_needs_exists() -> None:
    assert (BUILTIN_TEMPLATE_DIR / "invoice.html").is_file()
    for kind in EMAIL_KINDS:
        for suffix in ("subject.txt", "txt", "html"):
            assert (BUILTIN_TEMPLATE_DIR / "email" / f"{kind}.{suffix}").is_file(), (kind, suffix)


def test_package_data_ships_every_template() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["documents"]
    shipped = {path for pattern in patterns for path in PACKAGE.glob(pattern) if path.is_file()}
    needed = {
        path for path in BUILTIN_TEMPLATE_DIR.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    }
    assert sorted(map(str, needed - shipped)) == []
