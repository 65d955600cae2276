"""Prediction history: the file the worker writes each epoch, resume truncation, and the analyses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.evaluate import history as hist
from core.evaluate.metrics import confusion_matrix
from core.train.history import (HistoryRecorder, PredictionHistory, encode_logits, history_path, read_history,
                                write_history)


def _history(pred_rows, labels) -> PredictionHistory:
    pred = np.asarray(pred_rows, np.uint8)
    return PredictionHistory(np.asarray(labels, np.uint8), np.arange(1, len(pred) + 1, dtype=np.int32), pred,
                             np.full(pred.shape, 40000, np.uint16))


def test_encoding_is_three_bytes_per_image_and_matches_softmax():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(0))
    predicted, conf = encode_logits(logits)
    assert predicted.dtype == np.uint8 and conf.dtype == np.uint16
    assert predicted.nbytes + conf.nbytes == 3 * 500
    probs = torch.softmax(logits, 1).numpy()
    assert np.array_equal(predicted, probs.argmax(1))
    assert np.abs(conf / 65535 - probs.max(1)).max() <= 0.5 / 65535 + 1e-7


def test_recorder_writes_atomically_and_a_resume_drops_later_epochs(tmp_path):
    labels = torch.tensor([0, 1, 2, 1])
    rec = HistoryRecorder(tmp_path)
    for epoch in (1, 2, 3):
        rec.record(epoch, torch.eye(10)[[epoch % 3, 1, 2, 0]] * 5, labels)
    h = read_history(tmp_path)
    assert list(h.epochs) == [1, 2, 3] and h.predicted.shape == (3, 4)
    assert list(h.predicted[:, 0]) == [1, 2, 0] and list(h.labels) == [0, 1, 2, 1]
    assert not list(tmp_path.glob(".*.tmp"))
    HistoryRecorder(tmp_path, keep_through=2)          # resuming from epoch 2's checkpoint
    assert list(read_history(tmp_path).epochs) == [1, 2]
    rec = HistoryRecorder(tmp_path, keep_through=2)
    rec.record(3, torch.eye(10)[[0, 1, 2, 1]], labels)  # the redone epoch replaces, never duplicates
    assert list(read_history(tmp_path).epochs) == [1, 2, 3]
    HistoryRecorder(tmp_path)                          # a fresh start keeps nothing
    assert not history_path(tmp_path).exists()


def test_a_torn_or_foreign_file_reads_as_no_history(tmp_path):
    history_path(tmp_path).write_bytes(b"PK\x03\x04 torn")
    assert read_history(tmp_path) is None and hist.load_history(tmp_path) is None


def test_a_full_disk_keeps_the_history_in_memory_until_the_next_epoch(tmp_path, monkeypatch):
    from core.train import history as module

    rec = HistoryRecorder(tmp_path)
    labels = torch.tensor([0, 1])
    real = module.atomic_write_bytes
    monkeypatch.setattr(module, "atomic_write_bytes", lambda *a, **k: (_ for _ in ()).throw(OSError(28, "full")))
    rec.record(1, torch.eye(10)[[0, 1]], labels)
    assert rec.unsaved and read_history(tmp_path) is None
    monkeypatch.setattr(module, "atomic_write_bytes", real)
    rec.record(2, torch.eye(10)[[0, 0]], labels)
    assert list(read_history(tmp_path).epochs) == [1, 2]


def test_scrubber_summary_and_per_class_curves_match_direct_counts():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    pred = np.where(rng.random((5, 400)) < np.linspace(0.2, 0.8, 5)[:, None], labels, rng.integers(0, 10, (5, 400)))
    h = _history(pred, labels)
    classes = tuple("abcdefghij")
    for i in range(5):
        s = hist.epoch_summary(h, i, classes)
        assert np.array_equal(s.confusion, confusion_matrix(labels, pred[i], 10))
    per_class = hist.per_class_over_epochs(h, 10)
    for i in range(5):
        for c in range(10):
            assert per_class[i, c] == pytest.approx(np.mean(pred[i][labels == c] == c))
    assert np.allclose(hist.overall_over_epochs(h), (pred == labels).mean(1))


def test_learned_forgotten_never_and_changes_of_mind():
    labels = [0, 1, 2, 3]
    rows = [[0, 5, 5, 0],      # image 0 over 4 epochs: right, wrong, wrong, right -> forgotten once
            [5, 5, 6, 6],      # image 1: never right -> never learned, 1 change of mind
            [0, 1, 7, 3],      # image 2: never right, 3 changes of mind
            [3, 3, 3, 3]]      # image 3: always right
    pred = np.array(rows).T                  # (epochs, images)
    h = _history(pred, labels)
    t = hist.trajectories(h)
    correct = pred == np.array(labels)[None]
    expect_forgetting = (correct[:-1] & ~correct[1:]).sum(0)
    assert np.array_equal(t.forgetting, expect_forgetting)
    assert np.array_equal(t.never_learned, ~correct.any(0))
    assert np.array_equal(t.changes, (pred[1:] != pred[:-1]).sum(0))
    assert np.array_equal(t.mask("changed", 2), t.changes >= 2)
    assert t.mask("all") is None
    assert np.array_equal(hist.forgotten_per_class(h, 4), np.bincount(np.array(labels)[t.forgotten], minlength=4))
    strip = hist.image_strip(h, 0)
    assert [(e, p, r) for e, p, _, r in strip] == [(i + 1, int(pred[i, 0]), bool(correct[i, 0])) for i in range(4)]


def test_misclassified_query_honours_a_history_mask():
    from core.evaluate import misclassified
    from evaluate_fixtures import predictions_from_probs

    probs = np.full((6, 3), 0.1)
    probs[np.arange(6), [1, 1, 1, 0, 0, 2]] = 0.8
    preds = predictions_from_probs([0, 0, 0, 0, 1, 2], probs, ("a", "b", "c"))
    assert misclassified(preds).total == 4
    page = misclassified(preds, among=np.array([True, False, True, False, True, True]))
    assert sorted(page.indices.tolist()) == [0, 2, 4]


def test_the_worker_records_history_and_a_resume_truncates_it(tmp_path, monkeypatch):
    from core.runs import worker
    from core.runs.store import RunStore
    from core.train.config import TrainConfig

    monkeypatch.setattr(worker, "STOP_CHECK_EVERY_S", 0.0)
    store = RunStore(tmp_path / "runs")
    cfg = TrainConfig.smoke(epochs=3, train_subset=128, test_subset=64, batch_size=32, log_every=100)
    run = store.create_run(cfg, name="history")

    def stop_after_epoch_2(epoch, step, metrics):
        if epoch == 2:
            store.request_stop(run.id)
    assert worker.run_stored(store, run.id, on_epoch=stop_after_epoch_2).status == "stopped"
    folder = store.run_dir(run.id)
    first = read_history(folder)
    assert first is not None and first.num_images == 64 and list(first.epochs) == [1, 2]
    # As if a kill came after epoch 3's history was written but before its checkpoint:
    write_history(folder, first.with_epoch(3, first.predicted[0], first.confidence_q[0]))
    result = worker.run_stored(store, run.id, resume=True)
    assert result.status == "completed"
    final = read_history(folder)
    assert list(final.epochs) == [1, 2, 3]
    assert np.array_equal(final.predicted[:2], first.predicted)
