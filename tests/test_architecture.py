"""The layout's rules, checked statically so they stay true: imports point down the layers, routers never
import each other, no module imports itself back through others, and no module grows past a size a
reader can hold. Each rule has a sample below proving it can fail."""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ("core", "billing", "persistence", "documents", "accounting", "integrations", "activities", "workflows")
APP += ("services", "api", "invoiceflow", "standins", "bench", "worker")
#: Where each layer may import from (besides itself and the standard library and third parties).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "billing": set(),
    "persistence": {"core", "billing", "workflows"},  # workflows.payloads: the shared vocabulary
    "documents": {"core", "billing", "persistence"},
    "accounting": {"core", "billing", "persistence", "workflows"},
    "integrations": {"core", "billing"},
}
MAX_LINES = 500
#: Left over 500 lines on purpose: stand-ins mirror a provider's whole API, migrations are history,
#: the bench is one harness.
SIZE_EXEMPT = ("standins/", "persistence/migrations/", "bench/", "tests/")


def _modules() -> list[Path]:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [ROOT / f for f in tracked if f.split("/")[0].removesuffix(".py") in APP]


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_only(tree: ast.AST) -> set[int]:
    """Ids of import nodes under ``if TYPE_CHECKING:``: annotations only, never run."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.If)
            and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING"
        ):
            found |= {id(n) for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)}
    return found


def imports_of(source: str) -> Iterator[str]:
    """Every module an import statement names at run time, at any depth (imports inside functions count
    too; imports for type checkers only do not)."""
    tree = ast.parse(source)
    skip = _type_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from persistence import projects" imports the module persistence.projects: name it, and
            # let the graph walk "pkg.mod.Name" up to the module it is in.
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def layer_violations(module: str, imported: list[str]) -> list[str]:
    layer = module.split(".")[0]
    if layer not in ALLOWED:
        return []
    return [
        target
        for target in imported
        if target.split(".")[0] in APP
        and target.split(".")[0] != layer
        and target.split(".")[0] not in ALLOWED[layer]
    ]


def router_violations(module: str, imported: list[str]) -> list[str]:
    if not module.startswith("api.routes."):
        return []
    return [t for t in imported if t.startswith("api.routes") and t != module]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_name(p): p for p in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for target in imports_of(path.read_text()):
            # "from pkg.mod import x" names pkg.mod; a package __init__ re-exporting is not a cycle of logic
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                targets.add(target)
        graph[name] = targets
    return graph


def test_layers_import_only_downwards() -> None:
    bad = {
        _name(p): v for p in _modules() if (v := layer_violations(_name(p), list(imports_of(p.read_text()))))
    }
    assert bad == {}


def test_routers_never_import_each_other() -> None:
    bad = {
        _name(p): v for p in _modules() if (v := router_violations(_name(p), list(imports_of(p.read_text()))))
    }
    assert bad == {}


def test_no_import_cycles() -> None:
    graph = _graph()
    # A package importing its own submodules (re-exports) is not a loop between concerns.
    for name in graph:
        graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    assert cycles(graph) == []


def test_no_module_is_too_big() -> None:
    big = {
        str(p.relative_to(ROOT)): n
        for p in _modules()
        if not str(p.relative_to(ROOT)).startswith(SIZE_EXEMPT)
        and (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert big == {}


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("core.settings", "from workflows.payloads import X", layer_violations),
        ("billing.money", "import persistence.models", layer_violations),
        ("api.routes.refunds", "from api.routes.invoices import update_error", router_violations),
    ],
)
def test_the_rules_can_fail(module: str, source: str, rule) -> None:  # type: ignore[no-untyped-def]
    assert rule(module, list(imports_of(source))) != []


def test_a_cycle_is_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
