"""The shape of the code: no import cycles in bot/, and listeners that never import each other
(what several need lives outside them). Read statically, TYPE_CHECKING imports included."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTENERS = "bot.slack.listeners"
# Listener modules may import these from their own package; nothing else in it.
LISTENER_SHARED = {f"{LISTENERS}.deps"}


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in (root / "bot").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(root).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The bot modules `path` imports (`from a import b` is a.b when that is a module)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                out.add(full if full in known else node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name in known}


@cache
def graph(root: Path = ROOT) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
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
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_cycles_are_found() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def listener_modules() -> list[str]:
    return sorted(
        name
        for name, path in modules().items()
        if name.startswith(LISTENERS + ".") and path.name != "__init__.py"
    )


@pytest.mark.parametrize("module", listener_modules())
def test_listener_modules_do_not_import_each_other(module: str) -> None:
    edges = graph()
    siblings = {name for name in edges[module] if name.startswith(LISTENERS)}
    assert siblings <= LISTENER_SHARED, f"{module} imports {siblings - LISTENER_SHARED}"


def test_each_listener_group_registers_its_own_modules() -> None:
    groups = [f"{LISTENERS}.{group}" for group in ("actions", "commands", "events", "views")]
    edges = graph()
    for group in groups:
        members = {name for name in edges if name.startswith(group + ".")}
        assert members, group
        assert members <= edges[group], f"{group} does not register {members - edges[group]}"
