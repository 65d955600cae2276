"""The Evaluation page's look-inside views in AppTest: epoch scrubber, history filters, saliency, feature map."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core import data
from core.runs.store import RunStore
from core.train import engine
from core.train.config import TrainConfig
from core.train.history import HistoryRecorder, read_history
from test_page_evaluation import K, PAGE, TIMEOUT, arr, chart


@pytest.fixture(scope="module")
def history_store(tmp_path_factory, session_dirs):
    """One finished 3-epoch MLP run on the synthetic set, with its prediction history."""
    dataset = data.load_synthetic(session_dirs["synthetic"])
    root = tmp_path_factory.mktemp("inside-runs") / "runs"
    store = RunStore(root)
    cfg = TrainConfig.smoke(train_subset=1000, test_subset=None, epochs=3, batch_size=64, lr=1e-3)
    run = store.create_run(cfg, name="three epochs")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    folder = store.run_dir(run.id)
    result = engine.fit(cfg, dataset, folder, on_predictions=HistoryRecorder(folder).record)
    store.mark_finished(run.id, result.status, result.message, best_test_acc=result.best_test_acc,
                        final_test_acc=result.final.get("test_acc"), final_metrics=result.final)
    return root, dataset, run.id


@pytest.fixture
def inside(history_store):
    root, dataset, run_id = history_store
    target = Path(os.environ["CIFARLAB_RUNS_DIR"])
    shutil.copytree(root, target)
    store = RunStore(target)
    return store, dataset, run_id, read_history(store.run_dir(run_id))


def open_page(**state) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def test_the_epoch_scrubber_redraws_accuracy_per_class_and_confusion(inside):
    store, dataset, run_id, history = inside
    at = open_page()
    prefix = K["HISTORY_PREFIX"]
    slider = at.select_slider(key=f"{prefix}_epoch")
    assert list(slider.options) == ["1", "2", "3"] and slider.value == 3          # follows the newest epoch
    labels = history.labels.astype(int)
    for epoch in (1, 2, 3):
        at.select_slider(key=f"{prefix}_epoch").set_value(epoch).run()
        assert not at.exception
        acc = float((history.predicted[epoch - 1] == labels).mean())
        assert metric(at, "Test accuracy at this epoch") == f"{acc:.1%}"
        heat = chart(at, f"{prefix}_per_class")
        assert heat["data"][0]["type"] == "heatmap"
        confusion = chart(at, f"{prefix}_confusion")
        cells = arr(confusion["data"][0]["z"]).astype(float)
        assert cells.sum() == len(labels)
        assert np.trace(cells) == (history.predicted[epoch - 1] == labels).sum()
    assert any("how to read" in c.value.lower() or "move the slider" in c.value.lower() for c in at.caption)


def test_history_filters_narrow_the_browser_and_the_strips_show_every_epoch(inside):
    store, dataset, run_id, history = inside
    at = open_page()
    at.selectbox(key=K["HISTORY_FILTER_KEY"]).set_value("never").run()
    assert not at.exception
    correct = history.predicted == history.labels[None]
    never = ~correct.any(0)
    last = history.predicted[-1] != history.labels          # the best checkpoint may be an earlier epoch
    shown = [c for img in at.image for c in img.captions if "→" in c]
    caption = next(c.value for c in at.caption if "misclassified images match" in c.value)
    total = int(caption.split(" ")[0].replace(",", ""))
    assert total <= int(never.sum()) and len(shown) == min(total, K["PAGE_SIZE"])
    assert any(":red-badge[" in m.value for m in at.markdown)    # the epoch strips under the thumbnails
    del last


def test_an_opened_image_shows_its_epochs_and_both_saliency_maps(inside):
    store, dataset, run_id, history = inside
    at = open_page(**{K["SORT_KEY"]: "loss"})
    show = [b for b in at.button if b.key and b.key.startswith(K["INSPECT_PREFIX"])]
    show[0].click().run()
    assert not at.exception
    at.toggle(key=K["SHOW_KEY"]).set_value(True).run()
    assert not at.exception
    assert any("Where the model looks" in m.value for m in at.markdown)
    captions = [c for img in at.image for c in img.captions]
    assert any(c.startswith("predicted class:") for c in captions)
    assert any(c.startswith("true class:") for c in captions)
    strip = next(m.value for m in at.markdown if "-badge[1: " in m.value)        # the dialog's strip
    assert strip.count("-badge[") == history.num_epochs and "-badge[3: " in strip
    at.slider(key=K["OPACITY_KEY"]).set_value(1.0).run()
    assert not at.exception


def test_the_feature_map_is_computed_on_request_then_cached(inside):
    store, dataset, run_id, history = inside
    at = open_page()
    at.button(key=K["MAP_BUTTON_KEY"]).click().run()
    assert not at.exception
    fig = chart(at, K["MAP_CHART_KEY"])
    assert len(fig["data"]) == len(dataset.classes) and fig["data"][0]["type"] == "scattergl"
    assert sum(len(arr(t["customdata"]).reshape(-1, 2)) for t in fig["data"]) == len(dataset.test.labels)
    again = open_page()                                      # a new session: read from the run's cache
    chart(again, K["MAP_CHART_KEY"])


def test_a_run_without_history_says_so(inside):
    store, dataset, run_id, history = inside
    (store.run_dir(run_id) / "history.npz").unlink()
    at = open_page()
    assert any("no prediction history" in i.value for i in at.info)


def test_an_uploaded_image_gets_a_saliency_map(inside):
    from test_page_evaluation import png

    at = open_page()
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value(("photo.png", png(), "image/png")).run()
    at.toggle(key="upload_" + K["SHOW_KEY"]).set_value(True).run()
    assert not at.exception
    assert any(c.startswith("predicted class:") for img in at.image for c in img.captions)
