"""The package's layering, read from its source: no import circles (imports inside functions
counted: they hide circles, not remove them), and no task reaching into another task's modules;
and the suite's own grouping on workers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import transferlab

PACKAGE = Path(transferlab.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (``from a import b``
    counts as ``a.b`` where that is a module, else as ``a``)."""
    modules, graph = _modules(), {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                edges |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                          for a in node.names}  # fmt: skip
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_circles_are_found_where_there_are_some():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert circles(graph) == [["a", "b", "c"]]


def test_the_package_has_no_import_circles():
    assert circles(import_graph()) == []


def test_no_task_imports_another_tasks_internals():
    """A task may use another's public API (its package: ``transferlab.tasks.classify``), never
    its modules (``transferlab.tasks.classify.train``)."""

    def task_of(module: str) -> str | None:
        parts = module.split(".")
        return parts[2] if len(parts) > 2 and parts[1] == "tasks" else None

    crossing = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if task_of(source) and len(target.split(".")) > 3 and task_of(source) != task_of(target)
    )
    assert crossing == []


@pytest.mark.xdist_group("grouping-check")
def test_a_test_group_stays_on_one_worker(request):
    """`make test` keeps each xdist_group on one worker (module fixtures that train runs are built
    once) by the group's tag on the test's id. pytest 9.2 stores ids where pytest-xdist 3.8 cannot
    tag them, and every group was split without a word: the serve fixtures were built twice."""
    if getattr(request.config.option, "loadgroup", False):  # a worker of `pytest -n N --dist loadgroup`
        assert request.node.nodeid.endswith("@grouping-check"), request.node.nodeid
