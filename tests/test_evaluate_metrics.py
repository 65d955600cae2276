"""core.evaluate.metrics: exact numbers on a hand-built confusion, most-confused pairs, mistake queries, top-k."""
from __future__ import annotations

import math

import numpy as np
import pytest

from core.data import CLASSES
from core.evaluate import metrics
from core.evaluate.predictions import Predictions
from evaluate_fixtures import predictions_from_probs

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


def hand_built() -> Predictions:
    probs = np.zeros((len(ROWS), 5), np.float32)
    labels = []
    for i, (t, p, p_pred, p_true) in enumerate(ROWS):
        fixed = {p: p_pred} if p_true is None else {p: p_pred, t: p_true}
        rest = [c for c in range(5) if c not in fixed]
        probs[i, rest] = (1 - sum(fixed.values())) / len(rest)
        for c, v in fixed.items():
            probs[i, c] = v
        labels.append(t)
    return predictions_from_probs(labels, probs, NAMES)


def test_hand_built_predictions_are_what_the_table_says():
    preds = hand_built()
    assert preds.predicted.tolist() == [r[1] for r in ROWS]
    np.testing.assert_allclose(preds.probs.sum(1), 1.0, rtol=1e-6)
    assert preds.loss[5] == pytest.approx(-math.log(0.05), rel=1e-6)


def test_confusion_matrix_counts_rows_true_columns_predicted():
    preds = hand_built()
    cm = metrics.confusion_matrix(preds.labels, preds.predicted, 5)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, EXPECTED_CM)


def test_summary_numbers_are_exact():
    s = metrics.summarize(hand_built().labels, hand_built().predicted, NAMES)
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
    s = metrics.summarize(hand_built().labels, hand_built().predicted, NAMES)
    expected = [[3 / 4, 1 / 4, 0, 0, 0], [1 / 3, 1 / 3, 1 / 3, 0, 0], [0, 1 / 3, 2 / 3, 0, 0],
                [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    assert s.confusion_normalized.tolist() == expected
    assert metrics.row_normalize(EXPECTED_CM).tolist() == expected


def test_most_confused_pairs_sorted_by_count_then_class_order():
    s = metrics.summarize(hand_built().labels, hand_built().predicted, NAMES)
    pairs = [(p.true_class, p.predicted_class, p.count, p.fraction) for p in s.most_confused(None)]
    assert pairs == [(3, 0, 2, 1.0), (0, 1, 1, 1 / 4), (1, 0, 1, 1 / 3), (1, 2, 1, 1 / 3), (2, 1, 1, 1 / 3)]
    top = s.most_confused(2)
    assert [(p.true_name, p.predicted_name) for p in top] == [("dog", "ant"), ("ant", "bee")]


def test_class_table_rows():
    s = metrics.summarize(hand_built().labels, hand_built().predicted, NAMES)
    rows = s.table()
    assert rows[0] == {"class": "ant", "images": 4, "predicted": 6, "correct": 3, "accuracy": 0.75,
                       "precision": 0.5, "recall": 0.75, "f1": pytest.approx(0.6, abs=1e-15)}
    assert rows[4]["images"] == 0 and rows[4]["precision"] == 0.0


def test_empty_split_and_bad_ids():
    s = metrics.summarize([], [], NAMES)
    assert s.total == 0 and s.accuracy == 0.0 and s.most_confused() == []
    with pytest.raises(ValueError, match="class ids"):
        metrics.confusion_matrix([0, 5], [0, 0], 5)


# ---- misclassified queries ----------------------------------------------------------------

def indices(page) -> list[int]:
    return page.indices.tolist()


def test_misclassified_sorted_by_confidence_in_the_wrong_answer():
    page = metrics.misclassified(hand_built(), sort="confidence")
    assert page.total == 6
    assert indices(page) == [5, 10, 9, 6, 11, 3]
    assert page.confidence.tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.55, 0.5])
    assert page.true_class.tolist() == [1, 3, 2, 1, 3, 0]
    assert page.predicted_class.tolist() == [0, 0, 1, 2, 0, 1]


def test_misclassified_sorted_by_loss():
    page = metrics.misclassified(hand_built(), sort="loss")
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
    page = metrics.misclassified(hand_built(), true_class=true_class, predicted_class=predicted_class)
    assert indices(page) == expected
    assert page.total == len(expected)
    for row in page.rows(NAMES):
        assert true_class is None or row["true"] == true_class
        assert predicted_class is None or row["predicted"] == predicted_class
        assert row["true"] != row["predicted"]
        assert row["true_name"] == NAMES[row["true"]]


def test_misclassified_paging():
    preds = hand_built()
    assert indices(metrics.misclassified(preds, offset=2, limit=2)) == [9, 6]
    assert indices(metrics.misclassified(preds, offset=5, limit=10)) == [3]
    past = metrics.misclassified(preds, offset=6, limit=10)
    assert len(past) == 0 and past.total == 6
    assert metrics.misclassified(preds, limit=0).total == 6
    with pytest.raises(ValueError):
        metrics.misclassified(preds, offset=-1)
    with pytest.raises(ValueError):
        metrics.misclassified(preds, sort="random")
    with pytest.raises(ValueError):
        metrics.misclassified(preds, true_class=5)


def test_paging_through_thousands_of_mistakes_visits_each_once_in_order():
    rng = np.random.default_rng(0)
    n = 6000
    logits = rng.normal(size=(n, 10)).astype(np.float32)
    logits[:, 3] += 0.5  # cat gets over-predicted
    labels = rng.integers(0, 10, n)
    preds = Predictions.from_logits(labels, logits, CLASSES)
    for sort, key in (("confidence", preds.confidence), ("loss", preds.loss)):
        wrong = [i for i in range(n) if preds.predicted[i] != labels[i] and preds.predicted[i] == 3]
        expected = sorted(wrong, key=lambda i: (-float(key[i]), i))
        seen = []
        offset = 0
        while True:
            page = metrics.misclassified(preds, predicted_class=3, sort=sort, offset=offset, limit=100)
            assert page.total == len(wrong) > 1000
            if not len(page):
                break
            seen += indices(page)
            offset += 100
        assert seen == expected


def test_ties_keep_the_lower_index_first():
    probs = np.full((4, 3), 0.1, np.float32)
    probs[:, 1] = 0.8
    preds = predictions_from_probs([0, 0, 2, 0], probs, ("a", "b", "c"))
    assert indices(metrics.misclassified(preds)) == [0, 1, 2, 3]
    assert metrics.top_k(np.array([0.2, 0.5, 0.2, 0.1]), ("a", "b", "c", "d"), 3) == [
        (1, "b", 0.5), (0, "a", 0.2), (2, "c", 0.2)]
