"""The layers stay apart: core never imports Streamlit, pages stay thin."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_core_module_imports_streamlit_or_dashboard():
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_modules(p) & {"streamlit", "dashboard"})
        for p in sorted((REPO / "core").glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_all_of_core_does_not_load_streamlit():
    modules = [f"core.{p.stem}" for p in sorted((REPO / "core").glob("*.py")) if p.stem != "__main__"]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_page_is_listed_in_the_navigation():
    app = (REPO / "dashboard" / "app.py").read_text()
    for page in sorted((REPO / "dashboard" / "views").glob("*.py")):
        assert f'"{page.name}"' in app, f"{page.name} is not in dashboard/app.py's PAGES"
