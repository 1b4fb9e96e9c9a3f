"""The house rules that keep the layer small and the code easy to change: the layer holds only
what the functions import, and no module of the project imports itself back."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.environment import TEST_ENVIRONMENT
from tests.support import ROOT

LAYER = ROOT / "layers" / "encounter" / "python"
TOOLS = ROOT / "tools"
BUILT_LAYER = ROOT / ".aws-sam" / "build" / "EncounterLayer" / "python"
# Modules a Lambda function never needs: tools, command lines, servers, processes, YAML.
FORBIDDEN_IN_LAYER = ("fhir_encounter_tools", "argparse", "http.server", "subprocess", "yaml")


def source_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if "__pycache__" not in path.parts and path.is_file():
            yield path


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Modules a file imports at run time (not under ``if TYPE_CHECKING``), fully qualified."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for statement in block.body
        for node in ast.walk(statement)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, Path]:
    modules = {}
    for root in (LAYER, TOOLS):
        for path in source_files(root):
            if path.suffix == ".py":
                modules[module_name(path, root)] = path
    return modules


def test_the_layer_holds_only_python_and_its_requirements() -> None:
    others = [
        str(path.relative_to(LAYER))
        for path in source_files(LAYER)
        if path.suffix != ".py" and path.name != "requirements.txt"
    ]
    assert others == []
    assert (LAYER / "requirements.txt").is_file()


@pytest.mark.parametrize("path", [p for p in source_files(LAYER) if p.suffix == ".py"], ids=str)
def test_no_layer_module_imports_tools_or_developer_machinery(path: Path) -> None:
    imported = imports_of(path, module_name(path, LAYER))
    bad = sorted(
        name
        for name in imported
        for banned in FORBIDDEN_IN_LAYER
        if name == banned or name.startswith(f"{banned}.")
    )
    assert bad == []


STORE = LAYER / "fhir_encounter" / "store"


def search_imports(path: Path) -> list[str]:
    """What a store module imports of search/, at run time or for types."""
    tree = ast.parse(path.read_text(), str(path))
    names = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    ]
    return sorted(
        name for name in names if name == "fhir_encounter.search" or name.startswith("fhir_encounter.search.")
    )


@pytest.mark.parametrize("path", [p for p in source_files(STORE) if p.suffix == ".py"], ids=lambda p: p.name)
def test_the_store_never_imports_search(path: Path) -> None:
    """search/ builds on store/'s vocabulary (fields, rows, plans), never the reverse: the read
    function then loads no search module."""
    assert search_imports(path) == []


def test_the_layering_check_finds_a_store_module_that_imports_search(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from fhir_encounter.search.planning import plan\nimport fhir_encounter.search.query\n")
    assert search_imports(module) == ["fhir_encounter.search.planning", "fhir_encounter.search.query"]


def search_and_pydantic_loaded_by(function: str) -> list[str]:
    """The search and pydantic modules that importing functions/<function>/app.py loads (its
    composition root included), in a fresh interpreter as a cold start would."""
    app = str(ROOT / "functions" / function / "app.py")
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('app', {app!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    environment = {**TEST_ENVIRONMENT, "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.splitlines()[-1])
    return [name for name in loaded if name.startswith(("fhir_encounter.search", "pydantic"))]


def test_the_read_function_loads_no_search_module_and_validates_with_pydantic() -> None:
    """A read needs no query model, registry, paging or Bundle code (read.py and subsetting.py
    are apart from them for that); its id is validated by a pydantic model, as the design asks."""
    loaded = search_and_pydantic_loaded_by("read_encounter")
    assert "pydantic" in loaded
    assert [name for name in loaded if name.startswith("fhir_encounter.search")] == []


def test_the_load_check_sees_the_search_functions_search_modules() -> None:
    loaded = search_and_pydantic_loaded_by("search_encounters")
    assert "fhir_encounter.search.query" in loaded
    assert "pydantic" in loaded


def test_the_project_has_no_import_cycles() -> None:
    modules = project_modules()
    graph = {
        name: sorted(target for target in imports_of(path, name) if target in modules and target != name)
        for name, path in modules.items()
    }
    cycles = strongly_connected(graph)
    assert [sorted(c) for c in cycles if len(c) > 1] == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}
    assert [sorted(c) for c in strongly_connected(graph) if len(c) > 1] == [["a", "b", "c"]]


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the strongly connected components of a directed graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, []):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_sam_build_ships_only_runtime_code_in_the_layer() -> None:
    """`make test` runs `sam build` first; without a build (a bare pytest run) this is skipped,
    except in CI, where the build must exist."""
    if not BUILT_LAYER.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs `make template` (sam build) before the tests: no built layer found")
        pytest.skip("no sam build output: run `make build`")
    assert (BUILT_LAYER / "fhir_encounter" / "routes.py").is_file()
    shipped = {path.relative_to(BUILT_LAYER).parts[0] for path in BUILT_LAYER.iterdir()}
    assert "fhir_encounter_tools" not in shipped
    assert not {"yaml", "_yaml"} & shipped
    assert not any(p.name.lower().startswith("pyyaml") for p in BUILT_LAYER.iterdir())
    assert [str(p) for p in BUILT_LAYER.rglob("*.java")] == []
    own = [p for p in source_files(BUILT_LAYER / "fhir_encounter") if p.suffix not in (".py", ".pyc")]
    assert own == []


def test_no_test_module_imports_another() -> None:
    """Shared helpers live in tests/support.py; test modules and conftest files are never imported."""
    tests = ROOT / "tests"
    offenders = []
    for path in source_files(tests):
        if path.suffix != ".py":
            continue
        for name in imports_of(path, module_name(path, ROOT)):
            last = name.rsplit(".", 1)[-1]
            if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
