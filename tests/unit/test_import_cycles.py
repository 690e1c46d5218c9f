"""No import cycles among the modules of monitor/, streams/ and cli/.

Every import counts: module-level, function-level ("import it late to dodge the cycle") and
`if TYPE_CHECKING:` ones, since each still ties the two modules together. import-linter's
contracts check layers between packages; this checks single modules, with the stdlib only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("monitor", "streams", "cli")

Graph = dict[str, dict[str, int]]  # module -> {imported module: line of the first import}


def modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every first-party module under `root`."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _targets(node: ast.AST, module: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, *([node.module] if node.module else [])])
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(root: Path) -> Graph:
    """Which first-party modules each module imports (an attribute import counts as its module)."""
    mods = modules(root)
    graph: Graph = {name: {} for name in mods}
    for name, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in _targets(node, name, path.name == "__init__.py"):
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].setdefault(target, getattr(node, "lineno", 0))
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(groups)


def describe(graph: Graph, group: list[str]) -> str:
    """The imports inside one cycle, each with the line it is on."""
    edges = [
        f"{a} -> {b} ({a.replace('.', '/')}.py:{line})"
        for a in group
        for b, line in sorted(graph[a].items())
        if b in group
    ]
    return "\n  ".join(edges)


def test_no_import_cycles() -> None:
    graph = import_graph(ROOT)
    found = cycles(graph)
    assert not found, "import cycles:\n  " + "\n\n  ".join(describe(graph, g) for g in found)


def test_a_cycle_is_found_with_its_imports() -> None:
    graph: Graph = {"a": {"b": 3}, "b": {"c": 5}, "c": {"a": 7}, "d": {"a": 1}, "e": {}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert "c -> a (c.py:7)" in describe(graph, ["a", "b", "c"])
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_late_and_type_checking_imports_count(tmp_path: Path) -> None:
    package = tmp_path / "monitor"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "one.py").write_text("def f():\n    from monitor.two import g\n")
    (package / "two.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import one\n"
    )
    graph = import_graph(tmp_path)
    assert graph["monitor.one"] == {"monitor.two": 2}
    assert graph["monitor.two"]["monitor.one"] == 3
    assert cycles(graph) == [["monitor.one", "monitor.two"]]
