import json
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

from lmclassify.metrics import classification_metrics, json_safe

BINARY = ["negative", "positive"]

# 4 negatives, 6 positives: TP 4, FN 2, FP 1, TN 3.
LABELS = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
PREDS = [0, 0, 1, 0, 1, 1, 1, 0, 1, 0]
# Positive-class scores with ties across classes (0.4 and 0.6 occur in both).
SCORES = [0.1, 0.2, 0.6, 0.4, 0.9, 0.8, 0.7, 0.4, 0.6, 0.3]


def _binary_proba(scores):
    scores = np.asarray(scores, dtype=float)
    return np.stack([1 - scores, scores], axis=1)


def test_binary_example_has_hand_computed_values():
    m = classification_metrics(LABELS, PREDS, _binary_proba(SCORES), BINARY)

    assert m["accuracy"] == pytest.approx(0.7, abs=1e-15)
    assert m["precision"] == pytest.approx(0.8, abs=1e-15)
    assert m["recall"] == pytest.approx(4 / 6, abs=1e-15)
    assert m["f1"] == pytest.approx(8 / 11, abs=1e-15)
    # 24 positive-negative pairs: 4 + 4 + 4 + 2.5 + 3.5 + 2 = 20 won, ties worth 1/2.
    assert m["auc"] == pytest.approx(20 / 24, abs=1e-15)
    assert m["recall_per_class"] == pytest.approx({"negative": 0.75, "positive": 4 / 6})
    assert (m["n"], m["n_unparsed"]) == (10, 0)


def test_returns_plain_python_numbers():
    m = classification_metrics(LABELS, PREDS, _binary_proba(SCORES), BINARY)

    for key in ("accuracy", "f1", "precision", "recall", "auc"):
        assert type(m[key]) is float
    assert all(type(v) is float for v in m["recall_per_class"].values())
    assert type(m["n"]) is int and type(m["n_unparsed"]) is int
    json.dumps(m, allow_nan=False)


def test_three_classes_are_sklearn_macro_averages():
    labels = [0, 0, 1, 1, 2, 2, 2]
    preds = [0, 1, 1, 1, 2, 0, -1]
    proba = np.array(
        [[.7, .2, .1], [.3, .6, .1], [.1, .8, .1], [.2, .5, .3],
         [.1, .1, .8], [.5, .2, .3], [.3, .3, .4]]
    )  # fmt: skip
    m = classification_metrics(labels, preds, proba, ["a", "b", "c"])

    # Per class P / R / F1: a .5 / .5 / .5, b 2/3 / 1 / .8, c 1 / 1/3 / .5.
    assert m["accuracy"] == pytest.approx(4 / 7, abs=1e-15)
    assert m["precision"] == pytest.approx(13 / 18, abs=1e-15)
    assert m["recall"] == pytest.approx(11 / 18, abs=1e-15)
    assert m["f1"] == pytest.approx(0.6, abs=1e-15)
    assert m["recall_per_class"] == pytest.approx({"a": 0.5, "b": 1.0, "c": 1 / 3})

    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, preds, labels=[0, 1, 2], average="macro", zero_division=0
    )
    assert (m["precision"], m["recall"], m["f1"]) == (precision, recall, f1)
    assert m["accuracy"] == accuracy_score(labels, preds)
    assert m["auc"] == roc_auc_score(labels, proba, multi_class="ovr", average="macro")


def test_unparsed_predictions_lower_accuracy_and_recall_but_not_precision():
    labels = [0, 0, 1, 1, 1, 1]
    proba = _binary_proba([0.2, 0.3, 0.8, 0.7, 0.6, 0.9])

    unparsed = classification_metrics(labels, [0, -1, 1, 1, -1, 1], proba, BINARY)
    assert unparsed["accuracy"] == pytest.approx(4 / 6, abs=1e-15)
    assert unparsed["recall"] == pytest.approx(0.75, abs=1e-15)
    assert unparsed["precision"] == 1.0
    assert unparsed["f1"] == pytest.approx(6 / 7, abs=1e-15)
    assert unparsed["recall_per_class"] == {"negative": 0.5, "positive": 0.75}
    assert unparsed["n_unparsed"] == 2

    # The same two answers as wrong classes would also cost the positive class precision.
    wrong = classification_metrics(labels, [0, 1, 1, 1, 0, 1], proba, BINARY)
    assert wrong["accuracy"] == unparsed["accuracy"]
    assert wrong["precision"] == 0.75
    assert wrong["n_unparsed"] == 0


def test_single_class_labels_give_nan_auc_and_json_null():
    m = classification_metrics([1, 1, 1], [1, 0, -1], _binary_proba([0.9, 0.4, 0.5]), BINARY)

    assert math.isnan(m["auc"])
    assert m["recall"] == pytest.approx(1 / 3, abs=1e-15)
    safe = json_safe(m)
    assert safe["auc"] is None
    assert json.loads(json.dumps(safe, allow_nan=False))["auc"] is None


def test_missing_class_among_three_gives_nan_auc():
    proba = np.full((2, 3), 1 / 3)
    assert math.isnan(classification_metrics([0, 1], [0, 1], proba, ["a", "b", "c"])["auc"])


def test_json_safe_converts_numpy_and_non_finite_values():
    obj = {
        "a": np.float32(0.5),
        "b": [np.int64(3), float("inf"), -float("inf")],
        "c": (np.float64("nan"), np.bool_(True)),
        "d": np.array([1.0, np.nan]),
        "e": "text",
    }
    assert json_safe(obj) == {
        "a": 0.5, "b": [3, None, None], "c": [None, True], "d": [1.0, None], "e": "text"
    }  # fmt: skip
    assert type(json_safe(obj)["b"][0]) is int


PROBA3 = _binary_proba([0.1, 0.9, 0.5])


@pytest.mark.parametrize(
    ("labels", "preds", "proba", "classes", "error", "match"),
    [
        ([0, 1, 1], [0, 1], PROBA3, BINARY, ValueError, r"`preds` has 2 entries"),
        ([0, 1, 1], [0, 1, 1], PROBA3[:2], BINARY, ValueError, r"`proba` must have shape"),
        ([0, 1, 1], [0, 1, 1], PROBA3.T, BINARY, ValueError, r"got \(2, 3\)"),
        ([0, 2, 1], [0, 1, 1], PROBA3, BINARY, ValueError, r"`labels` .* range\(2\), got 2"),
        ([0, -1, 1], [0, 1, 1], PROBA3, BINARY, ValueError, r"`labels` .*, got -1"),
        ([0, 1, 1], [0, 1, 2], PROBA3, BINARY, ValueError, r"`preds` .* -1 .*, got 2"),
        ([0, 1, 1], [0, -2, 1], PROBA3, BINARY, ValueError, r"`preds` .*, got -2"),
        ([], [], np.zeros((0, 2)), BINARY, ValueError, r"`labels` is empty"),
        ([0, 1, 1], [0, 1, 1], PROBA3 * 2, BINARY, ValueError, r"rows must sum to 1, row 0"),
        ([0, 1, 1], [0, 1, 1], PROBA3 * np.nan, BINARY, ValueError, r"`proba` must be finite"),
        ([0, 1, 1], [0, 1, 1], PROBA3, ["only"], ValueError, r"`classes` .* \['only'\]"),
        ([[0, 1, 1]], [0, 1, 1], PROBA3, BINARY, ValueError, r"`labels` must be a flat"),
        ([0, 1, 1], [0.0, 1.0, 1.0], PROBA3, BINARY, TypeError, r"`preds` .* 'float64'"),
    ],
)
def test_bad_input_is_rejected(labels, preds, proba, classes, error, match):
    with pytest.raises(error, match=match):
        classification_metrics(labels, preds, proba, classes)
