"""Approval rules through the API on real PostgreSQL: CRUD in order, YAML import (all or nothing),
and the dry run, whose "new client" fact comes from the client's paid invoices."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import api_client, customer_body, eventually
from worker import build_worker

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

RULES_YAML = """
rules:
  - name: huge
    match: {min_amount: "50000.00"}
    steps:
      - {approvers: [director@firm.example]}
  - name: large-new-client
    match: {min_amount: "10000.00", new_client: true, client_tags: [enterprise]}
    steps:
      - {approvers: [pm@firm.example], mode: any, delegate: cto@firm.example}
      - {approvers: [finance@firm.example, cfo@firm.example], mode: all}
"""


async def test_rules_crud_import_and_dry_run(temporal_env, make_settings) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        imported = await api.put(
            "/approval-rules", content=RULES_YAML, headers={"Content-Type": "application/yaml"}
        )
        assert imported.status_code == 200, imported.text
        assert [(r["position"], r["name"]) for r in imported.json()] == [(0, "huge"), (1, "large-new-client")]

        bad = await api.put(
            "/approval-rules",
            content="rules:\n  - name: x\n    steps: []\n",
            headers={"Content-Type": "application/yaml"},
        )
        assert bad.status_code == 422 and "rules[0].steps" in bad.text
        assert [r["name"] for r in (await api.get("/approval-rules")).json()] == [
            "huge",
            "large-new-client",
        ]  # unchanged

        first = await api.post(
            "/approval-rules",
            params={"position": 0},
            json={
                "name": "fixed-scope",
                "match": {"project_categories": ["fixed-scope"]},
                "steps": [{"approvers": ["pm@firm.example"]}],
            },
        )
        assert first.status_code == 201
        assert [r["name"] for r in (await api.get("/approval-rules")).json()] == [
            "fixed-scope",
            "huge",
            "large-new-client",
        ]
        duplicate = await api.post(
            "/approval-rules", json={"name": "huge", "steps": [{"approvers": ["a@firm.example"]}]}
        )
        assert duplicate.status_code == 409
        floaty = await api.post(
            "/approval-rules",
            json={"name": "f", "match": {"min_amount": 5.5}, "steps": [{"approvers": ["a@firm.example"]}]},
        )
        assert floaty.status_code == 422 and "float" in floaty.text
        assert (await api.delete(f"/approval-rules/{first.json()['id']}")).status_code == 204

        customer = (
            await api.post("/customers", json=customer_body(tags=["enterprise"], currency="EUR"))
        ).json()
        dry = (
            await api.post(
                "/approval-rules/dry-run", json={"customer_id": customer["id"], "total": "12000.00"}
            )
        ).json()
        assert (
            dry["needs_approval"] and dry["rule"] == "large-new-client" and dry["facts"]["new_client"] is True
        )
        assert [s["mode"] for s in dry["steps"]] == ["any", "all"]
        assert dry["reasons"][0].startswith("huge: not matched")

        # Once the client has a paid invoice it is no longer new: no rule matches 12,000.
        invoice = (
            await api.post(
                "/invoices",
                json={"customer_id": customer["id"], "lines": [{"description": "x", "unit_price": "100.00"}]},
            )
        ).json()

        async def opened():  # type: ignore[no-untyped-def]
            return (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "open"

        await eventually(opened, what="open")
        assert (await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "100.00"})).json()[
            "status"
        ] == "paid"
        after = (
            await api.post(
                "/approval-rules/dry-run", json={"customer_id": customer["id"], "total": "12000.00"}
            )
        ).json()
        assert after["needs_approval"] is False and after["facts"]["new_client"] is False
        by_invoice = (await api.post("/approval-rules/dry-run", json={"invoice_id": invoice["id"]})).json()
        assert by_invoice["facts"]["total"] == "100.00" and by_invoice["rule"] is None


def test_cli_loads_rules_from_yaml(pg_url: str, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_YAML)
    env = {**os.environ, "INVOICEFLOW_DATABASE_URL": pg_url}
    done = subprocess.run(
        [sys.executable, "-m", "invoiceflow.cli", "approval-rules", str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "2 approval rule(s) loaded: huge, large-new-client" in done.stdout
    path.write_text("rules: [{name: broken}]")
    failed = subprocess.run(
        [sys.executable, "-m", "invoiceflow.cli", "approval-rules", str(path)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and "rules[0].steps" in failed.stderr
