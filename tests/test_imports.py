"""The project's modules import each other without cycles, late imports inside functions
included: data flows one way, and a module can be read knowing only what it imports."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("storage", "artifacts", "client", "openapi", "service", "console",
            "gateway")
TOP_MODULES = ("ddi_lite",)


def project_modules():
    """Every project module's dotted name and source file (tests are not part of it)."""
    modules = {name: ROOT / (name + ".py") for name in TOP_MODULES}
    for package in PACKAGES:
        folder = ROOT / package
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else package + "." + path.stem
            modules[name] = path
    return modules


def imported_modules(name, path, known):
    """The project modules `name` imports anywhere in its source (functions included)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            for alias in node.names:
                # `from storage import fleet` names a submodule; `from storage.db import write`
                # names something inside the module `storage.db`.
                submodule = base + "." + alias.name
                found.add(submodule if submodule in known else base)
    return {module for module in found if module in known and module != name}


def import_graph():
    known = project_modules()
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def cycles(graph):
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for neighbour in sorted(graph[node]):
            if neighbour not in index:
                visit(neighbour)
                low[node] = min(low[node], low[neighbour])
            elif neighbour in on_stack:
                low[node] = min(low[node], index[neighbour])
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


def test_the_graph_sees_the_project():
    graph = import_graph()
    assert "storage.fleet" in graph and "ddi_lite" in graph
    assert "storage.software" in graph["storage.fleet"]
    assert "storage.db" in graph["storage.models"]


def test_the_service_layer_knows_nothing_of_the_web_face():
    """service/ runs any WSGI app and reads settings by a schema it is given: ddi_lite
    imports it, never the other way round; it may use storage/ and artifacts/ (the accounts
    of a settings file, backups), never the client programs."""
    graph = import_graph()
    assert {"service.connections", "service.configuration"} <= graph["ddi_lite"]
    for name in graph:
        if name.startswith("service"):
            assert {module.partition(".")[0] for module in graph[name]} <= \
                {"service", "storage", "artifacts"}, name
    assert graph["service.connections"] == set()  # Waitress and the standard library only


def test_the_console_uses_the_rules_not_the_trunk_nor_the_client_programs():
    """console/ is a second way in: it calls storage/'s rules and may use artifacts/ and
    service/ (who sent a request, the body gate); ddi_lite mounts it and hands in what it
    shares, so the console never imports the trunk, nor the client programs."""
    graph = import_graph()
    assert "console" in graph["ddi_lite"]
    for name in graph:
        if name.startswith("console"):
            assert {module.partition(".")[0] for module in graph[name]} <= \
                {"console", "storage", "artifacts", "service"}, name


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_cycles_are_found(graph, expected):
    assert cycles(graph) == expected


def test_a_late_import_inside_a_function_counts(tmp_path):
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from storage import fleet\n    return fleet\n")
    assert imported_modules("late", module, {"late", "storage", "storage.fleet"}) == \
        {"storage.fleet"}
