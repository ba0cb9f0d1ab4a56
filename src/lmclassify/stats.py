"""Uncertainty of test metrics and paired significance tests between methods.

- Percentile bootstrap confidence intervals (Efron & Tibshirani 1993, "An Introduction to
  the Bootstrap", ch. 13), and a paired bootstrap of the accuracy difference of two
  methods scored on the same test examples.
- Exact McNemar test on the discordant pairs (McNemar 1947): the binomial form, not the
  chi-square approximation with Edwards' (1948) continuity correction, since test sets
  often leave few discordant pairs.
- Holm-Bonferroni step-down correction for comparing many pairs (Holm 1979).

The metrics themselves are defined in `lmclassify.metrics`; this module only resamples
them. Each bootstrap resample draws n test indices with replacement from
`numpy.random.default_rng(seed)`, so a seed fixes every interval.
"""

import itertools

import numpy as np
from scipy.stats import binom

from lmclassify.metrics import check_predictions

_CHUNK_CELLS = 1 << 21  # resample weights held in memory at once: 16 MiB of float64


def bootstrap_ci(
    labels, preds, proba, classes, *, n_resamples=1000, confidence=0.95, seed=0
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of every metric of `classification_metrics`.

    Each resample's metrics equal `classification_metrics` on that resample; they are
    counted with numpy from per-resample confusion tables and a rank-based AUC instead of
    calling scikit-learn a thousand times. Resamples where AUC is
    undefined (a class missing) are skipped for AUC; if all are, its interval is NaN.

    Args:
        labels, preds, proba, classes: as in `lmclassify.metrics.classification_metrics`.
        n_resamples: number of bootstrap resamples.
        confidence: coverage of the interval, in (0, 1).
        seed: seed of the resampling; the same seed gives the same intervals.

    Returns:
        `{"accuracy", "f1", "precision", "recall", "auc", "recall/<class>"...: (lo, hi)}`.

    Raises:
        ValueError: bad predictions (see `classification_metrics`), `n_resamples` < 1 or
            `confidence` outside (0, 1).
    """
    labels, preds, proba = check_predictions(labels, preds, proba, classes)
    _check_bootstrap_args(n_resamples, confidence)

    chunks = [
        _resample_metrics(weights, labels, preds, proba, classes)
        for weights in _resample_weights(len(labels), n_resamples, seed)
    ]
    samples = {name: np.concatenate([chunk[name] for chunk in chunks]) for name in chunks[0]}
    return {name: _percentile_interval(values, confidence) for name, values in samples.items()}


def paired_bootstrap_diff(
    labels, preds_a, preds_b, *, n_resamples=1000, confidence=0.95, seed=0
) -> dict:
    """Accuracy of A minus accuracy of B, with a paired percentile bootstrap interval.

    Both methods are scored on the same resampled indices, so the interval reflects the
    spread of the difference, not of two independent accuracies.

    Returns:
        `{"diff": float, "ci": (lo, hi)}`.
    """
    correct_a, correct_b = _correctness(labels, preds_a, preds_b)
    _check_bootstrap_args(n_resamples, confidence)

    gain = correct_a.astype(float) - correct_b  # [n] in {-1, 0, 1}
    resamples = _resample_weights(len(gain), n_resamples, seed)
    diffs = [weights @ gain / len(gain) for weights in resamples]  # [chunk] each
    return {
        "diff": float(gain.mean()),
        "ci": _percentile_interval(np.concatenate(diffs), confidence),
    }


def mcnemar_exact(labels, preds_a, preds_b) -> dict:
    """Exact McNemar test of whether methods A and B have the same accuracy.

    Only discordant examples count: b = A right and B wrong, c = A wrong and B right.
    Under the null each is equally likely, so p = min(1, 2 * P[Binomial(b + c, 1/2) <=
    min(b, c)]), and p = 1 when b + c = 0. A pred of -1 is wrong.

    Returns:
        `{"b": int, "c": int, "p_value": float}`.
    """
    correct_a, correct_b = _correctness(labels, preds_a, preds_b)
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    if b + c == 0:
        return {"b": b, "c": c, "p_value": 1.0}
    return {"b": b, "c": c, "p_value": float(min(1.0, 2 * binom.cdf(min(b, c), b + c, 0.5)))}


def holm_correction(p_values: list[float], alpha=0.05) -> list[dict]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    With the m p-values sorted ascending, the i-th adjusted value is
    max over j <= i of min(1, (m - j + 1) * p_(j)). Rejecting where it is <= alpha keeps
    the family-wise error rate at alpha.

    Returns:
        One `{"p_value", "p_adjusted", "significant"}` per input p-value.

    Raises:
        ValueError: a p-value outside [0, 1] or `alpha` outside (0, 1).
    """
    p = np.asarray(p_values, dtype=float).reshape(-1)
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError(f"`p_values` must lie in [0, 1], got {list(p_values)!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must lie in (0, 1), got {alpha!r}")

    m = len(p)
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return [
        {"p_value": float(raw), "p_adjusted": float(adj), "significant": bool(adj <= alpha)}
        for raw, adj in zip(p, adjusted)
    ]


def pairwise_comparisons(
    labels, predictions: dict[str, list[int]], *, n_resamples=1000, seed=0, alpha=0.05
) -> list[dict]:
    """Compare every pair of methods: McNemar, paired bootstrap, then Holm over all pairs.

    Pairs follow the dict's order: (a, b) with a listed before b. All pairs share the
    bootstrap seed, hence the same resampled indices.

    Returns:
        One row per pair with keys
        `"a"`, `"b"`: the method names;
        `"accuracy_a"`, `"accuracy_b"`: their accuracies;
        `"diff"`, `"ci"`: accuracy_a - accuracy_b and its 95 % paired bootstrap interval;
        `"a_only_correct"`, `"b_only_correct"`: McNemar's b and c;
        `"p_value"`: exact McNemar p-value;
        `"p_adjusted"`, `"significant"`: Holm-adjusted p-value over all pairs, and
        whether it is <= alpha.
    """
    rows = [
        _compare_pair(labels, a, predictions[a], b, predictions[b], n_resamples, seed)
        for a, b in itertools.combinations(predictions, 2)
    ]
    holm = holm_correction([row["p_value"] for row in rows], alpha=alpha)
    adjusted = [{key: h[key] for key in ("p_adjusted", "significant")} for h in holm]
    return [row | extra for row, extra in zip(rows, adjusted)]


def _compare_pair(labels, a, preds_a, b, preds_b, n_resamples, seed) -> dict:
    correct_a, correct_b = _correctness(labels, preds_a, preds_b)
    diff = paired_bootstrap_diff(labels, preds_a, preds_b, n_resamples=n_resamples, seed=seed)
    test = mcnemar_exact(labels, preds_a, preds_b)
    return {
        "a": a,
        "b": b,
        "accuracy_a": float(correct_a.mean()),
        "accuracy_b": float(correct_b.mean()),
        "diff": diff["diff"],
        "ci": diff["ci"],
        "a_only_correct": test["b"],
        "b_only_correct": test["c"],
        "p_value": test["p_value"],
    }


def _correctness(labels, preds_a, preds_b) -> tuple[np.ndarray, np.ndarray]:
    """Whether each method is right on each example: two bool arrays [n]."""
    labels, preds_a, preds_b = (np.asarray(x) for x in (labels, preds_a, preds_b))
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"`labels` must be a non-empty flat sequence, got {labels.shape!r}")
    for name, preds in (("preds_a", preds_a), ("preds_b", preds_b)):
        if preds.shape != labels.shape:
            raise ValueError(
                f"`{name}` has shape {preds.shape!r} but `labels` has {labels.shape!r}; "
                "they must match"
            )
    return preds_a == labels, preds_b == labels


def _check_bootstrap_args(n_resamples, confidence) -> None:
    if not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"`n_resamples` must be a positive integer, got {n_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"`confidence` must lie in (0, 1), got {confidence!r}")


def _resample_weights(n: int, n_resamples: int, seed: int):
    """Yield, chunk by chunk, how often each example is drawn in each resample.

    Yields:
        float arrays [chunk, n] of counts; each row sums to n.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        indices = rng.integers(0, n, size=(size, n))  # [chunk, n]
        flat = (indices + n * np.arange(size)[:, None]).ravel()
        yield np.bincount(flat, minlength=size * n).reshape(size, n).astype(float)


def _resample_metrics(weights, labels, preds, proba, classes) -> dict[str, np.ndarray]:
    """`classification_metrics` of every resample in `weights` [chunk, n]: arrays [chunk]."""
    k = len(classes)
    tp, n_true, n_pred = _confusion_counts(weights, labels, preds, k)  # each [chunk, k]

    # zero_division=0, as in the scikit-learn definitions.
    precision = _safe_divide(tp, n_pred)
    recall = _safe_divide(tp, n_true)
    f1 = _safe_divide(2 * tp, n_pred + n_true)

    metrics = {
        "accuracy": tp.sum(axis=1) / len(labels),
        "f1": _summarise(f1),
        "precision": _summarise(precision),
        "recall": _summarise(recall),
        "auc": _resample_auc(weights, labels, proba),
    }
    return metrics | {f"recall/{name}": recall[:, c] for c, name in enumerate(classes)}


def _summarise(per_class) -> np.ndarray:
    """The positive class's value for two classes, the class mean for more: [chunk]."""
    return per_class[:, 1] if per_class.shape[1] == 2 else per_class.mean(axis=1)


def _confusion_counts(weights, labels, preds, k: int):
    """True positives, true count and predicted count of each class: three arrays [chunk, k].

    A pred of -1 lands in its own column of the confusion table, so it is a miss for its
    true class and a prediction of no class.
    """
    cells = labels * (k + 1) + (preds + 1)  # [n]: cell of the k x (k + 1) table
    one_hot = np.zeros((len(cells), k * (k + 1)))
    one_hot[np.arange(len(cells)), cells] = 1
    table = (weights @ one_hot).reshape(-1, k, k + 1)  # [chunk, true, pred + 1]

    tp = table[:, np.arange(k), np.arange(k) + 1]
    return tp, table.sum(axis=2), table[:, :, 1:].sum(axis=1)


def _resample_auc(weights, labels, proba) -> np.ndarray:
    """ROC AUC as in `lmclassify.metrics.roc_auc` for every resample: array [chunk]."""
    k = proba.shape[1]
    if k == 2:
        return _weighted_auc(weights, labels == 1, proba[:, 1])
    per_class = [_weighted_auc(weights, labels == c, proba[:, c]) for c in range(k)]
    return np.mean(per_class, axis=0)  # NaN wherever a class is missing


def _weighted_auc(weights, positive, scores) -> np.ndarray:
    """Binary ROC AUC (Mann-Whitney, ties count 1/2) with examples repeated per `weights`.

    Equals scikit-learn's `roc_auc_score` on the resampled data, ties included; NaN where a
    resample has no positive or no negative example.

    Args:
        weights: how often each example occurs in each resample. [chunk, n]
        positive: whether each example is of the positive class. [n]
        scores: the positive class's score of each example. [n]
    """
    order = np.argsort(scores, kind="stable")
    sorted_scores = scores[order]
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])

    # Weight of positives and negatives at each distinct score, ascending. [chunk, n_unique]
    w = weights[:, order]
    pos = np.add.reduceat(w * positive[order], starts, axis=1)
    neg = np.add.reduceat(w * ~positive[order], starts, axis=1)

    neg_below = np.cumsum(neg, axis=1) - neg
    wins = np.sum(pos * (neg_below + 0.5 * neg), axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    return np.where(pairs > 0, _safe_divide(wins, pairs), np.nan)


def _safe_divide(num, den) -> np.ndarray:
    """num / den, and 0 where den is 0."""
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


def _percentile_interval(values, confidence: float) -> tuple[float, float]:
    """Central percentile interval of the finite `values`; (nan, nan) if there are none."""
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)
