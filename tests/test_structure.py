"""The package's shape, read from the source with ``ast``: no module imports another
module's private name, the axe_deploy modules import each other without cycles, and the
PTQ core stays free of Brevitas and the flow (docs/architecture.md).

Imports anywhere in a file count: at module level, inside functions, under ``if``."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "axe_deploy"


def module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_of(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> list[tuple[int, str, str | None]]:
    """(line, imported module, imported name or None) for every import in ``module``;
    relative imports resolved to absolute module names."""
    path = SOURCES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # `from . import x` in a.b.c is a.b; each further dot goes one up
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            found += [(node.lineno, base, alias.name) for alias in node.names]
    return found


def is_ours(module: str) -> bool:
    return module == "axe_deploy" or module.startswith("axe_deploy.")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_imports_a_private_name():
    bad = [f"{SOURCES[m].relative_to(PACKAGE.parent)}:{line}: from {target} import {name}"
           for m in SOURCES for line, target, name in imports(m)
           if is_ours(target) and name is not None and is_private(name)]
    bad += [f"{SOURCES[m].relative_to(PACKAGE.parent)}:{line}: import {target}"
            for m in SOURCES for line, target, name in imports(m)
            if is_ours(target) and name is None and any(is_private(p) for p in target.split("."))]
    assert not bad, ("a private name (leading underscore) is imported from another module; make it public "
                     "with a name that explains it, or move it:\n" + "\n".join(bad))


def import_graph() -> dict[str, set[str]]:
    """module -> the axe_deploy modules it imports (``from pkg import mod`` counts as mod)."""
    graph = {}
    for m in SOURCES:
        targets = set()
        for _, target, name in imports(m):
            if not is_ours(target):
                continue
            if name is not None and f"{target}.{name}" in SOURCES:
                target = f"{target}.{name}"
            while target not in SOURCES:  # `import axe_deploy.x.y` of a name that is no module
                target = target.rpartition(".")[0]
            if target != m:
                targets.add(target)
        graph[m] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a closed path of modules) for every strongly connected component of
    more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(closed_path(graph, set(component)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def closed_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest cycle through the first module of ``component`` (breadth-first search)."""
    start = min(component)
    parent, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    path = [v]
                    while parent[path[-1]] is not None:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def test_cycle_finder_reports_the_modules_of_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": {"e"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c", "a"]]


def test_axe_deploy_modules_import_each_other_without_cycles():
    found = cycles(import_graph())
    assert not found, ("import cycles among axe_deploy modules (imports inside functions count too); "
                       "move the shared code down a layer:\n" + "\n".join(" -> ".join(c) for c in found))


def test_ptq_core_imports_neither_brevitas_nor_the_flow_nor_quant():
    bad, ptq = [], [m for m in SOURCES if m == "axe_deploy.ptq" or m.startswith("axe_deploy.ptq.")]
    assert ptq, "no axe_deploy/ptq/ modules found"
    for m in ptq:
        for line, target, name in imports(m):
            full = f"{target}.{name}" if name is not None else target
            if (target.split(".")[0] == "brevitas" or target.startswith("axe_deploy.quant")
                    or full == "axe_deploy.quant" or "axe_deploy.flow.config" in (target, full)):
                bad.append(f"{SOURCES[m].relative_to(PACKAGE.parent)}:{line}: {full}")
    assert not bad, ("axe_deploy/ptq/ is the pure PTQ core (functions on tensors, docs/architecture.md): it must not "
                     "import brevitas, axe_deploy.quant or axe_deploy.flow.config; pass plain values in "
                     "instead:\n" + "\n".join(bad))


def test_annotation_keys_are_read_and_written_in_one_module():
    """The ``axe_deploy.*`` node metadata (the contract between stages) has one reader and
    writer, graph/annotation.py: no other module spells a key or the prefix."""
    from axe_deploy.graph.annotation import KEYS, PREFIX

    owner = PACKAGE / "graph" / "annotation.py"
    spelled = [f"{PREFIX}{key}" for key in KEYS] + [repr(PREFIX), f'"{PREFIX}"', "metadata_props"]
    found = [f"{path.relative_to(PACKAGE.parent)}: {word}" for path in SOURCES.values() if path != owner
             for word in spelled if word in path.read_text()]
    assert not found, f"annotation keys outside graph/annotation.py: {found}"
    assert all(word in owner.read_text() for word in ("metadata_props", "PREFIX + key"))
