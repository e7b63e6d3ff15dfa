"""What the machine did while a section ran, and the environment a bench child process runs in.

On a shared virtual machine the hypervisor takes CPU from the guest (``steal``): a tail latency or a rate
measured while it took a fifth of the cores says as much about the host as about the code, so the
sections that time things report it next to their figures."""

from __future__ import annotations

import os
from typing import Any

import psutil

#: Settings every bench child (API, dispatcher, worker) runs with, as docker-compose deploys them.
DEPLOYED = {"INVOICEFLOW_LOG_FORMAT": "json"}


def child_env(**settings: str) -> dict[str, str]:
    """This process's environment without its INVOICEFLOW_* variables, with DEPLOYED and ``settings``
    (``DATABASE_URL="..."`` becomes ``INVOICEFLOW_DATABASE_URL``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INVOICEFLOW_")}
    return env | DEPLOYED | {f"INVOICEFLOW_{name}": value for name, value in settings.items()}


def cpu_times() -> Any:
    return psutil.cpu_times()


def shares(before: Any, after: Any) -> dict[str, float]:
    """Percent of all cores' time between two ``cpu_times`` snapshots: busy in this guest, taken by the
    hypervisor (steal), idle (iowait counted as idle)."""

    def busy(t: Any) -> float:  # guest time is counted in user time already
        return float(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0))

    def steal(t: Any) -> float:
        return float(getattr(t, "steal", 0.0))

    def idle(t: Any) -> float:
        return float(t.idle + getattr(t, "iowait", 0.0))

    spans = {name: fn(after) - fn(before) for name, fn in (("busy", busy), ("steal", steal), ("idle", idle))}
    total = sum(spans.values()) or 1.0
    return {f"{name}_pct": round(100 * value / total, 1) for name, value in spans.items()}
