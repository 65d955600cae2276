"""The validation split: stratified, seeded, disjoint from the training images; best.pt by it."""
from __future__ import annotations

import numpy as np
import pytest

from core.data.split import validation_split
from core.runs.store import RunStore
from core.runs.worker import run_stored
from core.train.checkpoints import load_checkpoint
from core.train.config import ConfigError, TrainConfig
from core.train.engine import fit
from dashboard.figures.training import runs_table


def test_the_split_is_stratified_seeded_and_disjoint():
    labels = np.repeat(np.arange(10), [500, 400, 600, 500, 500, 500, 500, 500, 500, 500])
    keep, held = validation_split(labels, 1000, seed=3)
    assert len(held) == 1000 and len(keep) == len(labels) - 1000
    assert not set(keep) & set(held) and sorted([*keep, *held]) == list(range(len(labels)))
    per_class = np.bincount(labels[held], minlength=10)
    assert per_class.tolist() == [100, 80, 120, 100, 100, 100, 100, 100, 100, 100]   # 1000 * class share
    again, held_again = validation_split(labels, 1000, seed=3)
    assert np.array_equal(held, held_again) and np.array_equal(keep, again)
    assert not np.array_equal(held, validation_split(labels, 1000, seed=4)[1])
    uneven = validation_split(labels, 7, seed=0)[1]       # remainders rounded so the total is exact
    assert len(uneven) == 7 and np.bincount(labels[uneven]).max() == 1
    assert len(validation_split(labels, 0, seed=0)[1]) == 0
    with pytest.raises(ValueError, match="below the number of training images"):
        validation_split(labels, len(labels), seed=0)


def test_validation_images_are_a_setting_with_the_usual_checks():
    assert TrainConfig().val_images == 0                   # the tutorial: no validation split
    with pytest.raises(ConfigError, match="^val_images: must be >= 0"):
        TrainConfig(val_images=-1)


class _Record:
    def __init__(self):
        self.epochs = []

    def __call__(self, epoch, step, metrics):
        self.epochs.append(dict(metrics))


def test_best_checkpoint_is_chosen_by_validation_accuracy(synthetic_dataset, tmp_path):
    cfg = TrainConfig.smoke(epochs=4, val_images=500, lr=3e-3, precision="fp32")
    rec = _Record()
    result = fit(cfg, synthetic_dataset, tmp_path, on_epoch=rec)
    assert result.status == "completed" and "best validation accuracy" in result.message
    assert all({"val_loss", "val_acc"} <= set(m) for m in rec.epochs)
    best_epoch = max(range(len(rec.epochs)), key=lambda i: (rec.epochs[i]["val_acc"], -i))
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == best_epoch + 1
    assert best["best_val_acc"] == rec.epochs[best_epoch]["val_acc"]
    assert result.best_test_acc == best["best_test_acc"] == rec.epochs[best_epoch]["test_acc"]


def test_the_engine_trains_on_the_rest_and_refuses_a_split_as_large_as_the_set(synthetic_dataset, tmp_path):
    plans = []
    fit(TrainConfig.smoke(epochs=1, val_images=1000, train_subset=None), synthetic_dataset, tmp_path / "a",
        on_start=plans.append)
    assert plans[0].train_images == len(synthetic_dataset.train.labels) - 1000
    with pytest.raises(ConfigError, match="^val_images: must be below"):
        fit(TrainConfig.smoke(val_images=len(synthetic_dataset.train.labels)), synthetic_dataset, tmp_path / "b")


def test_a_stored_run_with_a_split_reports_best_pt_test_accuracy_and_says_how_it_was_chosen(tmp_path):
    store = RunStore(tmp_path / "runs")
    run = store.create_run(TrainConfig.smoke(epochs=3, val_images=400, lr=3e-3))
    plain = store.create_run(TrainConfig.smoke())
    result = run_stored(store, run.id)
    done = store.get(run.id)
    rows = store.metrics(run.id)
    val = rows.query("name == 'epoch_val_acc'").reset_index(drop=True)
    test = rows.query("name == 'epoch_test_acc'").reset_index(drop=True)
    assert len(val) == 3 and done.best_test_acc == test["value"][val["value"].idxmax()] == result.best_test_acc
    table = runs_table([store.get(run.id), store.get(plain.id)]).set_index("run")
    assert table.loc[run.id, "model checkpoint"] == "best.pt (by validation accuracy)"
    assert table.loc[run.id, "test acc (%)"] == round(100 * done.best_test_acc, 2)
    assert table.loc[plain.id, "model checkpoint"] == "last.pt (no validation split)"


def test_without_a_split_there_is_no_best_the_last_checkpoint_is_the_model(tmp_path):
    from core.train.checkpoints import checkpoint_label, model_checkpoints

    store = RunStore(tmp_path / "runs")
    run = store.create_run(TrainConfig.smoke(epochs=2))
    result = run_stored(store, run.id)
    done = store.get(run.id)
    assert result.status == "completed" and result.best_test_acc is None and done.best_test_acc is None
    assert "no validation split: last.pt is the model" in result.message
    assert not (run.dir / "best.pt").exists() and (run.dir / "last.pt").is_file()
    last_acc = store.metrics(run.id).query("name == 'epoch_test_acc'")["value"].iloc[-1]
    assert done.final_test_acc == last_acc
    assert runs_table([done]).loc[0, "test acc (%)"] == round(100 * last_acc, 2)
    assert model_checkpoints(run.dir, 0) == ["last"]
    # A run trained before this rule may hold a best.pt chosen by test accuracy: offered after
    # last.pt, and called what it is.
    (run.dir / "best.pt").write_bytes((run.dir / "last.pt").read_bytes())
    assert model_checkpoints(run.dir, 0) == ["last", "best"]
    assert "optimistic" in checkpoint_label("best", 0) and "is the model" in checkpoint_label("last", 0)
    assert checkpoint_label("best", 400) == "Best (by validation accuracy)"


def test_a_batch_larger_than_what_the_split_leaves_is_refused_before_any_step(synthetic_dataset, tmp_path):
    n = len(synthetic_dataset.train.labels)
    cfg = TrainConfig.smoke(epochs=1, val_images=n - 50, train_subset=None, batch_size=64)
    with pytest.raises(ConfigError, match=r"^batch_size: must be at most the number of training images \(50 "
                                          r"left after the validation split\), got 64"):
        fit(cfg, synthetic_dataset, tmp_path / "run")
    assert not (tmp_path / "run" / "last.pt").exists()
