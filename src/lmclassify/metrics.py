"""Classification metrics of one set of test predictions, computed with scikit-learn.

Uncertainty (bootstrap intervals) and significance tests between methods live in
`lmclassify.stats`; writing the numbers into `results.json` is left to `lmclassify.report`.
"""

import math

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support, roc_auc_score

UNPARSED = -1  # the pred of a generation that matched no label word


def classification_metrics(labels, preds, proba, classes) -> dict:
    """Accuracy, precision, recall, F1, ROC AUC and per-class recall of one method.

    With two classes, precision / recall / F1 are those of the positive (second, id 1)
    class; with more, they are macro averages over all classes. A pred of -1 ("no
    prediction") counts as wrong for accuracy and for the recall of its true class, and is
    never a prediction of any class, so it lowers no class's precision. AUC is NaN when the
    test labels do not contain every class (ROC AUC is then undefined); `json_safe` turns
    it into null.

    Every number can be reproduced from `predictions.jsonl` (`label` / `pred` are class
    names, a null `pred` is -1) and the `classes` of `results.json`::

        import json
        import numpy as np
        from sklearn.metrics import (accuracy_score, precision_recall_fscore_support,
                                     roc_auc_score)

        rows = [json.loads(line) for line in open("predictions.jsonl")]
        # One result: filter on method, and on verbalizer, calibration, seed where they vary.
        rows = [r for r in rows if r["method"] == "probe"]
        ids = {name: i for i, name in enumerate(classes)}
        y = [ids[r["label"]] for r in rows]
        p = [-1 if r["pred"] is None else ids[r["pred"]] for r in rows]
        proba = np.array([r["proba"] for r in rows])  # [n, n_classes]
        k = len(classes)

        accuracy = accuracy_score(y, p)
        prec, rec, f1, _ = precision_recall_fscore_support(
            y, p, labels=list(range(k)), zero_division=0)  # one value per class
        # two classes: prec[1], rec[1], f1[1]; more: prec.mean(), rec.mean(), f1.mean()
        # recall_per_class: dict(zip(classes, rec))
        auc = (roc_auc_score(y, proba[:, 1]) if k == 2
               else roc_auc_score(y, proba, multi_class="ovr", average="macro"))

    Args:
        labels: true class ids, each in `range(len(classes))`. [n]
        preds: predicted class ids, or -1 for no prediction. [n]
        proba: class probabilities, rows summing to 1. [n, n_classes]
        classes: ordered class names.

    Returns:
        `{"accuracy", "f1", "precision", "recall", "auc", "recall_per_class": {name: value},
        "n", "n_unparsed"}` with plain Python numbers.

    Raises:
        ValueError: empty input, lengths that differ, a `proba` of the wrong shape or whose
            rows do not sum to 1, or a class id out of range.

    Example:
        >>> m = classification_metrics([0, 1, 1], [0, 1, -1], [[.8, .2], [.3, .7], [.5, .5]],
        ...                            ["negative", "positive"])
        >>> m["accuracy"], m["recall"], m["n_unparsed"]
        (0.6666666666666666, 0.5, 1)
    """
    labels, preds, proba = check_predictions(labels, preds, proba, classes)
    k = len(classes)

    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, preds, labels=list(range(k)), zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(labels, preds)),
        "f1": _summarise(f1),
        "precision": _summarise(precision),
        "recall": _summarise(recall),
        "auc": roc_auc(labels, proba),
        "recall_per_class": {name: float(r) for name, r in zip(classes, recall)},
        "n": len(labels),
        "n_unparsed": int(np.sum(preds == UNPARSED)),
    }


def roc_auc(labels, proba) -> float:
    """ROC AUC: of the positive class for two classes, one-vs-rest macro for more.

    NaN when some class is missing from `labels`, where scikit-learn would raise.
    `labels` [n] and `proba` [n, n_classes] are taken as already checked.
    """
    k = proba.shape[1]
    if len(np.unique(labels)) < k:
        return float("nan")
    if k == 2:
        return float(roc_auc_score(labels, proba[:, 1]))
    return float(roc_auc_score(labels, proba, multi_class="ovr", average="macro"))


def check_predictions(labels, preds, proba, classes):
    """Check one method's test predictions and return them as numpy arrays.

    Returns:
        `(labels, preds, proba)`: int arrays [n] and [n], a float array [n, n_classes].

    Raises:
        ValueError: as listed in `classification_metrics`.
        TypeError: `labels` or `preds` that are not integer class ids.
    """
    k = len(classes)
    if k < 2:
        raise ValueError(f"`classes` must name at least two classes, got {list(classes)!r}")
    labels = _as_ids(labels, "labels")
    preds = _as_ids(preds, "preds")
    if len(labels) == 0:
        raise ValueError("`labels` is empty: metrics need at least one test example")
    if len(preds) != len(labels):
        raise ValueError(
            f"`preds` has {len(preds)!r} entries but `labels` has {len(labels)!r}; they must match"
        )

    _check_range(labels, 0, k, "labels")
    _check_range(preds, UNPARSED, k, "preds")
    return labels, preds, _check_proba(proba, len(labels), k)


def json_safe(obj):
    """`obj` made writable by `json.dump` with `allow_nan=False`.

    NaN and infinite floats become None, numpy scalars and arrays become Python numbers
    and lists, tuples become lists; dicts and lists are converted recursively.
    """
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _summarise(per_class: np.ndarray) -> float:
    """The positive class's value for two classes, the unweighted class mean for more."""
    return float(per_class[1] if len(per_class) == 2 else per_class.mean())


def _as_ids(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"`{name}` must be a flat sequence of class ids, got {array.shape!r}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{name}` must hold integer class ids, got {str(array.dtype)!r}")
    return array.astype(np.int64)


def _check_range(ids: np.ndarray, low: int, k: int, name: str) -> None:
    bad = ids[(ids < low) | (ids >= k)]
    if bad.size:
        allowed = f"range({k})" + (" or -1 for no prediction" if low < 0 else "")
        raise ValueError(f"`{name}` must hold class ids in {allowed}, got {int(bad[0])!r}")


def _check_proba(proba, n: int, k: int) -> np.ndarray:
    proba = np.asarray(proba, dtype=float)
    if proba.shape != (n, k):
        raise ValueError(
            f"`proba` must have shape (n_examples, n_classes) = {(n, k)!r}, got {proba.shape!r}"
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError("`proba` must be finite, got NaN or inf")

    # The tolerance of scikit-learn's own check in multi-class roc_auc_score.
    sums = proba.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1) > 1e-5)
    if off.size:
        raise ValueError(
            f"`proba` rows must sum to 1, row {int(off[0])!r} sums to {float(sums[off[0]])!r}"
        )
    return proba
