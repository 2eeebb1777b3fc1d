"""The shape of the code (docs/architecture.md): layers import downwards only, no import cycle,
tabs share widgets through demos' shared modules rather than each other, small files, and long
functions say why they are long."""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

from conftest import ROOT

PACKAGES = ("models", "training", "demos")
MAX_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_REASON = "# long:"  # a function over MAX_FUNCTION_LINES says why, just above it or in its first lines


def module_files() -> dict[str, Path]:
    files = {"app": ROOT / "app.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            files[name] = path
    return files


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports, anywhere in the file (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from models import cam` imports the module models.cam; `from models.cam import overlay`, models.cam
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from models.cam import X` -> models.cam
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    known = set(files)
    return {name: imports_of(name, path, known) for name, path in files.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_among_the_project_modules():
    graph = import_graph()
    assert {"models.registry", "training.train", "demos.sound", "app"} <= set(graph)
    assert "models.registry" in graph["models.predictor"] or "models.registry" in graph["models.factory"]
    assert cycles(graph) == []


def test_layers_import_downwards_only():
    """app -> demos -> models; training -> models; models imports neither."""
    allowed = {"models": {"models"}, "training": {"models", "training"}, "demos": {"models", "demos"},
               "app": {"models", "demos"}}
    wrong = [(name, dep) for name, deps in import_graph().items() for dep in deps
             if dep.split(".")[0] not in allowed[name.split(".")[0]]]
    assert wrong == []


def tabs() -> set[str]:
    """The demos modules whose build() app.py calls: one a tab."""
    tree = ast.parse((ROOT / "app.py").read_text())
    imported = {alias.asname or alias.name: f"{node.module}.{alias.name}" for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module == "demos" for alias in node.names}
    return {imported[call.func.value.id] for call in ast.walk(tree) if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute) and call.func.attr == "build"
            and isinstance(call.func.value, ast.Name) and call.func.value.id in imported}


def test_tabs_share_through_shared_modules_not_each_other():
    graph, tabs_ = import_graph(), tabs()
    assert {"demos.sound", "demos.live", "demos.image_explainer", "demos.training"} <= tabs_
    wrong = [(tab, dep) for tab in tabs_ for dep in graph[tab] if dep in tabs_]
    assert wrong == []


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for name, p in module_files().items() if name != "app"
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_a_long_function_says_why():
    unexplained = []
    for path in module_files().values():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                head = lines[first - 2: node.lineno + 11]  # the line above, signature, docstring and first lines
                if length > MAX_FUNCTION_LINES and not any(LONG_REASON in line for line in head):
                    unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
    assert unexplained == []


def test_every_data_set_has_a_schema_for_its_data_section():
    from training.dataset_registry import DATA_SCHEMAS, LOADERS
    from training.schema import DataBase
    assert set(DATA_SCHEMAS) == set(LOADERS)
    for name, cls in DATA_SCHEMAS.items():
        assert dataclasses.is_dataclass(cls) and issubclass(cls, DataBase), name
