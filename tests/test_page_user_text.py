"""User-supplied text (run names, file names) shows as typed: never a link, an image or formatting."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs.store import RunStore
from core.train.config import TrainConfig
from dashboard.common import chart_text, plain

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
HOSTILE = ["![x](http://host/track.png)", "[click](https://example.com/steal)", "**bold** :red[alarm] $x^2$",
           "<img src=http://host/a.png>", "see www.example.com"]
# What each hostile name would do if markdown acted on it (unescaped)
UNSAFE = re.compile(r"(?<!\\)!\[x|\[click(?<!\\)\]\(|(?<!\\)\*\*bold|(?<!\\):red\[|(?<!\\)<img|(?<!\\)\$x\^"
                    r"|www\.example")


@pytest.mark.parametrize("name", HOSTILE)
def test_plain_text_escapes_what_markdown_would_act_on(name):
    escaped = plain(name)
    assert not UNSAFE.search(escaped), escaped
    assert re.sub(r"\\(.)", r"\1", escaped) == name  # nothing lost: unescaping gives the text back


def test_chart_text_escapes_html():
    assert chart_text('<a href="https://x">y</a>') == '&lt;a href="https://x"&gt;y&lt;/a&gt;'


def _all_text(node) -> str:
    """Everything in the page's tree as protobuf text, options included."""
    proto = getattr(node, "proto", None)
    own = str(proto) if proto is not None and hasattr(proto, "ListFields") else ""
    children = getattr(node, "children", None)
    return own + "".join(_all_text(c) for c in (children.values() if isinstance(children, dict) else []))


def _texts(node) -> list[str]:
    """Every element and block of the page as protobuf text (all its strings: bodies, labels, help,
    options), from the AppTest tree, recursively."""
    out = []
    proto = getattr(node, "proto", None)
    if proto is not None and hasattr(proto, "ListFields") and not str(proto).startswith("arrow_data"):
        # (tables, arrow_data, show every cell as text)
        # Select options and input placeholders are plain text in the browser (only labels, bodies and help render
        # markdown), so their lines are left out; everything else must be escaped.
        out.append("\n".join(line for line in str(proto).splitlines()
                             if not line.startswith(("options:", "raw_value:", "raw_values:", "default_values:", "placeholder:"))))
    children = getattr(node, "children", None)
    for child in (children.values() if isinstance(children, dict) else []):
        out.extend(_texts(child))
    return out


def _stored_runs_named(names: list[str]) -> RunStore:
    store = RunStore()
    for i, name in enumerate(names):
        run = store.create_run(TrainConfig.smoke(), name=name)
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
        store.mark_finished(run.id, "stopped" if i % 2 else "failed", f"Run '{name}' ended: {name}")
    return store


def test_training_page_shows_hostile_run_names_as_text():
    _stored_runs_named(HOSTILE)
    at = AppTest.from_file(str(DASHBOARD / "views" / "training.py"), default_timeout=60)
    at.session_state["dataset_kind"] = "synthetic"
    at.run()
    assert not at.exception
    texts = _texts(at._tree)
    assert any("example" in t for t in texts)  # the newest run's name and message are there...
    unsafe = [t for t in texts if UNSAFE.search(t)]
    assert unsafe == []                      # ...as text only


def test_evaluation_page_shows_a_hostile_run_name_as_text(session_dirs):
    from core import data
    from core.train import engine

    store = RunStore()
    cfg = TrainConfig.smoke(train_subset=256, test_subset=128)
    run = store.create_run(cfg, name=HOSTILE[0])
    engine.fit(cfg, data.load_synthetic(session_dirs["synthetic"]), store.run_dir(run.id))
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.mark_finished(run.id, "completed", "done")
    at = AppTest.from_file(str(DASHBOARD / "views" / "evaluation.py"), default_timeout=120).run()
    assert not at.exception
    texts = _texts(at._tree)
    assert "track.png" in _all_text(at._tree)  # the run is on the page (its picker shows plain text)
    assert [t for t in texts if UNSAFE.search(t)] == []
    shutil.rmtree(store.run_dir(run.id) / "eval", ignore_errors=True)
