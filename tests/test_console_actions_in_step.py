"""The console's actions call the JSON API's route functions (the same code path as the API): each call
must give every argument the route requires, so a route that gains one cannot silently break a console
button (two did while branches were merged; the browser story caught them, this finds them at once)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

ACTIONS = Path(__file__).resolve().parents[1] / "api" / "console" / "actions.py"


def drifted(source: str) -> list[str]:
    tree = ast.parse(source)
    routes = {
        alias.asname or alias.name: importlib.import_module(f"api.routes.{alias.name}")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "api.routes"
        for alias in node.names
    }
    problems = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in routes
            and node.keywords
        ):
            continue
        function = getattr(routes[node.func.value.id], node.func.attr)
        parameters = inspect.signature(function).parameters
        given = {k.arg for k in node.keywords}
        required = {name for name, p in parameters.items() if p.default is p.empty}
        if required - given or given - set(parameters):
            problems.append(f"line {node.lineno}: {node.func.value.id}.{node.func.attr}")
    return problems


def test_every_console_action_gives_its_route_what_it_requires() -> None:
    assert drifted(ACTIONS.read_text()) == []


def test_a_drifted_call_is_found() -> None:
    sample = "from api.routes import projects\nprojects.replay_event(event_id=1, db=2, dispatcher=3, _=4)\n"
    assert drifted(sample) == ["line 2: projects.replay_event"]
