"""Metric values checked against hand-computed numbers on tiny arrays."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from rich.console import Console

from kiln.evaluate import metrics as metrics_mod
from kiln.evaluate.metrics import (
    METRICS,
    classification_metrics,
    format_metrics_table,
    register_metric,
    regression_metrics,
)


def _onehot_proba(y_pred: list[int], n_classes: int, high: float = 0.8) -> np.ndarray:
    """Probabilities whose argmax is ``y_pred``."""
    low = (1 - high) / (n_classes - 1)
    proba = np.full((len(y_pred), n_classes), low)
    proba[np.arange(len(y_pred)), y_pred] = high
    return proba


def _pairwise_auc(pos: np.ndarray, neg: np.ndarray) -> float:
    """AUC as the fraction of (positive, negative) pairs ranked correctly (ties count 1/2)."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _assert_plain(value: object) -> None:
    """Recursively check there are only python builtins (no numpy scalars)."""
    if isinstance(value, dict):
        for v in value.values():
            _assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            _assert_plain(v)
    else:
        assert value is None or type(value) in (int, float), type(value)


BINARY_Y = np.array([0, 1, 1, 0, 1])
BINARY_P1 = np.array([0.2, 0.7, 0.4, 0.6, 0.9])  # predictions: 0 1 0 1 1


def test_binary_matches_hand_computed() -> None:
    proba = np.column_stack([1 - BINARY_P1, BINARY_P1])
    out = classification_metrics(BINARY_Y, proba, ["no", "yes"], loss=0.25)
    # TP=2 (idx 1, 4), FP=1 (idx 3), FN=1 (idx 2), TN=1 (idx 0)
    assert out["accuracy"] == pytest.approx(3 / 5)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["recall"] == pytest.approx(2 / 3)
    assert out["f1"] == pytest.approx(2 / 3)
    # positives {0.7, 0.4, 0.9} vs negatives {0.2, 0.6}: 5 of 6 pairs ordered correctly
    assert out["roc_auc"] == pytest.approx(5 / 6)
    assert out["loss"] == 0.25
    assert out["confusion_matrix"] == [[1, 1], [1, 2]]
    assert out["per_class"]["no"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert out["per_class"]["yes"]["support"] == 3
    _assert_plain(out)
    assert json.loads(json.dumps(out)) == out


def test_binary_uses_positive_class_not_average() -> None:
    # Predict everything as class 0: positive-class precision/recall are 0 (zero_division=0).
    y = np.array([0, 0, 0, 1])
    proba = _onehot_proba([0, 0, 0, 0], 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = classification_metrics(y, proba, ["a", "b"])
    assert out["accuracy"] == pytest.approx(0.75)
    assert out["precision"] == 0.0
    assert out["recall"] == 0.0
    assert out["f1"] == 0.0
    assert out["loss"] is None
    assert out["per_class"]["a"]["recall"] == 1.0


def test_multiclass_macro_matches_hand_computed() -> None:
    y_true = np.array([0, 1, 2, 2, 1, 0])
    y_pred = [0, 2, 2, 2, 1, 1]
    proba = _onehot_proba(y_pred, 3)
    out = classification_metrics(y_true, proba, ["a", "b", "c"])
    # per class (P, R, F1): a (1, 1/2, 2/3); b (1/2, 1/2, 1/2); c (2/3, 1, 4/5)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["precision"] == pytest.approx((1 + 1 / 2 + 2 / 3) / 3)
    assert out["recall"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)
    assert out["f1"] == pytest.approx((2 / 3 + 1 / 2 + 4 / 5) / 3)
    assert out["per_class"]["c"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert out["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 2]]
    expected_auc = np.mean(
        [_pairwise_auc(proba[y_true == k, k], proba[y_true != k, k]) for k in range(3)]
    )
    assert out["roc_auc"] == pytest.approx(expected_auc)
    _assert_plain(out)
    json.dumps(out)


def test_multiclass_roc_auc_skips_classes_absent_from_y_true() -> None:
    y_true = np.array([0, 0, 1, 1])
    proba = np.array([[0.7, 0.2, 0.1], [0.3, 0.5, 0.2], [0.2, 0.6, 0.2], [0.4, 0.3, 0.3]])
    out = classification_metrics(y_true, proba, ["a", "b", "c"])
    expected = np.mean([_pairwise_auc(proba[y_true == k, k], proba[y_true != k, k]) for k in (0, 1)])
    assert out["roc_auc"] == pytest.approx(expected)
    assert out["per_class"]["c"]["support"] == 0


@pytest.mark.parametrize("n_classes", [2, 3])
def test_single_class_roc_auc_is_none(n_classes: int) -> None:
    y = np.ones(4, dtype=int)
    proba = _onehot_proba([1, 1, 0, 1], n_classes)
    out = classification_metrics(y, proba, [f"c{i}" for i in range(n_classes)])
    assert out["roc_auc"] is None
    assert out["accuracy"] == pytest.approx(0.75)
    assert json.loads(json.dumps(out))["roc_auc"] is None


def test_accepts_float_labels_and_numpy_loss() -> None:
    proba = np.column_stack([1 - BINARY_P1, BINARY_P1]).astype(np.float32)
    out = classification_metrics(BINARY_Y.astype(float), proba, ["no", "yes"], loss=np.float32(0.5))
    assert out["accuracy"] == pytest.approx(0.6)
    assert type(out["loss"]) is float


@pytest.mark.parametrize(
    ("y", "proba", "classes"),
    [
        ([0, 1], np.ones((2, 3)) / 3, ["a", "b"]),  # proba width != number of classes
        ([0, 1, 1], np.ones((2, 2)) / 2, ["a", "b"]),  # row count mismatch
        ([0, 2], np.ones((2, 2)) / 2, ["a", "b"]),  # label out of range
        ([0, 0.5], np.ones((2, 2)) / 2, ["a", "b"]),  # non-integer label
        ([0, 1], np.ones((2, 2)) / 2, ["a", "a"]),  # duplicate class names
        ([], np.ones((0, 2)), ["a", "b"]),  # empty split
    ],
)
def test_classification_rejects_bad_input(y: list, proba: np.ndarray, classes: list[str]) -> None:
    with pytest.raises(ValueError):
        classification_metrics(np.asarray(y), proba, classes)


def test_regression_matches_hand_computed() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([[1.5], [2.0], [2.5], [5.0]])  # column vector is accepted
    out = regression_metrics(y_true, y_pred, loss=0.375)
    # errors 0.5, 0, -0.5, 1 -> SSE 1.5; SST around mean 2.5 is 5
    assert out["mse"] == pytest.approx(1.5 / 4)
    assert out["rmse"] == pytest.approx(math.sqrt(1.5 / 4))
    assert out["mae"] == pytest.approx(2.0 / 4)
    assert out["r2"] == pytest.approx(1 - 1.5 / 5)
    assert out["loss"] == 0.375
    _assert_plain(out)
    json.dumps(out)


def test_regression_single_sample_r2_is_none_and_shape_checked() -> None:
    out = regression_metrics(np.array([2.0]), np.array([3.0]))
    assert out["mse"] == 1.0 and out["r2"] is None and out["loss"] is None
    with pytest.raises(ValueError):
        regression_metrics(np.array([1.0, 2.0]), np.array([1.0]))


def test_register_metric_extends_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_mod, "METRICS", dict(METRICS))

    @register_metric("error_rate", "classification")
    def _error_rate(y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray) -> float:
        return float(np.mean(y_true != y_pred))

    @register_metric("max_error", "regression")
    def _max_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(np.max(np.abs(y_true - y_pred)))

    proba = np.column_stack([1 - BINARY_P1, BINARY_P1])
    assert classification_metrics(BINARY_Y, proba, ["no", "yes"])["error_rate"] == pytest.approx(0.4)
    assert regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]))["max_error"] == 2.0
    assert "error_rate" not in regression_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    with pytest.raises(ValueError, match="already registered"):
        register_metric("error_rate", "classification")(_error_rate)
    with pytest.raises(ValueError, match="kind"):
        register_metric("other", "ranking")
    assert "error_rate" not in METRICS  # the real registry was untouched


def _render(table: object) -> str:
    console = Console(record=True, width=120)
    console.print(table)
    return console.export_text()


def test_format_metrics_table_columns_rows_and_decimals() -> None:
    proba = np.column_stack([1 - BINARY_P1, BINARY_P1])
    val = classification_metrics(BINARY_Y, proba, ["no", "yes"], loss=0.123456)
    test = classification_metrics(BINARY_Y[:4], proba[:4], ["no", "yes"])
    table = format_metrics_table({"validation": val, "test": test})
    assert [c.header for c in table.columns] == ["metric", "validation", "test"]
    assert table.row_count == 6  # accuracy precision recall f1 roc_auc loss; nested skipped
    text = _render(table)
    assert "0.6000" in text and "0.1235" in text and "0.8333" in text
    assert "per_class" not in text and "confusion_matrix" not in text and "support" not in text


def test_format_metrics_table_per_feature_and_flat_input() -> None:
    reg = regression_metrics(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.5, 5.0]))
    table = format_metrics_table({"test": {"Fare": reg}})
    text = _render(table)
    assert "Fare.r2" in text and "0.7000" in text
    flat = format_metrics_table(reg)
    assert [c.header for c in flat.columns] == ["metric", "value"]
    assert "0.3750" in _render(flat)


@pytest.mark.parametrize("n_classes", [2, 3, 7])
def test_classification_scores_equal_scikit_learn(n_classes: int) -> None:
    """The confusion-matrix scores match scikit-learn's, including classes never predicted or absent."""
    from sklearn import metrics as skm

    from kiln.evaluate.metrics import classification_metrics

    rng = np.random.default_rng(n_classes)
    for trial in range(30):
        n = int(rng.integers(1, 60))
        y = rng.integers(0, n_classes, size=n)
        proba = rng.dirichlet(np.ones(n_classes) * (0.2 if trial % 2 else 1.0), size=n)
        pred = proba.argmax(1)
        got = classification_metrics(y, proba, [f"c{k}" for k in range(n_classes)])
        average = {"average": "binary", "pos_label": 1} if n_classes == 2 else {"average": "macro", "labels": list(range(n_classes))}
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0, **average))
        assert got["recall"] == pytest.approx(skm.recall_score(y, pred, zero_division=0, **average))
        assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0, **average))
        p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=list(range(n_classes)), average=None, zero_division=0)
        for k in range(n_classes):
            assert got["per_class"][f"c{k}"] == pytest.approx({"precision": p[k], "recall": r[k], "f1": f[k], "support": s[k]})
        assert got["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


@pytest.mark.parametrize("n_classes", [2, 4])
def test_roc_auc_equals_scikit_learn_with_ties(n_classes: int) -> None:
    from sklearn import metrics as skm

    from kiln.evaluate.metrics import classification_metrics

    rng = np.random.default_rng(10 + n_classes)
    for _ in range(30):
        n = int(rng.integers(4, 80))
        y = rng.integers(0, n_classes, size=n)
        if np.unique(y).size < 2:
            continue
        proba = np.round(rng.dirichlet(np.ones(n_classes), size=n), 1)  # rounding makes ties
        proba = proba / proba.sum(1, keepdims=True)
        got = classification_metrics(y, proba, [f"c{k}" for k in range(n_classes)])["roc_auc"]
        if n_classes == 2:
            expected = skm.roc_auc_score(y, proba[:, 1])
        else:
            expected = np.mean([skm.roc_auc_score(y == k, proba[:, k]) for k in np.unique(y)])
        assert got == pytest.approx(expected)
