"""Honest model selection on the Evaluation page: without a validation split there is no "best"."""
from __future__ import annotations

from core import data
from core.runs.store import RunStore
from core.train.config import TrainConfig
from evaluate_fixtures import metric, open_page, page_constants, train_run

K = page_constants()


def test_without_a_split_the_page_evaluates_last_pt_and_labels_an_older_best_pt_honestly(session_dirs):
    dataset = data.load_synthetic(session_dirs["synthetic"])
    store = RunStore()
    cfg = TrainConfig.smoke(train_subset=256, test_subset=None, epochs=1, batch_size=64)
    run = train_run(store, dataset, cfg, "no split")
    assert not (run.dir / "best.pt").exists() and run.best_test_acc is None

    at = open_page()
    radio = at.radio(key=K["CKPT_KEY"])
    assert radio.options == ["Last (end of training; no validation split, so this is the model)"]
    assert radio.value == "last"
    assert metric(at, "Test accuracy") == f"{run.final_test_acc:.1%}"

    # A run trained before the rule may hold a best.pt chosen by test accuracy: offered after last.pt,
    # never as the default, and called what it is.
    (run.dir / "best.pt").write_bytes((run.dir / "last.pt").read_bytes())
    at = open_page()
    radio = at.radio(key=K["CKPT_KEY"])
    assert radio.value == "last" and len(radio.options) == 2
    assert radio.options[1] == "Best by test accuracy (older run: chosen on the test set, so optimistic)"


def test_with_a_split_best_pt_by_validation_accuracy_is_the_default(session_dirs):
    dataset = data.load_synthetic(session_dirs["synthetic"])
    store = RunStore()
    cfg = TrainConfig.smoke(train_subset=256, test_subset=None, epochs=2, batch_size=64, val_images=128)
    run = train_run(store, dataset, cfg, "split")
    at = open_page()
    radio = at.radio(key=K["CKPT_KEY"])
    assert radio.options == ["Best (by validation accuracy)", "Last (end of training)"]
    assert radio.value == "best"
    assert metric(at, "Test accuracy") == f"{run.best_test_acc:.1%}"
