"""core.evaluate: exact numbers on a hand-built confusion, mistake queries, the disk cache, the numpy
replay of an MLP checkpoint, and predictions on uploaded images."""
from __future__ import annotations

import copy
import io
import math
import os
import time

import numpy as np
import pytest
import torch
from PIL import Image

from core import evaluate
from core.train.checkpoints import checkpoint_key, save_checkpoint
from core.data import CLASSES
from reference import normalize_np
from core.train.models import build_model

# ---------------------------------------------------------------------------------------------
# A hand-built set of 12 predictions over 5 classes, with every number worked out by hand.
#
#   image  true  predicted   p(predicted)  p(true)
#     0     0       0           0.8
#     1     0       0           0.8
#     2     0       0           0.8
#     3     0       1           0.50        0.40
#     4     1       1           0.8
#     5     1       0           0.90        0.05
#     6     1       2           0.60        0.30
#     7     2       2           0.8
#     8     2       2           0.8
#     9     2       1           0.70        0.25
#    10     3       0           0.80        0.01
#    11     3       0           0.55        0.20
#   (class 4 has no images and is never predicted; class 3 has images but is never predicted)
#
# confusion (rows true, columns predicted):
#   [3 1 0 0 0]
#   [1 1 1 0 0]
#   [0 1 2 0 0]
#   [2 0 0 0 0]
#   [0 0 0 0 0]
# ---------------------------------------------------------------------------------------------
NAMES = ("ant", "bee", "cow", "dog", "eel")
ROWS = [  # (true, predicted, p(predicted), p(true) when wrong)
    (0, 0, 0.8, None), (0, 0, 0.8, None), (0, 0, 0.8, None), (0, 1, 0.50, 0.40),
    (1, 1, 0.8, None), (1, 0, 0.90, 0.05), (1, 2, 0.60, 0.30),
    (2, 2, 0.8, None), (2, 2, 0.8, None), (2, 1, 0.70, 0.25),
    (3, 0, 0.80, 0.01), (3, 0, 0.55, 0.20),
]
EXPECTED_CM = np.array([[3, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 2, 0, 0], [2, 0, 0, 0, 0], [0, 0, 0, 0, 0]])


def hand_built() -> evaluate.Predictions:
    probs = np.zeros((len(ROWS), 5), np.float32)
    labels = []
    for i, (t, p, p_pred, p_true) in enumerate(ROWS):
        fixed = {p: p_pred} if p_true is None else {p: p_pred, t: p_true}
        rest = [c for c in range(5) if c not in fixed]
        probs[i, rest] = (1 - sum(fixed.values())) / len(rest)
        for c, v in fixed.items():
            probs[i, c] = v
        labels.append(t)
    return evaluate.Predictions.from_probs(labels, probs, NAMES)


def test_hand_built_predictions_are_what_the_table_says():
    preds = hand_built()
    assert preds.predicted.tolist() == [r[1] for r in ROWS]
    np.testing.assert_allclose(preds.probs.sum(1), 1.0, rtol=1e-6)
    assert preds.loss[5] == pytest.approx(-math.log(0.05), rel=1e-6)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    preds = hand_built()
    cm = evaluate.confusion_matrix(preds.labels, preds.predicted, 5)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, EXPECTED_CM)


def test_summary_numbers_are_exact():
    s = evaluate.summarize(hand_built().labels, hand_built().predicted, NAMES)
    assert (s.total, s.correct) == (12, 6)
    assert s.accuracy == 0.5
    assert s.support.tolist() == [4, 3, 3, 2, 0]
    assert s.predicted_count.tolist() == [6, 3, 3, 0, 0]
    assert s.per_class_accuracy.tolist() == [3 / 4, 1 / 3, 2 / 3, 0.0, 0.0]
    assert s.recall.tolist() == [3 / 4, 1 / 3, 2 / 3, 0.0, 0.0]
    # precision: class 3 and 4 were never predicted -> precision 0 by convention
    assert s.precision.tolist() == [3 / 6, 1 / 3, 2 / 3, 0.0, 0.0]
    # F1 = 2PR/(P+R): ant 2*(1/2)(3/4)/(5/4) = 3/5; bee 1/3; cow 2/3; dog, eel 0 (P + R = 0)
    assert s.f1 == pytest.approx([3 / 5, 1 / 3, 2 / 3, 0.0, 0.0], abs=1e-15)
    assert s.f1[3] == 0.0 and s.f1[4] == 0.0


def test_row_normalised_confusion_is_exact_and_empty_rows_are_zero():
    s = evaluate.summarize(hand_built().labels, hand_built().predicted, NAMES)
    expected = [[3 / 4, 1 / 4, 0, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0, 0], [0, 1 / 3, 2 / 3, 0, 0],
                [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert s.confusion_normalized.tolist() == expected


def test_most_confused_pairs_sorted_by_count_then_class_order():
    s = evaluate.summarize(hand_built().labels, hand_built().predicted, NAMES)
    pairs = [(p.true_class, p.predicted_class, p.count, p.fraction) for p in s.most_confused(None)]
    assert pairs == [(3, 0, 2, 1.0), (0, 1, 1, 1 / 4), (1, 0, 1, 1 / 3), (1, 2, 1, 1 / 3), (2, 1, 1, 1 / 3)]
    top = s.most_confused(2)
    assert [(p.true_name, p.predicted_name) for p in top] == [("dog", "ant"), ("ant", "bee")]


def test_class_table_rows():
    s = evaluate.summarize(hand_built().labels, hand_built().predicted, NAMES)
    rows = s.table()
    assert rows[0] == {"class": "ant", "images": 4, "predicted": 6, "correct": 3, "accuracy": 0.75,
                       "precision": 0.5, "recall": 0.75, "f1": pytest.approx(0.6, abs=1e-15)}
    assert rows[4]["images"] == 0 and rows[4]["precision"] == 0.0


def test_empty_split_and_bad_ids():
    s = evaluate.summarize([], [], NAMES)
    assert s.total == 0 and s.accuracy == 0.0 and s.most_confused() == []
    with pytest.raises(ValueError, match="class ids"):
        evaluate.confusion_matrix([0, 5], [0, 0], 5)


# ---- misclassified queries ----------------------------------------------------------------

def indices(page) -> list[int]:
    return page.indices.tolist()


def test_misclassified_sorted_by_confidence_in_the_wrong_answer():
    page = evaluate.misclassified(hand_built(), sort="confidence")
    assert page.total == 6
    assert indices(page) == [5, 10, 9, 6, 11, 3]
    assert page.confidence.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.55, 0.5])
    assert page.true_class.tolist() == [1, 3, 2, 1, 3, 0]
    assert page.predicted_class.tolist() == [0, 0, 1, 2, 0, 1]


def test_misclassified_sorted_by_loss():
    page = evaluate.misclassified(hand_built(), sort="loss")
    assert indices(page) == [10, 5, 11, 9, 6, 3]
    assert page.loss.tolist() == pytest.approx([-math.log(p) for p in (0.01, 0.05, 0.20, 0.25, 0.30, 0.40)], rel=1e-6)


@pytest.mark.parametrize("true_class, predicted_class, expected", [
    (3, None, [10, 11]),
    (None, 0, [5, 10, 11]),
    (1, 0, [5]),
    (1, None, [5, 6]),
    (0, 2, []),
    (2, 2, []),          # the diagonal holds no mistakes
])
def test_misclassified_filters(true_class, predicted_class, expected):
    page = evaluate.misclassified(hand_built(), true_class=true_class, predicted_class=predicted_class)
    assert indices(page) == expected
    assert page.total == len(expected)
    for row in page.rows(NAMES):
        assert true_class is None or row["true"] == true_class
        assert predicted_class is None or row["predicted"] == predicted_class
        assert row["true"] != row["predicted"]
        assert row["true_name"] == NAMES[row["true"]]


def test_misclassified_paging():
    preds = hand_built()
    assert indices(evaluate.misclassified(preds, offset=2, limit=2)) == [9, 6]
    assert indices(evaluate.misclassified(preds, offset=5, limit=10)) == [3]
    past = evaluate.misclassified(preds, offset=6, limit=10)
    assert len(past) == 0 and past.total == 6
    assert evaluate.misclassified(preds, limit=0).total == 6
    with pytest.raises(ValueError):
        evaluate.misclassified(preds, offset=-1)
    with pytest.raises(ValueError):
        evaluate.misclassified(preds, sort="random")
    with pytest.raises(ValueError):
        evaluate.misclassified(preds, true_class=5)


def test_paging_through_thousands_of_mistakes_visits_each_once_in_order():
    rng = np.random.default_rng(0)
    n = 6000
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    logits[:, 3] += 0.5  # cat gets over-predicted
    labels = rng.integers(0, 10, n)
    preds = evaluate.Predictions.from_logits(labels, logits, CLASSES)
    for sort, key in (("confidence", preds.confidence), ("loss", preds.loss)):
        wrong = [i for i in range(n) if preds.predicted[i] != labels[i] and preds.predicted[i] == 3]
        expected = sorted(wrong, key=lambda i: (-float(key[i]), i))
        seen = []
        offset = 0
        while True:
            page = evaluate.misclassified(preds, predicted_class=3, sort=sort, offset=offset, limit=100)
            assert page.total == len(wrong) > 1000
            if not len(page):
                break
            seen += indices(page)
            offset += 100
        assert seen == expected


def test_ties_keep_the_lower_index_first():
    probs = np.full((4, 3), 0.1, np.float32)
    probs[:, 1] = 0.8
    preds = evaluate.Predictions.from_probs([0, 0, 2, 0], probs, ("a", "b", "c"))
    assert indices(evaluate.misclassified(preds)) == [0, 1, 2, 3]
    assert evaluate.top_k(np.array([0.2, 0.5, 0.2, 0.1]), ("a", "b", "c", "d"), 3) == [
        (1, "b", 0.5), (0, "a", 0.2), (2, "c", 0.2)]


# ---- predictions of a checkpoint, and their cache --------------------------------------------

def write_checkpoint(path, model_name="tutorial_mlp", seed=0, **config) -> torch.nn.Module:
    """A freshly initialised model saved as a checkpoint (torch_version as a plain str, which
    weights_only loading accepts)."""
    torch.manual_seed(seed)
    model = build_model(model_name)
    save_checkpoint(path, {"model": model_name, "model_state": model.state_dict(), "config": config,
                           "epoch": 1, "step": 1, "torch_version": str(torch.__version__)})
    return model.eval()


def reference_logits(model, images_uint8_nhwc, tta=False) -> np.ndarray:
    """An independent path: tests/reference.normalize_np (numpy) and a plain forward pass."""
    with torch.no_grad():
        x = torch.from_numpy(normalize_np(images_uint8_nhwc))
        logits = model(x)
        if tta:
            logits = (logits + model(x.flip(3))) / 2
    return logits.numpy()


@pytest.fixture(scope="module")
def test_split():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(300, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 300).astype(np.int64)
    return images, labels


def test_predictions_match_an_independent_forward_pass(tmp_path, test_split):
    images, labels = test_split
    model = write_checkpoint(tmp_path / "run" / "best.pt")
    preds = evaluate.predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES, device="cpu")
    ref = reference_logits(model, images)
    np.testing.assert_array_equal(preds.predicted, ref.argmax(1))
    np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-6)
    expected_loss = torch.nn.functional.cross_entropy(torch.from_numpy(ref), torch.from_numpy(labels), reduction="none")
    np.testing.assert_allclose(preds.loss, expected_loss.numpy(), rtol=1e-5, atol=1e-6)
    assert preds.accuracy == float((ref.argmax(1) == labels).mean())


def test_tta_runs_average_the_mirror_image(tmp_path, test_split):
    images, labels = test_split
    model = write_checkpoint(tmp_path / "run" / "best.pt", "cpu_cnn", tta=True)
    preds = evaluate.predictions_for_checkpoint(tmp_path / "run" / "best.pt", images[:64], labels[:64], CLASSES,
                                                device="cpu")
    ref = reference_logits(model, images[:64], tta=True)
    np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-5)


def test_second_visit_is_served_from_the_cache_without_recomputing(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt)
    first = evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert first.source == "computed"
    (cache,) = (tmp_path / "run" / "eval").glob("best-*.npz")
    assert cache == evaluate.cache_path(ckpt, checkpoint_key(ckpt), "best")
    stamp = cache.stat().st_mtime_ns
    time.sleep(0.01)
    second = evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert second.source == "cache"
    assert cache.stat().st_mtime_ns == stamp  # not rewritten: nothing was recomputed
    for name in ("labels", "predicted", "probs", "loss"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))


def test_a_replaced_checkpoint_is_never_served_stale_numbers(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt, seed=0)
    old = evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    old_key = checkpoint_key(ckpt)
    new_model = write_checkpoint(ckpt, seed=1)  # training wrote a better checkpoint over it
    assert checkpoint_key(ckpt) != old_key
    new = evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best", device="cpu")
    assert new.source == "computed" and new.key == checkpoint_key(ckpt)
    assert not np.array_equal(old.probs, new.probs)
    np.testing.assert_array_equal(new.predicted, reference_logits(new_model, images).argmax(1))
    # the stale file is gone, the new one is there
    assert [p.name for p in (tmp_path / "run" / "eval").glob("best-*.npz")] == [f"best-{new.key}.npz"]
    assert evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES, which="best").source == "cache"


def test_best_and_last_have_separate_caches(tmp_path, test_split):
    images, labels = test_split
    write_checkpoint(tmp_path / "run" / "best.pt", seed=0)
    write_checkpoint(tmp_path / "run" / "last.pt", seed=1)
    best = evaluate.predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES, which="best")
    last = evaluate.predictions_for_checkpoint(tmp_path / "run" / "last.pt", images, labels, CLASSES, which="last")
    assert not np.array_equal(best.probs, last.probs)
    assert evaluate.predictions_for_checkpoint(tmp_path / "run" / "best.pt", images, labels, CLASSES,
                                               which="best").source == "cache"
    assert len(list((tmp_path / "run" / "eval").glob("*.npz"))) == 2


def test_a_different_test_split_or_a_torn_cache_is_recomputed(tmp_path, test_split):
    images, labels = test_split
    ckpt = tmp_path / "run" / "best.pt"
    write_checkpoint(ckpt)
    evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES)
    other = evaluate.predictions_for_checkpoint(ckpt, images[::-1].copy(), labels[::-1].copy(), CLASSES)
    assert other.source == "computed"
    (cache,) = (tmp_path / "run" / "eval").glob("best-*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    again = evaluate.predictions_for_checkpoint(ckpt, images, labels, CLASSES)
    assert again.source == "computed" and len(again.labels) == len(labels)


def test_progress_is_reported_per_chunk(tmp_path, test_split):
    images, labels = test_split
    write_checkpoint(tmp_path / "best.pt")
    calls = []
    evaluate.predictions_for_checkpoint(tmp_path / "best.pt", images, labels, CLASSES, batch_size=128,
                                        progress=lambda d, t: calls.append((d, t)))
    assert calls == [(128, 300), (256, 300), (300, 300)]


@pytest.mark.cifar
def test_real_test_split_mlp_and_cnn_agree_with_the_reference(tmp_path, cifar_root):
    from core.data import load_cifar10

    ds = load_cifar10(cifar_root, download=False)
    images, labels = ds.test.images[:2000], ds.test.labels[:2000]
    for name in ("tutorial_mlp", "cpu_cnn"):
        model = write_checkpoint(tmp_path / name / "best.pt", name)
        preds = evaluate.predictions_for_checkpoint(tmp_path / name / "best.pt", images, labels, ds.classes)
        ref = reference_logits(model, images)
        assert (preds.predicted == ref.argmax(1)).mean() > 0.999  # float reductions may tie-break differently
        np.testing.assert_allclose(preds.probs, torch.softmax(torch.from_numpy(ref), 1).numpy(), atol=1e-4)


# ---- numpy replay ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_mlp(test_split):
    """A tutorial MLP after a few Adam steps, so its logits are those of a model that learnt something."""
    images, labels = test_split
    torch.manual_seed(0)
    model = build_model("tutorial_mlp")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(normalize_np(images))
    y = torch.from_numpy(labels)
    for _ in range(20):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def test_numpy_replay_float32_agrees_with_torch(trained_mlp, test_split):
    images, labels = test_split
    report = evaluate.numpy_replay(trained_mlp, images, labels, dtype=np.float32)
    assert report.n == len(images) and report.dtype == "float32"
    assert report.agreement == 1.0
    assert report.max_abs_logit_diff < 1e-4
    assert report.torch_accuracy == report.numpy_accuracy > 0.5  # it memorised part of these images


def test_numpy_replay_float64_agrees_with_torch(trained_mlp, test_split, tmp_path):
    images, labels = test_split
    save_checkpoint(tmp_path / "best.pt", {"model": "tutorial_mlp", "model_state": trained_mlp.state_dict(),
                                           "config": {}, "torch_version": str(torch.__version__)})
    report = evaluate.numpy_replay(tmp_path / "best.pt", images, labels, dtype=np.float64)
    assert report.agreement == 1.0
    assert report.max_abs_logit_diff < 1e-9
    # the replay does not change the model it was given
    assert next(trained_mlp.parameters()).dtype == torch.float32


def test_numpy_replay_flattens_in_channel_height_width_order(trained_mlp, test_split):
    images, _ = test_split
    net = evaluate.numpy_network_from_mlp(trained_mlp, np.float64)
    x = normalize_np(images[:5]).astype(np.float64)
    by_hand = net(x.reshape(5, -1))  # (N, C, H, W) -> (N, C*H*W)
    hwc = net(x.transpose(0, 2, 3, 1).reshape(5, -1))  # the wrong order gives other logits
    with torch.no_grad():
        expected = copy.deepcopy(trained_mlp).double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(by_hand, expected, atol=1e-9)
    assert np.abs(hwc - expected).max() > 1e-3


def test_only_the_mlp_can_be_replayed(test_split):
    with pytest.raises(ValueError, match="tutorial MLP"):
        evaluate.numpy_replay(build_model("cpu_cnn"), test_split[0][:4])


# ---- uploaded images --------------------------------------------------------------------------

def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return build_model("tutorial_mlp").eval()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_predict_image_on_png_and_jpeg(mlp, fmt):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    result = evaluate.predict_image(mlp, data, k=3)
    assert result.format == fmt and result.original_size == (64, 48)
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(result.top) == 3
    assert [p for *_, p in result.top] == sorted((p for *_, p in result.top), reverse=True)
    assert result.top[0][1] == CLASSES[int(result.probs.argmax())]
    # the same 32x32 image through the reference path gives the same probabilities
    ref = torch.softmax(torch.from_numpy(reference_logits(mlp, result.image[None])), 1)[0].numpy()
    np.testing.assert_allclose(result.probs, ref, atol=1e-6)


def test_upload_preprocessing_crops_the_centre_square_and_keeps_colours():
    img = Image.new("RGB", (300, 100), (0, 0, 255))       # blue bands left and right
    img.paste((200, 30, 10), (100, 0, 200, 100))           # a red centre square
    small, size, fmt = evaluate.image_from_bytes(encoded(img, "PNG"))
    assert size == (300, 100) and fmt == "PNG"
    assert (small == np.array([200, 30, 10], np.uint8)).all()


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    small, _, _ = evaluate.image_from_bytes(encoded(img, "PNG"))
    assert (small == 255).all()


def test_predict_image_rejects_empty_bytes(mlp):
    with pytest.raises(ValueError, match="empty"):
        evaluate.predict_image(mlp, b"")


def test_predict_image_rejects_a_text_file(mlp):
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        evaluate.predict_image(mlp, b"class,label\ncat,3\n" * 20)


def test_predict_image_rejects_other_image_formats(mlp):
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        evaluate.predict_image(mlp, encoded(Image.new("RGB", (8, 8)), "GIF"))


def test_predict_image_rejects_a_huge_image_before_decoding_it(mlp):
    # 8000 x 8000 = 64 megapixels; one bit per pixel, so the PNG itself is small
    data = encoded(Image.new("1", (8000, 8000)), "PNG")
    assert len(data) < evaluate.MAX_UPLOAD_BYTES
    with pytest.raises(ValueError, match="megapixels"):
        evaluate.predict_image(mlp, data)


def test_predict_image_rejects_a_huge_file(mlp):
    data = encoded(Image.new("RGB", (16, 16)), "PNG") + os.urandom(evaluate.MAX_UPLOAD_BYTES)
    with pytest.raises(ValueError, match="MB"):
        evaluate.predict_image(mlp, data)


def test_predict_image_rejects_a_truncated_file(mlp):
    data = encoded(Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(ValueError, match="could not be"):
        evaluate.predict_image(mlp, data[: len(data) // 2])
