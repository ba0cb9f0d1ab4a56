import math

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import roc_auc_score

from lmclassify import stats
from lmclassify.metrics import classification_metrics
from lmclassify.stats import (
    bootstrap_ci,
    holm_correction,
    mcnemar_exact,
    paired_bootstrap_diff,
    pairwise_comparisons,
)

BINARY = ["negative", "positive"]
METRIC_NAMES = ["accuracy", "f1", "precision", "recall", "auc"]


def _predictions(n, accuracy, n_classes=2, seed=0):
    """Random test predictions: labels [n], preds [n] with some -1, proba [n, n_classes]."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    noise = rng.integers(0, n_classes, n)
    preds = np.where(rng.random(n) < accuracy, labels, noise)
    preds[rng.random(n) < 0.05] = -1
    logits = rng.normal(size=(n, n_classes))
    logits[np.arange(n), labels] += 1.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return labels, preds, proba


def _paired(b, c, both_right=5, both_wrong=3):
    """Labels and two methods' preds with b A-only and c B-only correct examples."""
    n = b + c + both_right + both_wrong
    labels = np.ones(n, dtype=int)
    a_right = np.r_[np.ones(b), np.zeros(c), np.ones(both_right), np.zeros(both_wrong)]
    b_right = np.r_[np.zeros(b), np.ones(c), np.ones(both_right), np.zeros(both_wrong)]
    # Wrong answers alternate between the other class and no answer at all.
    wrong = np.where(np.arange(n) % 2 == 0, 0, -1)
    return labels, np.where(a_right == 1, 1, wrong), np.where(b_right == 1, 1, wrong)


# McNemar


@pytest.mark.parametrize(("b", "c"), [(1, 6), (6, 1), (0, 5), (3, 3), (10, 4), (25, 40), (0, 1)])
def test_mcnemar_equals_scipy_binomial_test(b, c):
    result = mcnemar_exact(*_paired(b, c))

    assert (result["b"], result["c"]) == (b, c)
    assert result["p_value"] == pytest.approx(binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)


def test_mcnemar_small_case_by_hand():
    # P[Bin(7, 1/2) <= 1] = (1 + 7) / 128, doubled.
    assert mcnemar_exact(*_paired(1, 6))["p_value"] == pytest.approx(0.125, abs=1e-15)


def test_mcnemar_without_discordant_pairs_is_one():
    assert mcnemar_exact(*_paired(0, 0)) == {"b": 0, "c": 0, "p_value": 1.0}


def test_mcnemar_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"`preds_b` has shape \(2,\)"):
        mcnemar_exact([0, 1, 1], [0, 1, 1], [0, 1])


# Holm


def test_holm_adjustments_by_hand():
    rows = holm_correction([0.01, 0.04, 0.03, 0.005])

    # Sorted: 0.005 * 4, 0.01 * 3, 0.03 * 2, max(0.04 * 1, 0.06).
    assert [r["p_adjusted"] for r in rows] == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert [r["p_value"] for r in rows] == [0.01, 0.04, 0.03, 0.005]
    assert [r["significant"] for r in rows] == [True, False, False, True]


def test_holm_caps_at_one_and_keeps_ties_equal():
    rows = holm_correction([0.5, 0.2, 0.2], alpha=0.5)

    assert [r["p_adjusted"] for r in rows] == pytest.approx([0.6, 0.6, 0.6], abs=1e-15)
    assert [r["p_adjusted"] for r in holm_correction([0.6, 0.9])] == [1.0, 1.0]
    assert holm_correction([]) == []


@pytest.mark.parametrize(
    ("p_values", "alpha", "match"),
    [([0.1, 1.5], 0.05, r"`p_values` .* \[0.1, 1.5\]"), ([0.1], 1.0, r"`alpha` .* 1.0")],
)
def test_holm_rejects_bad_input(p_values, alpha, match):
    with pytest.raises(ValueError, match=match):
        holm_correction(p_values, alpha=alpha)


# Bootstrap


def test_bootstrap_is_deterministic_for_a_seed():
    labels, preds, proba = _predictions(300, 0.7)

    first = bootstrap_ci(labels, preds, proba, BINARY, n_resamples=200, seed=3)
    assert bootstrap_ci(labels, preds, proba, BINARY, n_resamples=200, seed=3) == first
    assert bootstrap_ci(labels, preds, proba, BINARY, n_resamples=200, seed=4) != first
    assert list(first) == METRIC_NAMES + ["recall/negative", "recall/positive"]


def test_bootstrap_accuracy_interval_for_a_fixed_seed():
    labels, preds, proba = _predictions(200, 0.7)

    lo, hi = bootstrap_ci(labels, preds, proba, BINARY, n_resamples=500, seed=0)["accuracy"]
    assert (lo, hi) == pytest.approx((0.805, 0.907625), abs=1e-12)

    # The same interval by plain indexing: 500 rows of 200 indices from default_rng(0).
    index = np.random.default_rng(0).integers(0, 200, size=(500, 200))
    accuracies = (preds[index] == labels[index]).mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.percentile(accuracies, [2.5, 97.5])), abs=1e-12)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_bootstrap_interval_contains_point_estimate(n_classes):
    classes = [f"class{c}" for c in range(n_classes)]
    labels, preds, proba = _predictions(400, 0.7, n_classes)

    point = classification_metrics(labels, preds, proba, classes)
    intervals = bootstrap_ci(labels, preds, proba, classes, n_resamples=300)
    for name in METRIC_NAMES:
        assert intervals[name][0] <= point[name] <= intervals[name][1], name
    for name, value in point["recall_per_class"].items():
        assert intervals[f"recall/{name}"][0] <= value <= intervals[f"recall/{name}"][1]


def test_bootstrap_interval_narrows_with_more_examples():
    small = bootstrap_ci(*_predictions(100, 0.7), BINARY, n_resamples=300)
    large = bootstrap_ci(*_predictions(2000, 0.7), BINARY, n_resamples=300)

    for name in METRIC_NAMES:
        assert large[name][1] - large[name][0] < 0.5 * (small[name][1] - small[name][0]), name


def test_bootstrap_auc_is_nan_for_a_single_class():
    labels = np.zeros(20, dtype=int)
    intervals = bootstrap_ci(labels, labels, np.full((20, 2), 0.5), BINARY, n_resamples=50)

    assert all(math.isnan(x) for x in intervals["auc"])
    assert intervals["accuracy"] == (1.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_resamples": 0}, r"`n_resamples` .* got 0"), ({"confidence": 1.5}, r"`confidence`")],
)
def test_bootstrap_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_ci(*_predictions(10, 0.7), BINARY, **kwargs)


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_resample_metrics_equal_classification_metrics(n_classes):
    classes = [f"class{c}" for c in range(n_classes)]
    labels, preds, proba = _predictions(60, 0.6, n_classes, seed=n_classes)
    proba = proba.round(1)
    proba /= proba.sum(axis=1, keepdims=True)  # coarse scores: many ties
    rng = np.random.default_rng(0)

    for _ in range(20):
        index = rng.integers(0, len(labels), len(labels))
        weights = np.bincount(index, minlength=len(labels))[None, :].astype(float)  # [1, n]
        fast = stats._resample_metrics(weights, labels, preds, proba, classes)
        exact = classification_metrics(labels[index], preds[index], proba[index], classes)
        exact |= {f"recall/{k}": v for k, v in exact["recall_per_class"].items()}
        for name, values in fast.items():
            assert values[0] == pytest.approx(exact[name], abs=1e-12, nan_ok=True), name


def test_fast_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(1)
    positive = rng.random(50) < 0.4
    scores = rng.integers(0, 5, 50) / 4  # only five distinct scores
    index = rng.integers(0, 50, size=(30, 50))
    weights = np.stack([np.bincount(row, minlength=50) for row in index]).astype(float)

    fast = stats._weighted_auc(weights, positive, scores)
    exact = [roc_auc_score(positive[row], scores[row]) for row in index]
    assert fast == pytest.approx(exact, abs=1e-12)


# Paired comparisons


def test_paired_diff_of_identical_predictions_is_exactly_zero():
    labels, preds, _ = _predictions(100, 0.7)

    assert paired_bootstrap_diff(labels, preds, preds) == {"diff": 0.0, "ci": (0.0, 0.0)}


def test_paired_diff_is_accuracy_a_minus_b():
    labels, preds_a, _ = _predictions(300, 0.8, seed=1)
    _, preds_b, _ = _predictions(300, 0.6, seed=1)

    result = paired_bootstrap_diff(labels, preds_a, preds_b, n_resamples=300)
    expected = np.mean(preds_a == labels) - np.mean(preds_b == labels)
    assert result["diff"] == pytest.approx(expected, abs=1e-15)
    assert result["ci"][0] <= result["diff"] <= result["ci"][1]
    swapped = paired_bootstrap_diff(labels, preds_b, preds_a, n_resamples=300)
    assert swapped["ci"] == pytest.approx((-result["ci"][1], -result["ci"][0]), abs=1e-12)


def test_pairwise_comparisons_of_three_methods_apply_holm():
    labels, good, _ = _predictions(200, 0.9, seed=1)
    _, fair, _ = _predictions(200, 0.7, seed=1)
    predictions = {"good": good, "fair": fair, "same": good.copy()}

    rows = pairwise_comparisons(labels, predictions, n_resamples=200)

    assert [(r["a"], r["b"]) for r in rows] == [("good", "fair"), ("good", "same"),
                                                ("fair", "same")]  # fmt: skip
    assert set(rows[0]) == {
        "a", "b", "accuracy_a", "accuracy_b", "diff", "ci",
        "a_only_correct", "b_only_correct", "p_value", "p_adjusted", "significant",
    }  # fmt: skip
    holm = holm_correction([r["p_value"] for r in rows])
    assert [r["p_adjusted"] for r in rows] == [h["p_adjusted"] for h in holm]
    assert [r["significant"] for r in rows] == [True, False, True]

    first = rows[0]
    test = mcnemar_exact(labels, good, fair)
    assert (first["a_only_correct"], first["b_only_correct"]) == (test["b"], test["c"])
    assert first["diff"] == pytest.approx(first["accuracy_a"] - first["accuracy_b"], abs=1e-15)
    assert rows[1]["p_value"] == 1.0 and rows[1]["ci"] == (0.0, 0.0)
