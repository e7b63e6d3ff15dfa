"""Helpers of the console's browser tests: Debian's Chromium under Playwright, axe-core injected into
every page (fetched from npm into a git-ignored cache the first time), screenshots at desktop and phone
width kept under ``test-artifacts/console`` (git-ignored) for a person to look at."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from persistence import users
from persistence.db import session_scope
from tests.support import eventually

ROOT = Path(__file__).resolve().parent.parent
AXE_CACHE = ROOT / ".test-cache" / "axe-core"
ARTIFACTS = ROOT / "test-artifacts" / "console"
AXE_VERSION = "4"
PASSWORD = "a long console password"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def axe_script() -> Path:
    """axe.min.js from the npm package ``axe-core`` (``npm pack``: no node_modules anywhere)."""
    target = AXE_CACHE / "axe.min.js"
    if target.exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed, so axe-core cannot be fetched for the accessibility checks")
    AXE_CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [npm, "pack", f"axe-core@{AXE_VERSION}", "--silent", "--pack-destination", tmp],
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
        with tarfile.open(tgz) as archive:
            member = archive.extractfile("package/axe.min.js")
            assert member is not None, "axe-core's package has no axe.min.js"
            target.write_bytes(member.read())
    return target


async def audit(page: Any, name: str, *, phone_too: bool = True) -> None:
    """axe-core on the page as it is (no serious or critical violation), then screenshots at desktop
    and phone width (the phone one is checked by axe too: a layout can break only when narrow)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    viewports = [("desktop", DESKTOP)] + ([("phone", PHONE)] if phone_too else [])
    for label, viewport in viewports:
        await page.set_viewport_size(viewport)
        if not await page.evaluate("typeof window.axe !== 'undefined'"):
            await page.add_script_tag(path=str(axe_script()))
        result = await page.evaluate(
            "async () => (await axe.run(document, {iframes: false, resultTypes: ['violations']})).violations"
            ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))"
        )
        bad = [v for v in result if v["impact"] in ("serious", "critical")]
        assert not bad, f"{name} ({label}): {json.dumps(bad, indent=1)[:3000]}"
        await page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


def user(settings: Settings, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:6]}@firm.example.com"
    with session_scope(settings.require_database_url()) as session:
        users.create_user(session, email, role, PASSWORD, actor="test")
    return email


async def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/app")
    await page.fill("#email", email)
    await page.fill("#password", password)
    await page.get_by_role("button", name="Sign in").click()


async def flash(page: Any) -> str:
    return (await page.locator(".flash").first.text_content() or "").strip()


async def status_of(page: Any) -> str:
    return (await page.locator("#status").text_content() or "").strip()


async def until_status(page: Any, wanted: str) -> None:
    async def probe() -> bool:
        await page.reload()
        return await status_of(page) == wanted

    await eventually(probe, what=f"status {wanted}")
