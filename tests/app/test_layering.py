"""The engine's house rules, read from its source with `ast` (no TensorFlow needed).

cnn_core is built in rooms that follow the data flow. A module may import its own room and the
rooms below it, never one above, and no chain of imports may come back to where it started.
Imports inside functions count too: a lazy import is still a dependency.
"""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "cnn_core"

# The layer order, written once: each room may import only itself and those before it.
LAYERS = ("settings", "data", "models", "runs", "explain", "catalog", "cli")
ROOM_OF_TOP_MODULE = {"__init__": "settings", "__main__": "cli"}

# The run store is read by the app on every page and by a queued worker: it stays small.
STORE_MODULES = (
    "runs.run_config",
    "runs.store",
    "runs.status",
    "runs.metrics_log",
    "runs.checkpointing",
)
HEAVY = ("tensorflow", "keras")


def module_name(path: Path) -> str:
    """cnn_core/runs/store.py -> "runs.store"; cnn_core/data/__init__.py -> "data"."""
    parts = path.relative_to(ENGINE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


def room(module: str) -> str:
    first = module.split(".")[0]
    return ROOM_OF_TOP_MODULE.get(first, first)


def engine_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ENGINE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported engine module or outside package, line, at module level) for every import."""
    tree = ast.parse(path.read_text(), filename=str(path))
    top_level = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from cnn_core.runs import store` imports a module
                full = f"{node.module}.{alias.name}"
                targets.append(full if full.removeprefix("cnn_core.") in known else node.module)
        for target in targets:
            inner = target.removeprefix("cnn_core.") if target.startswith("cnn_core.") else target
            if target == "cnn_core":
                continue
            found.append((inner, node.lineno, id(node) in top_level))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = engine_modules()
    known = set(modules)
    return {
        name: {target for target, _, _ in imports_of(path, known) if target in known}
        for name, path in modules.items()
    }


def layering_breaches(graph: dict[str, set[str]]) -> list[str]:
    order = {name: i for i, name in enumerate(LAYERS)}
    return [
        f"{source} ({room(source)}) imports {target} ({room(target)})"
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if order[room(target)] > order[room(source)]
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_every_engine_module_belongs_to_a_room_of_the_layer_order():
    assert {room(name) for name in engine_modules()} <= set(LAYERS)


def test_no_room_imports_a_room_above_it():
    assert layering_breaches(import_graph()) == []


def test_the_engine_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_the_run_store_imports_no_tensorflow_at_module_level():
    modules = engine_modules()
    for name in STORE_MODULES:
        if name not in modules:
            continue
        heavy = [
            (target, line)
            for target, line, top in imports_of(modules[name], set(modules))
            if top and target.split(".")[0] in HEAVY
        ]
        assert heavy == [], f"cnn_core.{name} imports {heavy} at module level"


def test_the_checks_catch_a_deliberate_cycle_and_breach():
    """The checkers themselves, on the real graph with one import added."""
    graph = import_graph()
    graph["settings"] = graph["settings"] | {"runs.store"}  # settings -> store -> settings
    assert "settings (settings) imports runs.store (runs)" in layering_breaches(graph)
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1] and "settings" in cycle


@pytest.mark.parametrize(
    "source", ["import cnn_core.runs.store", "from cnn_core.runs import store"]
)
def test_both_import_forms_are_seen(tmp_path, source):
    path = tmp_path / "probe.py"
    path.write_text(f"def later():\n    {source}\n")
    assert imports_of(path, {"runs.store"}) == [("runs.store", 2, False)]
