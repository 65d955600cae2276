"""The Evaluation page's look-inside views in AppTest: epoch scrubber, history filters, saliency, feature map."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from core import data
from core.runs.store import RunStore
from core.train.history import read_history
from evaluate_fixtures import arr, chart, history_config, metric, open_page, page_constants, png, thumbnails, train_run

K = page_constants()


@pytest.fixture(scope="module")
def history_store(tmp_path_factory, session_dirs):
    """One finished 3-epoch MLP run on the synthetic set, with its prediction history."""
    dataset = data.load_synthetic(session_dirs["synthetic"])
    root = tmp_path_factory.mktemp("inside-runs") / "runs"
    run = train_run(RunStore(root), dataset, history_config(), "three epochs", history=True)
    return root, dataset, run.id


def runs_of_this_test(root: Path) -> RunStore:
    """A copy of a module's trained runs in this test's own CIFARLAB_RUNS_DIR (the page reads it)."""
    target = Path(os.environ["CIFARLAB_RUNS_DIR"])
    shutil.copytree(root, target)
    return RunStore(target)


@pytest.fixture
def inside(history_store):
    root, dataset, run_id = history_store
    store = runs_of_this_test(root)
    return store, dataset, run_id, read_history(store.run_dir(run_id))


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
    shown = thumbnails(at)
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
    at = open_page()
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value(("photo.png", png(), "image/png")).run()
    at.toggle(key="upload_" + K["SHOW_KEY"]).set_value(True).run()
    assert not at.exception
    assert any(c.startswith("predicted class:") for img in at.image for c in img.captions)


# ---- what the model has learned ------------------------------------------------------------------
def _image_captions(at) -> list[str]:
    return [c for img in at.image for c in img.captions]


def _checkpoint(store, run_id, at) -> dict:
    """The checkpoint the page evaluates (its checkpoint choice), read straight from the file."""
    from core.train.checkpoints import load_checkpoint

    return load_checkpoint(store.checkpoint_path(run_id, at.radio(key=K["CKPT_KEY"]).value))


def _top_units(at) -> list[int]:
    return [int(c.split(" ")[1]) for c in _image_captions(at) if c.startswith("unit ")]


def test_the_mlps_first_layer_units_are_drawn_and_sorted_by_norm_or_class_drive(inside):
    store, dataset, run_id, history = inside
    at = open_page(**{K["LEARNED_SHOW_KEY"]: True})
    w = {k: v.numpy() for k, v in _checkpoint(store, run_id, at)["model_state"].items()}
    assert any(h.value == "What the model has learned" for h in at.subheader)
    norms = np.linalg.norm(w["fc1.weight"].astype(np.float64), axis=1)
    assert _top_units(at) == np.argsort(-norms)[:10].tolist()                 # largest weight vector first
    assert any(c.startswith("The first 200 units") for c in _image_captions(at))
    at.radio(key=K["UNIT_ORDER_KEY"]).set_value("drive").run()
    at.selectbox(key=K["UNIT_CLASS_KEY"]).set_value(3).run()
    assert not at.exception
    drive = (w["fc3.weight"].astype(np.float64) @ w["fc2.weight"].astype(np.float64))[3]
    assert _top_units(at) == np.argsort(-drive)[:10].tolist()                 # the units that raise class 3 most
    assert any(dataset.classes[3] in c.value and "fc3 · fc2" in c.value for c in at.caption)
    at.select_slider(key=K["UNIT_COUNT_KEY"]).set_value(1000).run()
    assert any(c.startswith("The first 1,000 units") for c in _image_captions(at))


def _pattern_scores(at, classes) -> dict[str, tuple[float, float]]:
    out = {}
    for c in _image_captions(at):
        name, _, rest = c.partition(": score ")
        if name in classes and " to " in rest:
            start, end = rest.split(" (")[0].split(" to ")
            out[name] = (float(start), float(end))
    return out


def test_each_class_gets_a_pattern_whose_score_rose_during_the_ascent(inside):
    store, dataset, run_id, history = inside
    closed = open_page()
    assert not any(c.startswith("unit ") for c in _image_captions(closed))      # the section opens on request
    at = open_page(**{K["LEARNED_SHOW_KEY"]: True})
    assert _pattern_scores(at, dataset.classes) == {}                          # on request only
    at.button(key=K["PATTERN_BUTTON_KEY"]).click().run()
    assert not at.exception
    scores = _pattern_scores(at, dataset.classes)
    assert list(scores) == list(dataset.classes)
    assert all(end > start for start, end in scores.values())
    assert any("synthetic" in c.value and "patterns of its procedural images" in c.value for c in at.caption)
    fig = chart(at, K["PATTERN_CHART_KEY"])
    assert len(fig["data"]) == len(dataset.classes) and len(arr(fig["data"][0]["y"])) == 41
    at.select_slider(key=K["PATTERN_STEPS_KEY"]).set_value(10).run()
    assert not at.exception
    fewer = _pattern_scores(at, dataset.classes)
    assert len(arr(chart(at, K["PATTERN_CHART_KEY"])["data"][0]["y"])) == 11
    assert all(fewer[c][1] < scores[c][1] for c in dataset.classes)          # fewer steps, less far up
    assert all(abs(fewer[c][0] - scores[c][0]) < 0.05 for c in dataset.classes)   # the same grey start
    again = open_page(**{K["LEARNED_SHOW_KEY"]: True})      # a new session: kept for this checkpoint
    assert list(_pattern_scores(again, dataset.classes)) == list(dataset.classes)


@pytest.fixture(scope="module")
def cnn_store(tmp_path_factory, session_dirs):
    """One finished 1-epoch cpu_cnn run (patch-whitening stem) on the synthetic set."""
    from core.train.config import TrainConfig

    dataset = data.load_synthetic(session_dirs["synthetic"])
    root = tmp_path_factory.mktemp("inside-cnn") / "runs"
    cfg = TrainConfig.smoke(model="cpu_cnn", whiten_init=True, train_subset=1000, test_subset=None, batch_size=100,
                            lr=2e-3)
    run = train_run(RunStore(root), dataset, cfg, "small cnn")
    return root, dataset, run.id


@pytest.fixture
def cnn(cnn_store):
    root, dataset, run_id = cnn_store
    return runs_of_this_test(root), dataset, run_id


def _hooked_order(store, run_id, at, image) -> list[list[int]]:
    """Each group's channels by mean activation, from plain forward hooks on the checkpoint's model."""
    import torch

    from core.train.models import build_model
    from reference import normalize_np

    ckpt = _checkpoint(store, run_id, at)
    model = build_model(ckpt["model"])
    model.load_state_dict(ckpt["model_state"])
    model.eval()
    seen = []
    modules = [model.stem_activ, *model.groups]
    handles = [m.register_forward_hook(lambda _m, _i, out: seen.append(out[0].mean((1, 2)))) for m in modules]
    with torch.no_grad():
        model(torch.from_numpy(normalize_np(image[None])))
    for h in handles:
        h.remove()
    return [torch.argsort(-m, stable=True)[:8].tolist() for m in seen]


def _shown_channels(at) -> list[int]:
    return [int(c.split(" ")[1]) for c in _image_captions(at) if c.startswith("ch ")]


def test_a_conv_net_shows_its_whitening_filters_and_one_images_activation_maps(cnn):
    store, dataset, run_id = cnn
    at = open_page(**{K["LEARNED_SHOW_KEY"]: True})
    assert any(h.value == "What the model has learned" for h in at.subheader)
    captions = _image_captions(at)
    filters = [c for c in captions if re.fullmatch(r"−?#\d+", c)]
    assert filters == [f"#{i}" for i in range(1, 13)] + [f"−#{i}" for i in range(1, 13)]
    assert any("These are not learned" in c.value and "eigenvector of the patch covariance" in c.value
               for c in at.caption)
    assert len(arr(chart(at, K["VARIANCE_CHART_KEY"])["data"][0]["y"])) == 12
    assert not any(c.startswith("unit ") for c in captions)                  # no MLP unit grid here
    for g in ("stem", "group 1", "group 2", "group 3"):
        assert any(c.value.startswith(f"**{g}**") for c in at.caption)
    assert _shown_channels(at) == sum(_hooked_order(store, run_id, at, dataset.test.images[0]), [])
    at.number_input(key=K["ACTIVATION_IMAGE_KEY"]).set_value(7).run()
    assert not at.exception
    assert _shown_channels(at) == sum(_hooked_order(store, run_id, at, dataset.test.images[7]), [])
    assert any(c.startswith("#7: ") for c in _image_captions(at))
    at.button(key=K["PATTERN_BUTTON_KEY"]).click().run()
    assert not at.exception
    assert len(_pattern_scores(at, dataset.classes)) == len(dataset.classes)   # class patterns for conv nets too
    rose = [arr(t["y"]).max() > arr(t["y"])[0] for t in chart(at, K["PATTERN_CHART_KEY"])["data"]]
    assert sum(rose) >= 8, rose                                               # full precision: the scores rose


def test_a_run_of_two_epochs_opens_and_caps_the_changes_of_mind_at_one(session_dirs, tmp_path):
    """k (changes of mind) starts at 2, more than a 2-epoch run can show: capped, not a crash."""
    dataset = data.load_synthetic(session_dirs["synthetic"])
    store = RunStore(os.environ["CIFARLAB_RUNS_DIR"])
    train_run(store, dataset, history_config(epochs=2), "two epochs", history=True)
    at = open_page()
    assert not at.exception, at.exception
    box = at.number_input(key=K["CHANGES_KEY"])
    assert box.value == 1 and box.max == 1
    at.selectbox(key=K["HISTORY_FILTER_KEY"]).set_value("changed").run()
    assert not at.exception
