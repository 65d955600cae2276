"""The parts stay apart: imports point one way (data <- train <- {runs, evaluate} <- {cli, dashboard}),
there are no import cycles, core never imports Streamlit, and pages stay listed."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Each part of core and what it may import (besides itself and the base modules).
BASE = {"core", "core.settings", "core.text", "core.atomic_file", "core.numpy_net", "core.playground", "core.i18n"}
ALLOWED = {
    "core.data": set(),
    "core.train": {"core.data"},
    "core.runs": {"core.data", "core.train"},
    "core.evaluate": {"core.data", "core.train"},
    "core.cli": {"core.data", "core.train", "core.runs", "core.evaluate"},
    "core.__main__": {"core.cli"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = REPO / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside functions; `from pkg import sub` counts
    as importing pkg.sub when sub is a module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _is_module(sub) else node.module)
    return found


def _sources(folder: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((REPO / folder).rglob("*.py"))}


def _part(module: str) -> str | None:
    if module in BASE:
        return None
    for part in sorted(ALLOWED, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    raise AssertionError(f"{module} belongs to no part: add it to a part or to BASE in {__file__}")


def test_core_imports_point_one_way():
    wrong = []
    for name, path in _sources("core").items():
        mine = _part(name)
        for target in _imports(path):
            if target.split(".")[0] in {"streamlit", "dashboard"}:
                wrong.append(f"{name} imports {target}")
            if not target.startswith("core.") and target != "core":
                continue
            theirs = _part(target) if target != "core" else None
            if mine is None and target not in BASE and target != "core":
                wrong.append(f"base module {name} imports {target}")
            elif mine is not None and theirs not in (None, mine) and theirs not in ALLOWED[mine]:
                wrong.append(f"{name} ({mine}) imports {target} ({theirs})")
    assert wrong == []


def test_dashboard_never_imports_the_cli():
    wrong = [f"{name} imports {t}" for name, path in _sources("dashboard").items()
             for t in _imports(path) if t == "core.cli" or t.startswith("core.cli.")]
    assert wrong == []


def test_there_are_no_import_cycles():
    modules = {**_sources("core"), **_sources("dashboard")}
    graph = {name: {t for t in _imports(path) if t in modules and t != name} for name, path in modules.items()}
    cycles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [node, nxt]) if nxt in trail else f"{node} -> {nxt}")
            elif nxt not in state:
                visit(nxt, trail + [node])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_the_layering_check_catches_a_wrong_import(tmp_path):
    """The rules above are live: an evaluate module importing the run store is reported."""
    assert _part("core.evaluate.metrics") == "core.evaluate"
    assert "core.runs" not in ALLOWED["core.evaluate"] and "core.evaluate" not in ALLOWED["core.runs"]
    bad = tmp_path / "bad.py"
    bad.write_text("from core.runs import store\nfrom core.data import images\n")
    assert _imports(bad) == {"core.runs.store", "core.data.images"}


def test_importing_all_of_core_does_not_load_streamlit():
    modules = [m for m in _sources("core") if not m.endswith("__main__")]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_nothing_patches_the_import_path():
    offenders = [str(p.relative_to(REPO)) for folder in ("core", "dashboard", "bench")
                 for p in (REPO / folder).rglob("*.py")
                 if any(s in p.read_text() for s in ("sys.path", "PYTHONPATH", "noqa: E402"))]
    assert offenders == []


def test_every_page_is_listed_in_the_navigation():
    app = (REPO / "dashboard" / "app.py").read_text()
    for page in sorted((REPO / "dashboard" / "views").glob("*.py")):
        assert f'"{page.name}"' in app, f"{page.name} is not in dashboard/app.py's PAGES"
