"""The live view of a training run: one element (live_view.js, live_view.css) that draws the progress
line, what the trainer does now, four numbers and the loss chart, and changes them in place.

Served by `python -m dashboard` (dashboard/server.py), it asks dashboard.live_feed's route for what is
new about once a second and asks for a page rerun only when the rest of the page is out of date: a
page that only watches costs its server one small request a second per tab and its browser almost
nothing (bench/live_overhead.py). Served without the route (AppTest, a bare `streamlit run`), the
Training page feeds it from a fragment instead (run_panel._live). With no run active, the same
element only watches the runs' statuses and draws nothing.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import live_feed
from dashboard.figures import training as ft
from dashboard.training_keys import PROGRESS_CLASS

_HERE = Path(__file__).resolve().parent
NAME = "cifarlab_live"
COLORS = {"raw": ft.RAW_COLOR, "smooth": ft.SMOOTH_COLOR, "test": ft.TEST_COLOR, "means": ft.EPOCH_MEAN_COLOR,
          "event": ft.EVENT_COLOR}
_component = st.components.v2.component(NAME, js=(_HERE / "live_view.js").read_text(encoding="utf-8"),
                                        css=(_HERE / "live_view.css").read_text(encoding="utf-8"),
                                        isolate_styles=False)   # tests and the bench find it by class


def _rerun() -> None:
    """The view saw the page out of date: the rerun its trigger starts redraws the page."""


def show(run_id: int | None, *, language: str, seen: dict[int, str], view: dict | None = None,
         poll: bool = True) -> None:
    """The view of `run_id` (None: nothing to show, only watch the statuses) with `view`
    (live_feed.view) as the page run read it; `seen`: the statuses this page run shows. `poll`: ask
    the route for what is new (False: a fragment calls this again with new data)."""
    url = live_feed.route_path(st.get_option("server.baseUrlPath"))
    data = {"run_id": run_id, "lang": language, "poll": url if poll else None,
            "every_ms": live_feed.POLL_EVERY_MS, "rerun_gap_ms": live_feed.RERUN_GAP_MS, "seen": live_feed.statuses_digest(seen),
            "settled": view["settled"] if view else None, "view": view,
            "words": live_feed.loss_words(language), "colors": COLORS, "progress_class": PROGRESS_CLASS}
    _component(data=data, key=f"{NAME}_{'idle' if run_id is None else run_id}", on_changed_change=_rerun)
