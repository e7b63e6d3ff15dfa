"""Workflow code stays deterministic.

The worker passes the ``workflows`` package through Temporal's sandbox instead of re-importing it for
every workflow it creates (``worker.workflow_runner``; py-spy showed the re-import at 18 % of a busy
worker's CPU). A passed-through module keeps the real ``datetime``, so the sandbox no longer
catches ``datetime.now()`` in it at run time, as it never did in the pure ``billing`` functions that
workflows call. This static check takes that job, for both, before any code runs; the recorded-history
replay tests (``tests/test_replay.py``) catch the rest."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import worker as worker_module

ROOT = Path(__file__).resolve().parent.parent
#: Code that runs inside workflows: the workflow modules and the pure billing rules they import.
CHECKED = sorted([*(ROOT / "workflows").rglob("*.py"), *(ROOT / "billing").rglob("*.py")])

#: Modules whose import alone means I/O, threads, randomness or the clock.
FORBIDDEN_MODULES = {
    "os",
    "socket",
    "random",
    "secrets",
    "threading",
    "subprocess",
    "time",
    "uuid",
    "httpx",
    "requests",
    "sqlalchemy",
    "psycopg",
    "smtplib",
    "urllib",
    "persistence",
    "activities",
    "api",
    "accounting",
    "integrations",
}
#: Calls that read the clock (``workflow.now()`` is the deterministic one).
FORBIDDEN_CALLS = {"now", "utcnow", "today", "monotonic", "perf_counter"}
#: Built-ins that do I/O.
FORBIDDEN_BUILTINS = {"open", "input", "print", "exec", "eval"}


def violations(source: str, name: str = "<source>") -> list[str]:
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        found += [
            f"{name}:{node.lineno}: imports {m}" for m in modules if m.split(".")[0] in FORBIDDEN_MODULES
        ]
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_CALLS:
                owner = func.value
                # workflow.now() and workflow.time() are Temporal's deterministic clock.
                if not (isinstance(owner, ast.Name) and owner.id == "workflow"):
                    found.append(f"{name}:{node.lineno}: calls .{func.attr}()")
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_BUILTINS:
                found.append(f"{name}:{node.lineno}: calls {func.id}()")
    return found


@pytest.mark.parametrize("path", CHECKED, ids=[str(p.relative_to(ROOT)) for p in CHECKED])
def test_workflow_code_reads_no_clock_and_does_no_io(path: Path) -> None:
    assert violations(path.read_text(), str(path.relative_to(ROOT))) == []


def test_the_check_catches_what_the_sandbox_would_have() -> None:
    sample = (
        "import random\nfrom datetime import datetime\nfrom persistence.db import session_scope\n"
        "def f():\n    a = datetime.now()\n    b = date.today()\n    c = workflow.now()\n    open('x')\n"
    )
    assert violations(sample) == [
        "<source>:1: imports random",
        "<source>:3: imports persistence.db",
        "<source>:5: calls .now()",
        "<source>:6: calls .today()",
        "<source>:8: calls open()",
    ]


def test_the_worker_passes_only_its_workflow_package_through() -> None:
    restrictions = worker_module.WORKFLOW_RUNNER.restrictions
    assert "workflows" in restrictions.passthrough_modules and not restrictions.passthrough_all_modules
