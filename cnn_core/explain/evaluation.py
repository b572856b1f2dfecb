"""Scores of a trained model on labelled images: accuracy, loss, confusion matrix, report.

Everything is computed by ``sklearn.metrics`` from two arrays, the true labels and the
predicted probabilities, so the numbers are the ones a data scientist would get in a
notebook. The functions after ``evaluate_predictions`` find the images behind the numbers:
the examples in one confusion-matrix cell, the most confident mistakes, and the right
answers the model was least sure of.

Typical use::

    probs = predict_in_batches(model, x_test)            # (N, K) softmax outputs
    ev = evaluate_predictions(y_test, probs, class_names)
    ev.accuracy, ev.loss, ev.confusion, ev.report
    idx, scores = cell_examples(y_test, ev.y_pred, probs, true_class=4, pred_class=9)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    log_loss,
    precision_recall_fscore_support,
)

# Keras clips probabilities to [1e-7, 1 - 1e-7] in its cross-entropy; the same floor keeps
# a confident mistake (probability 0 for the true class) at a finite loss of about 16.1.
PROB_EPSILON = 1e-7
REPORT_FIELDS = ("class", "precision", "recall", "f1", "support")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """The scores of one model on one labelled set.

    Attributes:
        class_names: Name of each class, in label order.
        y_true: (N,) int labels.
        y_pred: (N,) predicted labels (argmax of the probabilities).
        accuracy: Fraction of right answers.
        loss: Mean categorical cross-entropy of the probabilities (clipped like Keras).
        confusion: (K, K) counts; row = true class, column = predicted class.
        confusion_normalised: ``confusion`` with every row divided by its sum (the recall
            of each class on the diagonal); a class with no examples has a row of zeros.
        report: One record per class: class, precision, recall, f1, support.
        macro: The unweighted mean of precision, recall and F1 over the classes (+ support).
        weighted: Their mean weighted by support (+ support).
    """

    class_names: list[str]
    y_true: np.ndarray
    y_pred: np.ndarray
    accuracy: float
    loss: float
    confusion: np.ndarray
    confusion_normalised: np.ndarray
    report: list[dict[str, Any]] = field(default_factory=list)
    macro: dict[str, Any] = field(default_factory=dict)
    weighted: dict[str, Any] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Number of evaluated images."""
        return int(self.y_true.size)

    def report_records(self) -> list[dict[str, Any]]:
        """The per-class records followed by the macro and weighted averages, for a table."""
        return [*self.report, self.macro, self.weighted]


class Examples(NamedTuple):
    """Image indices with one score each (the probability the model gave its answer)."""

    indices: np.ndarray
    scores: np.ndarray


# --- Validation -----------------------------------------------------------------------------
def _check_probs(probs: object) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] < 2:
        raise ValueError(
            f"probs must be an (N, K) array of class probabilities with N >= 1 and K >= 2, "
            f"not shape {p.shape}."
        )
    if not np.all(np.isfinite(p)) or p.min() < 0:
        raise ValueError("probs must be finite and non-negative: pass the softmax outputs.")
    return p


def _check_labels(y_true: object, n: int, k: int) -> np.ndarray:
    """Int labels from int labels or one-hot rows, checked against N and K."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == k:
        y = y.argmax(axis=1)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(
            f"y_true must hold {n} labels (one per row of probs), not shape {y.shape}."
        )
    if y.dtype.kind not in "iuf":
        raise ValueError(f"y_true must hold class numbers, not {y.dtype} values.")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(np.mod(y, 1) == 0):
            raise ValueError("y_true must hold whole class numbers, not fractions.")
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= k):
        raise ValueError(f"y_true must hold class numbers from 0 to {k - 1}.")
    return y.astype(np.int64)


def _check_names(class_names: Sequence[str], k: int) -> list[str]:
    names = [str(name) for name in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names were given for {k} columns of probs.")
    return names


# --- Scores ---------------------------------------------------------------------------------
def evaluate_predictions(
    y_true: np.ndarray, probs: np.ndarray, class_names: Sequence[str]
) -> Evaluation:
    """Accuracy, loss, confusion matrix and per-class report of a set of predictions.

    Args:
        y_true: (N,) int labels, or (N, K) one-hot rows.
        probs: (N, K) predicted probabilities (softmax outputs).
        class_names: K names, in label order.

    Returns:
        The Evaluation.

    Raises:
        ValueError: If the shapes disagree, a label is out of range, or probs is not a
            table of non-negative finite numbers.
    """
    p = _check_probs(probs)
    n, k = p.shape
    y = _check_labels(y_true, n, k)
    names = _check_names(class_names, k)
    labels = np.arange(k)
    y_pred = p.argmax(axis=1)
    counts = confusion_matrix(y, y_pred, labels=labels)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, y_pred, labels=labels, zero_division=0
    )
    report = [_record(names[i], precision[i], recall[i], f1[i], support[i]) for i in range(k)]
    averages = {}
    for average in ("macro", "weighted"):
        pr, rc, f, _ = precision_recall_fscore_support(
            y, y_pred, labels=labels, average=average, zero_division=0
        )
        averages[average] = _record(f"{average} avg", pr, rc, f, n)
    return Evaluation(
        class_names=names,
        y_true=y,
        y_pred=y_pred,
        accuracy=float(accuracy_score(y, y_pred)),
        loss=cross_entropy(y, p),
        confusion=counts,
        confusion_normalised=normalise_rows(counts),
        report=report,
        macro=averages["macro"],
        weighted=averages["weighted"],
    )


def _record(name: str, precision, recall, f1, support) -> dict[str, Any]:
    return {
        "class": name,
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "support": int(support),
    }


def cross_entropy(y_true: np.ndarray, probs: np.ndarray) -> float:
    """Mean categorical cross-entropy, with probabilities floored at PROB_EPSILON.

    Rows are renormalised after the floor so sklearn's ``log_loss`` sees true
    probabilities (float32 softmax rows sum to 1 only within ~1e-7).

    Args:
        y_true: (N,) int labels.
        probs: (N, K) probabilities.

    Returns:
        The loss in nats.
    """
    p = np.clip(np.asarray(probs, dtype=np.float64), PROB_EPSILON, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    return float(log_loss(y_true, p, labels=np.arange(p.shape[1])))


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum; rows that sum to 0 stay 0."""
    m = np.asarray(matrix, dtype=np.float64)
    sums = m.sum(axis=1, keepdims=True)
    return np.divide(m, sums, out=np.zeros_like(m), where=sums > 0)


# --- The images behind the numbers ----------------------------------------------------------
def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"The number of examples must be a whole number >= 0, not {k!r}.")
    return int(k)


def _ranked(candidates: np.ndarray, scores: np.ndarray, k: int, descending: bool) -> Examples:
    order = np.argsort(-scores if descending else scores, kind="stable")[:k]
    return Examples(candidates[order], scores[order])


def cell_examples(
    y_true: np.ndarray,
    y_pred: np.ndarray | None,
    probs: np.ndarray,
    true_class: int,
    pred_class: int,
    limit: int = 32,
) -> Examples:
    """The images behind one confusion-matrix cell, most confident first.

    Args:
        y_true: (N,) int labels, or (N, K) one-hot rows.
        y_pred: (N,) predicted labels, or None for the argmax of ``probs``.
        probs: (N, K) probabilities.
        true_class: The cell's row.
        pred_class: The cell's column.
        limit: At most this many examples.

    Returns:
        Examples(indices, scores): the indices into the evaluated set, and the
        probability the model gave ``pred_class`` for each.

    Raises:
        ValueError: If shapes disagree or a class is out of range.
    """
    p = _check_probs(probs)
    n, k = p.shape
    y = _check_labels(y_true, n, k)
    predicted = p.argmax(axis=1) if y_pred is None else _check_labels(y_pred, n, k)
    for name, value in (("true_class", true_class), ("pred_class", pred_class)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{name} must be a class number, not {value!r}.")
        if not 0 <= value < k:
            raise ValueError(f"{name} must be between 0 and {k - 1}, not {value}.")
    limit = _check_k(limit)
    candidates = np.flatnonzero((y == true_class) & (predicted == pred_class))
    return _ranked(candidates, p[candidates, pred_class], limit, descending=True)


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, k: int) -> Examples:
    """The k wrong answers given with the highest probability.

    Args:
        y_true: (N,) int labels, or (N, K) one-hot rows.
        probs: (N, K) probabilities.
        k: How many examples at most.

    Returns:
        Examples(indices, scores), scores being the probability of the wrong answer.
    """
    p = _check_probs(probs)
    y = _check_labels(y_true, *p.shape)
    predicted = p.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    return _ranked(wrong, p[wrong, predicted[wrong]], _check_k(k), descending=True)


def unsure_correct(y_true: np.ndarray, probs: np.ndarray, k: int) -> Examples:
    """The k right answers given with the lowest probability.

    Args:
        y_true: (N,) int labels, or (N, K) one-hot rows.
        probs: (N, K) probabilities.
        k: How many examples at most.

    Returns:
        Examples(indices, scores), scores being the probability of the right answer.
    """
    p = _check_probs(probs)
    y = _check_labels(y_true, *p.shape)
    right = np.flatnonzero(p.argmax(axis=1) == y)
    return _ranked(right, p[right, y[right]], _check_k(k), descending=False)


# --- Export ---------------------------------------------------------------------------------
def report_csv(evaluation: Evaluation) -> str:
    """The per-class report, then the macro and weighted averages and accuracy, as CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(REPORT_FIELDS)
    for record in evaluation.report_records():
        writer.writerow(
            [record["class"]]
            + [f"{record[key]:.4f}" for key in ("precision", "recall", "f1")]
            + [record["support"]]
        )
    writer.writerow(["accuracy", "", "", f"{evaluation.accuracy:.4f}", evaluation.count])
    return buffer.getvalue()


def confusion_csv(evaluation: Evaluation, normalised: bool = False) -> str:
    """The confusion matrix as CSV: one row per true class, one column per predicted class."""
    matrix = evaluation.confusion_normalised if normalised else evaluation.confusion
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true \\ predicted", *evaluation.class_names])
    for name, row in zip(evaluation.class_names, matrix, strict=True):
        cells = [f"{v:.4f}" for v in row] if normalised else [int(v) for v in row]
        writer.writerow([name, *cells])
    return buffer.getvalue()


def largest_mistake(confusion: np.ndarray) -> tuple[int, int] | None:
    """The off-diagonal cell with the most images: the model's most common mistake.

    Args:
        confusion: (K, K) counts, row = true class, column = predicted class.

    Returns:
        (true class, predicted class), the first such cell in reading order on a tie, or
        None when every image is on the diagonal.

    Raises:
        ValueError: If the matrix is not square.
    """
    m = np.asarray(confusion)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"A confusion matrix is square (K, K), not shape {m.shape}.")
    off = np.where(np.eye(m.shape[0], dtype=bool), 0, m)
    if off.size == 0 or off.max() <= 0:
        return None
    true_class, pred_class = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(true_class), int(pred_class)


def selected_cell(
    cells: Sequence[Sequence[Any]], class_names: Sequence[str]
) -> tuple[int, int] | None:
    """The confusion-matrix cell named by a table selection, if it is one of this matrix.

    Args:
        cells: Selected cells as (row position, column name) pairs, as ``st.dataframe``
            reports them for a matrix whose columns are the class names.
        class_names: The matrix's classes, in order.

    Returns:
        (true class, predicted class) of the first cell, or None when nothing is selected
        or the cell lies outside this matrix (a selection kept from another dataset).
    """
    names = [str(name) for name in class_names]
    for row, column in cells:
        if isinstance(row, int | np.integer) and 0 <= row < len(names) and column in names:
            return int(row), names.index(column)
    return None
