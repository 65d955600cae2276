"""core.evaluate as a package: what importing it loads, its public names, no second normalisation.

(Which parts of core it may import is checked for all of core in tests/test_layering.py.)"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import core.evaluate

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "core" / "evaluate"


def test_importing_core_evaluate_loads_neither_streamlit_nor_the_run_store():
    code = "import sys, core.evaluate\nprint(sorted(m for m in ('streamlit', 'core.runs', 'core.cli') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_package_re_exports_an_explicit_list():
    init = ast.parse((PACKAGE / "__init__.py").read_text())
    star = [n for n in ast.walk(init) if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)]
    assert star == []
    assert len(set(core.evaluate.__all__)) == len(core.evaluate.__all__)
    assert all(hasattr(core.evaluate, name) for name in core.evaluate.__all__)
    # what the Evaluation page and its sections call
    assert {"load_model", "predictions_for_checkpoint", "cache_path", "summarize", "misclassified", "top_k",
            "numpy_replay", "predict_image", "MAX_UPLOAD_BYTES"} <= set(core.evaluate.__all__)


def test_image_layout_and_normalisation_are_not_re_implemented():
    """core.data.images is their one home: no permutes, transposes or CIFAR statistics in the code here."""
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            assert name not in {"permute", "transpose", "MEAN", "STD", "CIFAR_MEAN", "CIFAR_STD"}, (path.name, name)
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                assert node.value not in (0.4914, 0.4822, 0.4465, 0.2470, 0.2435, 0.2616), (path.name, node.value)
