"""core.evaluate.predictions: a checkpoint's predictions against an independent forward pass, and their cache."""
from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from core.data import CLASSES
from core.evaluate.predictions import cache_path, predictions_for_checkpoint
from core.evaluate.metrics import summarize
from core.train.checkpoints import checkpoint_key
from evaluate_fixtures import random_split, reference_logits, write_checkpoint


@pytest.fixture(scope="module")
def test_split():
    return random_split()


def test_predictions_match_an_independent_forward_pass(tmp_path, test_split):
    images, labels = test_split
    model = write_checkpoint(tmp_path / "run" / "best.pt")
    preds = predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES, device="cpu")
    ref = reference_logits(model, images)
    np.testing.assert_array_equal(preds.predicted, ref.argmax(1))
    np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-6)
    expected_loss = torch.nn.functional.cross_entropy(torch.from_numpy(ref), torch.from_numpy(labels), reduction="none")
    np.testing.assert_allclose(preds.loss, expected_loss.numpy(), rtol=1e-5, atol=1e-6)
    accuracy = float((ref.argmax(1) == labels).mean())
    assert float(preds.correct.mean()) == accuracy
    assert summarize(preds.labels, preds.predicted, preds.classes).accuracy == accuracy  # the page's number


def test_tta_runs_average_the_mirror_image(tmp_path, test_split):
    images, labels = test_split
    model = write_checkpoint(tmp_path / "run" / "best.pt", "cpu_cnn", tta=True)
    preds = predictions_for_checkpoint(tmp_path / "run" / "best.pt", images[:64], labels[:64], CLASSES, device="cpu")
    ref = reference_logits(model, images[:64], tta=True)
    np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-5)


def test_second_visit_is_served_from_the_cache_without_recomputing(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt)
    first = predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert first.source == "computed"
    (cache,) = (tmp_path / "run" / "eval").glob("best-*.npz")
    assert cache == cache_path(ckpt, checkpoint_key(ckpt), "best")
    stamp = cache.stat().st_mtime_ns
    time.sleep(0.01)
    second = predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert second.source == "cache"
    assert cache.stat().st_mtime_ns == stamp  # not rewritten: nothing was recomputed
    for name in ("labels", "predicted", "probs", "loss"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_a_replaced_checkpoint_is_never_served_stale_numbers(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt, seed=0)
    old = predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    old_key = checkpoint_key(ckpt)
    new_model = write_checkpoint(ckpt, seed=1)  # training wrote a better checkpoint over it
    assert checkpoint_key(ckpt) != old_key
    new = predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert new.source == "computed" and new.key == checkpoint_key(ckpt)
    assert not np.array_equal(old.probs, new.probs)
    np.testing.assert_array_equal(new.predicted, reference_logits(new_model, images).argmax(1))
    # the stale file is gone, the new one is there
    assert [p.name for p in (tmp_path / "run" / "eval").glob("best-*.npz")] == [f"best-{new.key}.npz"]
    assert predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best").source == "cache"


def test_best_and_last_have_separate_caches(tmp_path, test_split):
    images, labels = test_split
    write_checkpoint(tmp_path / "run" / "best.pt", seed=0)
    write_checkpoint(tmp_path / "run" / "last.pt", seed=1)
    best = predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES, which="best")
    last = predictions_for_checkpoint(tmp_path / "run" / "last.pt", images, labels, CLASSES, which="last")
    assert not np.array_equal(best.probs, last.probs)
    assert predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES,
                                      which="best").source == "cache"
    assert len(list((tmp_path / "run" / "eval").glob("*.npz"))) == 2


def test_a_different_test_split_or_a_torn_cache_is_recomputed(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt)
    predictions_for_checkpoint(ckpt, images, labels, CLASSES)
    other = predictions_for_checkpoint(ckpt, images[::-1].copy(), labels[::-1].copy(), CLASSES)
    assert other.source == "computed"
    (cache,) = (tmp_path / "run" / "eval").glob("best-*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    again = predictions_for_checkpoint(ckpt, images, labels, CLASSES)
    assert again.source == "computed" and len(again.labels) == len(labels)


def test_progress_is_reported_per_chunk(tmp_path, test_split):
    images, labels = test_split
    write_checkpoint(tmp_path / "best.pt")
    calls = []
    predictions_for_checkpoint(tmp_path / "best.pt", images, labels, CLASSES, batch_size=128,
                               progress=lambda d, t: calls.append((d, t)))
    assert calls == [(128, 300), (256, 300), (300, 300)]


@pytest.mark.cifar
def test_real_test_split_mlp_and_cnn_agree_with_the_reference(tmp_path, cifar_root):
    from core.data import load_cifar10

    ds = load_cifar10(cifar_root, download=False)
    images, labels = ds.test.images[:2000], ds.test.labels[:2000]
    for name in ("tutorial_mlp", "cpu_cnn"):
        model = write_checkpoint(tmp_path / name / "best.pt", name)
        preds = predictions_for_checkpoint(tmp_path / name / "best.pt", images, labels, ds.classes)
        ref = reference_logits(model, images)
        assert (preds.predicted == ref.argmax(1)).mean() > 0.999  # float reductions may tie-break differently
        np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-4)
