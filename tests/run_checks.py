"""Checks shared by the tests that train stored runs (test-only helpers)."""
from __future__ import annotations

import html
import json
import re

from core.runs.store import RunStore

STEPS_PER_EPOCH = 512 // 64  # TrainConfig.smoke(): 512 synthetic images, batch 64


def assert_complete_history(store: RunStore, run_id: int, epochs: int, steps_per_epoch: int = STEPS_PER_EPOCH) -> None:
    """Every step's loss once, no gaps or repeats (also across stops and resumes), one test accuracy per epoch."""
    frame = store.metrics(run_id)
    assert not frame.duplicated(["name", "step"]).any()
    loss = frame[frame["name"] == "train_loss"].sort_values("step")
    assert loss["step"].tolist() == list(range(1, epochs * steps_per_epoch + 1)), "gaps or repeats in the steps"
    test_acc = frame[frame["name"] == "epoch_test_acc"].sort_values("step")
    assert test_acc["epoch"].tolist() == list(range(1, epochs + 1))
    assert test_acc["step"].tolist() == [e * steps_per_epoch for e in range(1, epochs + 1)]


def live_views(at) -> list[dict]:
    """The data of each live view an AppTest page draws (dashboard.live_view.show), parsed."""
    from dashboard.live_view import NAME

    return [json.loads(el.proto.json) for el in at.get("bidi_component") if el.proto.component_name == NAME]


def progress_shown(at) -> list[tuple[int, str]]:
    """The run progress lines an AppTest page shows: (percent, text) of a finished run's
    (dashboard.run_panel.progress_line) and of an active run's live view (its first data)."""
    from dashboard.training_keys import PROGRESS_CLASS

    shown = [(round(100 * min(max(v["view"]["progress"]["fraction"], 0.0), 1.0)), v["view"]["progress"]["text"])
             for v in live_views(at) if v["view"]]
    for element in at.markdown:
        if f'class="{PROGRESS_CLASS}"' in element.value:
            percent = int(re.search(r'aria-valuenow="(\d+)"', element.value).group(1))
            text = re.search(r'aria-label="([^"]*)"', element.value).group(1)
            shown.append((percent, html.unescape(text)))
    return shown
