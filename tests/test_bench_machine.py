"""The bench's machine shares and the environment its children run in (fast; no stack)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bench import machine

ROOT = Path(__file__).resolve().parent.parent


def times(user: float, system: float, idle: float, steal: float, iowait: float = 0.0) -> SimpleNamespace:
    return SimpleNamespace(user=user, nice=0.0, system=system, idle=idle, iowait=iowait, steal=steal)


def test_shares_split_the_span_into_busy_steal_and_idle() -> None:
    before = times(100, 50, 1000, 10)
    after = times(160, 70, 1010, 20, iowait=10)  # 80 busy, 10 steal, 10 idle + 10 iowait: 110
    assert machine.shares(before, after) == {"busy_pct": 72.7, "steal_pct": 9.1, "idle_pct": 18.2}


def test_shares_of_this_machine_add_up() -> None:
    before = machine.cpu_times()
    sum(i * i for i in range(300_000))
    shares = machine.shares(before, machine.cpu_times())
    assert shares["busy_pct"] > 0 and abs(sum(shares.values()) - 100) < 0.5


def test_children_run_with_the_deployed_settings_and_none_of_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVOICEFLOW_API_TOKEN", "from-the-developer-shell")
    env = machine.child_env(TASK_QUEUE="bench-1")
    assert "INVOICEFLOW_API_TOKEN" not in env
    assert env["INVOICEFLOW_TASK_QUEUE"] == "bench-1" and env["PATH"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    deployed = {str(k): str(v) for k, v in compose["x-app-env"].items()}
    for name, value in machine.DEPLOYED.items():
        assert env[name] == value == deployed[name], name
