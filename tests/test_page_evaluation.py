"""The Evaluation page in AppTest, on real tiny runs trained by core.engine on the synthetic demo set."""
from __future__ import annotations

import re

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from core import data

from core.train import engine
from core.train.checkpoints import load_checkpoint, save_checkpoint
from core.train.config import TrainConfig
from core.train.models import build_model
from core.runs.store import RunStore
from evaluate_fixtures import TIMEOUT, arr, chart, open_page, page_constants, png, thumbnails, train_run

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "dashboard" / "app.py")
K = page_constants()


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory, session_dirs):
    """Two finished tiny MLP runs on the synthetic set (1,000 training images; full 1,000-image test split)."""
    dataset = data.load_synthetic(session_dirs["synthetic"])
    root = tmp_path_factory.mktemp("eval-runs") / "runs"
    store = RunStore(root)
    # a validation split, so best.pt exists (without one there is no "best": last.pt is the model)
    cfg = TrainConfig.smoke(train_subset=1000, test_subset=None, epochs=1, batch_size=64, lr=1e-3, val_images=200)
    first = train_run(store, dataset, cfg, "one epoch")
    second = train_run(store, dataset, cfg.replace(epochs=2, seed=1), "two epochs")
    return root, dataset, first.id, second.id


@pytest.fixture
def runs(trained_store, tmp_path):
    """A copy of the trained store in this test's CIFARLAB_RUNS_DIR."""
    root, dataset, first, second = trained_store
    target = Path(os.environ["CIFARLAB_RUNS_DIR"])
    shutil.copytree(root, target)
    return RunStore(target), dataset, first, second


def oracle(store: RunStore, run_id: int, dataset: data.Dataset, which="best"):
    """Predictions straight from the checkpoint through the engine's own inference (independent of the page)."""
    ckpt = load_checkpoint(store.checkpoint_path(run_id, which))
    model = build_model(ckpt["model"])
    model.load_state_dict(ckpt["model_state"])
    x = torch.from_numpy(dataset.test.images).permute(0, 3, 1, 2).contiguous()
    predicted = engine.infer(model, x).argmax(1).numpy()
    labels = dataset.test.labels
    n = len(dataset.classes)
    cm = np.zeros((n, n), int)
    np.add.at(cm, (labels, predicted), 1)
    return predicted, cm


def test_page_shows_accuracy_per_class_chart_and_confusion_matrix_of_the_latest_run(runs):
    store, dataset, first, second = runs
    at = open_page()
    assert at.selectbox(key=K["RUN_KEY"]).value == second  # the latest completed run by default
    run = store.get(second)
    predicted, cm = oracle(store, second, dataset)
    accuracy = float((predicted == dataset.test.labels).mean())
    assert accuracy == run.best_test_acc  # the engine's own number for this checkpoint
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{accuracy:.1%}"
    assert metrics["Dataset"] == "synthetic"
    assert metrics["Test images"] == f"{len(dataset.test):,}"

    per_class = np.diag(cm) / cm.sum(1)
    bar = chart(at, K["PER_CLASS_CHART_KEY"])
    trace = bar["data"][0]
    order = sorted(range(len(per_class)), key=lambda i: (-per_class[i], i))
    assert trace["type"] == "bar"
    assert trace["x"] == [dataset.classes[i] for i in order]
    np.testing.assert_allclose(arr(trace["y"]), per_class[order])
    assert any(s.get("type") == "line" and s["y0"] == pytest.approx(accuracy) for s in bar["layout"]["shapes"])

    heat = chart(at, K["CONFUSION_KEY"])
    heatmap = heat["data"][0]
    assert heatmap["type"] == "heatmap"
    np.testing.assert_array_equal(arr(heatmap["z"]), cm)
    assert heatmap["x"] == list(dataset.classes) and heatmap["y"] == list(dataset.classes)
    assert heat["layout"]["xaxis"]["title"]["text"] == "Predicted class"
    assert heat["layout"]["yaxis"]["title"]["text"] == "True class"

    (frame,) = at.dataframe
    table = frame.value
    assert list(table["class"]) == list(dataset.classes)
    np.testing.assert_allclose(table["precision"], 100 * np.diag(cm) / np.maximum(cm.sum(0), 1))  # shown in %
    np.testing.assert_allclose(table["recall"], 100 * per_class)


def test_row_normalised_toggle(runs):
    store, dataset, _, second = runs
    at = open_page()
    at.toggle(key=K["NORMALIZED_KEY"]).set_value(True).run()
    _, cm = oracle(store, second, dataset)
    z = arr(chart(at, K["CONFUSION_KEY"])["data"][0]["z"])
    np.testing.assert_allclose(z, cm / cm.sum(1, keepdims=True))


def test_choosing_a_confusion_pair_shows_only_those_mistakes(runs):
    store, dataset, _, second = runs
    _, cm = oracle(store, second, dataset)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    t, p = np.unravel_index(off.argmax(), off.shape)
    at = open_page()
    at.selectbox(key=K["TRUE_KEY"]).set_value(int(t))
    at.selectbox(key=K["PRED_KEY"]).set_value(int(p)).run()
    assert not at.exception
    captions = thumbnails(at)
    assert len(captions) == min(K["PAGE_SIZE"], off[t, p]) > 0
    names = dataset.classes
    assert all(c.startswith(f"{names[t]} →  \n**{names[p]}** · ") for c in captions), captions
    assert any(f"{off[t, p]:,} misclassified images match" in c.value for c in at.caption)
    # sorted by confidence in the wrong answer: the percentages never go up
    confidences = [int(c.rsplit("· ", 1)[1].rstrip("%")) for c in captions]
    assert confidences == sorted(confidences, reverse=True)


def test_most_confused_pair_button_filters_the_browser(runs):
    store, dataset, _, second = runs
    at = open_page()
    pair_buttons = [b for b in at.button if b.key and b.key.startswith(K["PAIR_PREFIX"])]
    assert pair_buttons
    t, p = (int(v) for v in pair_buttons[0].key.removeprefix(K["PAIR_PREFIX"]).split("_"))
    pair_buttons[0].click().run()
    assert at.selectbox(key=K["TRUE_KEY"]).value == t and at.selectbox(key=K["PRED_KEY"]).value == p
    captions = thumbnails(at)
    assert captions and all(c.startswith(f"{dataset.classes[t]} →  \n**{dataset.classes[p]}** · ") for c in captions)


def test_filter_by_true_class_only_and_paging(runs):
    store, dataset, _, second = runs
    predicted, _ = oracle(store, second, dataset)
    labels = dataset.test.labels
    t = int(np.bincount(labels[predicted != labels], minlength=10).argmax())
    wrong = int(((labels == t) & (predicted != t)).sum())
    at = open_page(**{K["TRUE_KEY"]: t})
    captions = thumbnails(at)
    assert all(c.startswith(f"{dataset.classes[t]} →  \n") for c in captions)
    assert len(captions) == min(wrong, K["PAGE_SIZE"])
    if wrong > K["PAGE_SIZE"]:
        at.number_input(key=K["PAGE_KEY"]).set_value(2).run()
        second_page = thumbnails(at)
        assert len(second_page) == min(wrong - K["PAGE_SIZE"], K["PAGE_SIZE"])


def test_inspecting_an_image_shows_its_top_classes(runs):
    at = open_page(**{K["SORT_KEY"]: "loss"})
    show = [b for b in at.button if b.key and b.key.startswith(K["INSPECT_PREFIX"])]
    index = int(show[0].key.removeprefix(K["INSPECT_PREFIX"]))
    show[0].click().run()
    assert any(f"Test image #{index}" in m.value for m in at.markdown)
    # the loss is said to be −ln p(true class), with the numbers
    (card,) = [m.value for m in at.markdown if f"Test image #{index}" in m.value]
    loss, p_true = (float(v) for v in re.search(r"Loss: ([\d.]+) = −ln ([\d.e-]+)", card).groups())
    assert loss == pytest.approx(-np.log(p_true), abs=1.5e-3)   # both rounded for reading
    assert any("−ln of the probability the model gave the true class" in c.value for c in at.caption)
    top = chart(at, K["TOPK_CHART_KEY"])["data"][0]
    probs = arr(top["x"])
    assert len(probs) == 5 and (np.diff(probs) >= 0).all()  # most probable on top (drawn last)


def test_compare_two_runs_draws_grouped_bars(runs):
    store, dataset, first, second = runs
    at = open_page()
    at.selectbox(key=K["COMPARE_KEY"]).set_value(first).run()
    assert not at.exception
    fig = chart(at, K["COMPARE_CHART_KEY"])
    assert fig["layout"]["barmode"] == "group"
    assert len(fig["data"]) == 2
    for trace, run_id in zip(fig["data"], (second, first)):
        _, cm = oracle(store, run_id, dataset)
        np.testing.assert_allclose(arr(trace["y"]), np.diag(cm) / cm.sum(1))
        assert trace["x"] == list(dataset.classes)


def test_uploading_an_image_shows_its_top_classes(runs):
    at = open_page()
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value(("photo.png", png(), "image/png")).run()
    assert not at.exception and not at.error
    top = chart(at, K["UPLOAD_CHART_KEY"])["data"][0]
    assert len(top["y"]) == 5
    assert arr(top["x"]).sum() <= 1.0 + 1e-6


@pytest.mark.parametrize("name, content, message", [
    ("notes.png", b"this is not an image\n" * 10, "not a PNG or JPEG"),
    ("empty.jpg", b"", "empty"),
    ("big.png", png() + b"\0" * (5 * 1024 * 1024), "MB"),
])
def test_a_bad_upload_shows_a_clear_message(runs, name, content, message):
    at = open_page()
    at.file_uploader(key=K["UPLOAD_KEY"]).set_value((name, content, "image/png")).run()
    assert not at.exception
    assert any(message in e.value and name in e.value for e in at.error), [e.value for e in at.error]


def test_evaluation_uses_the_runs_own_dataset_not_the_sidebar_choice(runs):
    store, dataset, _, _ = runs
    at = open_page(dataset_kind="cifar10")
    assert {m.label: m.value for m in at.metric}["Dataset"] == "synthetic"
    heat = chart(at, K["CONFUSION_KEY"])
    assert heat["data"][0]["x"] == list(dataset.classes)


def test_a_run_whose_dataset_is_missing_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "nothing-here"))
    store = RunStore()
    run = store.create_run(TrainConfig(dataset="cifar10", device="cpu", epochs=1), name="on cifar")
    model = build_model("tutorial_mlp")
    save_checkpoint(store.run_dir(run.id) / "best.pt", {"model": "tutorial_mlp", "model_state": model.state_dict(),
                                                        "config": run.config.to_dict()})
    at = open_page()
    assert any("CIFAR-10" in e.value and "not available" in e.value for e in at.error)
    assert not at.get("plotly_chart")


def test_with_no_runs_the_page_says_so_and_links_to_training():
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("views/evaluation.py").run()
    assert not at.exception
    assert any("No finished run yet" in i.value for i in at.info)
    links = at.get("page_link")
    if (REPO / "dashboard" / "views" / "training.py").exists():
        assert [link.proto.page for link in links] == ["training"]
    else:
        assert any("(training)" in m.value for m in at.markdown)
    assert not at.get("plotly_chart")


def test_a_run_without_a_checkpoint_yet_counts_as_no_run(tmp_path):
    RunStore().create_run(TrainConfig.smoke(), name="queued only")
    at = open_page()
    assert any("No finished run yet" in i.value for i in at.info)


def test_the_last_checkpoint_can_be_chosen(runs):
    store, dataset, _, second = runs
    at = open_page()
    at.radio(key=K["CKPT_KEY"]).set_value("last").run()
    assert not at.exception
    predicted, cm = oracle(store, second, dataset, which="last")
    assert {m.label: m.value for m in at.metric}["Test accuracy"] == f"{(predicted == dataset.test.labels).mean():.1%}"
    np.testing.assert_array_equal(arr(chart(at, K["CONFUSION_KEY"])["data"][0]["z"]), cm)


def test_numpy_replay_of_the_mlp_agrees_with_torch(runs):
    at = open_page()
    at.button(key=K["REPLAY_KEY"]).click().run()
    assert not at.exception
    lines = [m.value for m in at.markdown if "identical predicted class" in m.value]
    assert len(lines) == 2
    assert all("for 100.00% of 1,000 images" in line for line in lines), lines
