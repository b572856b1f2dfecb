"""Tests for cnn_core.explain.evaluation: every number against sklearn, and a hand-checked
example."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from sklearn import metrics

from cnn_core.explain.evaluation import (
    cell_examples,
    confident_mistakes,
    confusion_csv,
    evaluate_predictions,
    largest_mistake,
    report_csv,
    selected_cell,
    unsure_correct,
)
from devtools.explain_inputs import random_predictions

NAMES = ["cat", "dog", "bird"]
# Six images, three classes. True: cat cat dog dog bird bird; predicted (argmax):
# cat dog dog dog cat bird. Worked out by hand below.
Y_HAND = np.array([0, 0, 1, 1, 2, 2])
P_HAND = np.array(
    [
        [0.7, 0.2, 0.1],  # cat  -> cat, right (p=0.7)
        [0.3, 0.6, 0.1],  # cat  -> dog, wrong (0.6)
        [0.1, 0.8, 0.1],  # dog  -> dog, right (0.8)
        [0.2, 0.5, 0.3],  # dog  -> dog, right (0.5)
        [0.9, 0.05, 0.05],  # bird -> cat, wrong (0.9)
        [0.2, 0.2, 0.6],  # bird -> bird, right (0.6)
    ]
)


def test_hand_checked_example():
    ev = evaluate_predictions(Y_HAND, P_HAND, NAMES)
    assert ev.accuracy == pytest.approx(4 / 6)
    assert ev.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    np.testing.assert_allclose(ev.confusion_normalised[0], [0.5, 0.5, 0])
    cat, dog, bird = ev.report
    # cat: predicted 2 times, 1 right; 2 true cats, 1 found.
    assert (cat["precision"], cat["recall"], cat["f1"], cat["support"]) == (0.5, 0.5, 0.5, 2)
    # dog: predicted 3 times, 2 right; both dogs found: F1 = 2·(2/3·1)/(2/3+1) = 0.8.
    assert dog["precision"] == pytest.approx(2 / 3) and dog["recall"] == 1.0
    assert dog["f1"] == pytest.approx(0.8)
    assert (bird["precision"], bird["recall"]) == (1.0, 0.5)
    assert ev.macro["f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    loss = -np.mean(np.log([0.7, 0.3, 0.8, 0.5, 0.05, 0.6]))
    assert ev.loss == pytest.approx(loss)


@pytest.mark.parametrize("k", [2, 10])
def test_every_number_equals_sklearn(k):
    y, probs = random_predictions(500, k, seed=k)
    names = [f"c{i}" for i in range(k)]
    ev = evaluate_predictions(y, probs, names)
    y_pred = probs.argmax(axis=1)
    assert ev.accuracy == metrics.accuracy_score(y, y_pred)
    np.testing.assert_array_equal(ev.confusion, metrics.confusion_matrix(y, y_pred))
    np.testing.assert_allclose(
        ev.confusion_normalised, metrics.confusion_matrix(y, y_pred, normalize="true")
    )
    p, r, f, s = metrics.precision_recall_fscore_support(y, y_pred)
    for i, record in enumerate(ev.report):
        assert record["class"] == names[i]
        assert record["precision"] == pytest.approx(p[i])
        assert record["recall"] == pytest.approx(r[i])
        assert record["f1"] == pytest.approx(f[i])
        assert record["support"] == s[i]
    sk_report = metrics.classification_report(y, y_pred, output_dict=True)
    for ours, theirs in ((ev.macro, "macro avg"), (ev.weighted, "weighted avg")):
        assert ours["precision"] == pytest.approx(sk_report[theirs]["precision"])
        assert ours["recall"] == pytest.approx(sk_report[theirs]["recall"])
        assert ours["f1"] == pytest.approx(sk_report[theirs]["f1-score"])
        assert ours["support"] == sk_report[theirs]["support"] == 500
    p64 = probs.astype(np.float64)
    p64 /= p64.sum(axis=1, keepdims=True)
    assert ev.loss == pytest.approx(metrics.log_loss(y, p64), rel=1e-6)


def test_one_hot_labels_and_missing_classes():
    y, probs = random_predictions(40, 4)
    probs[:, 3] = 0.0  # never predicted
    y[y == 3] = 0  # and never present
    ev = evaluate_predictions(np.eye(4)[y], probs, list("abcd"))
    assert ev.report[3] == {"class": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert ev.confusion_normalised[3].tolist() == [0, 0, 0, 0]


def test_loss_is_clipped_for_a_certain_mistake():
    ev = evaluate_predictions([0, 1], [[0.0, 1.0], [0.0, 1.0]], ["a", "b"])
    assert math.isfinite(ev.loss)
    assert ev.loss == pytest.approx(-np.log(1e-7) / 2, rel=1e-3)


def test_validation_messages():
    with pytest.raises(ValueError, match="4 class names were given for 3 columns"):
        evaluate_predictions(Y_HAND, P_HAND, ["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="from 0 to 2"):
        evaluate_predictions([0, 1, 2, 3, 0, 0], P_HAND, NAMES)
    with pytest.raises(ValueError, match="6 labels"):
        evaluate_predictions([0, 1], P_HAND, NAMES)
    with pytest.raises(ValueError, match="non-negative"):
        evaluate_predictions(Y_HAND, -P_HAND, NAMES)
    with pytest.raises(ValueError, match="N, K"):
        evaluate_predictions([0], [0.5], NAMES)


def test_cell_examples_most_confident_first():
    # The (true cat, predicted dog) cell holds image 1; (true dog, predicted dog) 2 and 3.
    idx, scores = cell_examples(Y_HAND, None, P_HAND, true_class=0, pred_class=1)
    assert idx.tolist() == [1] and scores.tolist() == [0.6]
    idx, scores = cell_examples(Y_HAND, P_HAND.argmax(1), P_HAND, 1, 1)
    assert idx.tolist() == [2, 3] and scores.tolist() == [0.8, 0.5]
    assert cell_examples(Y_HAND, None, P_HAND, 1, 1, limit=1).indices.tolist() == [2]
    assert cell_examples(Y_HAND, None, P_HAND, 2, 1).indices.size == 0
    with pytest.raises(ValueError, match="between 0 and 2"):
        cell_examples(Y_HAND, None, P_HAND, 3, 1)


def test_cells_partition_the_set():
    y, probs = random_predictions(300, 5, seed=7)
    ev = evaluate_predictions(y, probs, list("abcde"))
    for t in range(5):
        for p in range(5):
            found = cell_examples(y, ev.y_pred, probs, t, p, limit=300)
            assert found.indices.size == ev.confusion[t, p]
            assert np.all(np.diff(found.scores) <= 0)


def test_confident_mistakes_and_unsure_correct():
    idx, scores = confident_mistakes(Y_HAND, P_HAND, 5)
    assert idx.tolist() == [4, 1] and scores.tolist() == [0.9, 0.6]
    idx, scores = unsure_correct(Y_HAND, P_HAND, 2)
    assert idx.tolist() == [3, 5] and scores.tolist() == [0.5, 0.6]
    assert confident_mistakes(Y_HAND, P_HAND, 0).indices.size == 0
    with pytest.raises(ValueError, match="whole number"):
        unsure_correct(Y_HAND, P_HAND, -1)


def test_largest_mistake_is_the_biggest_off_diagonal_cell():
    confusion = np.array([[50, 3, 7], [7, 40, 0], [1, 2, 60]])
    assert largest_mistake(confusion) == (0, 2)  # the first of the two 7s in reading order
    assert largest_mistake(np.diag([5, 6, 7])) is None
    ev = evaluate_predictions(Y_HAND, P_HAND, NAMES)
    assert largest_mistake(ev.confusion) == (0, 1)  # cat as dog and bird as cat: 1 each
    with pytest.raises(ValueError, match="square"):
        largest_mistake(np.zeros((2, 3)))


def test_selected_cell_ignores_cells_of_another_matrix():
    assert selected_cell([(2, "dog")], NAMES) == (2, 1)
    assert selected_cell([], NAMES) is None
    assert selected_cell([(8, "8")], NAMES) is None  # kept from a 10-class matrix
    assert selected_cell([(1, "8"), (0, "bird")], NAMES) == (0, 2)


def test_csv_exports():
    ev = evaluate_predictions(Y_HAND, P_HAND, NAMES)
    rows = list(csv.reader(io.StringIO(report_csv(ev))))
    assert rows[0] == ["class", "precision", "recall", "f1", "support"]
    assert rows[1] == ["cat", "0.5000", "0.5000", "0.5000", "2"]
    assert [r[0] for r in rows[4:]] == ["macro avg", "weighted avg", "accuracy"]
    assert rows[-1][3] == "0.6667"
    rows = list(csv.reader(io.StringIO(confusion_csv(ev))))
    assert rows[0] == ["true \\ predicted", "cat", "dog", "bird"]
    assert rows[3] == ["bird", "1", "0", "1"]
    rows = list(csv.reader(io.StringIO(confusion_csv(ev, normalised=True))))
    assert rows[1] == ["cat", "0.5000", "0.5000", "0.0000"]


def test_ten_thousand_predictions_are_all_counted():
    """What was left of a timing test; benchmarks/explain_timing.py prints the time now."""
    y, probs = random_predictions(10_000, 10)
    ev = evaluate_predictions(y, probs, [str(i) for i in range(10)])
    assert ev.count == 10_000
