"""Across a run's results: paired significance tests and summaries over seeds.

Reads results and prediction rows that `compare` produced; the statistics themselves are
`stats.py`'s and the rendering is `report.py`'s.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from .report import row_label, row_labels
from .stats import pairwise_comparisons

SUMMARISED = ("accuracy", "f1", "precision", "recall", "auc")


def comparisons(results, predictions, classes, n_resamples=1000, alpha=0.05) -> list[dict]:
    """McNemar's exact test and the paired bootstrap interval of the accuracy difference for
    every pair of results on the first seed's test split, Holm-corrected across pairs."""
    if len(results) < 2:
        return []
    first_seed = results[0]["seed"]
    labels_of = dict(zip(map(id, results), row_labels(results)))
    preds, labels = {}, None
    for result in (r for r in results if r["seed"] == first_seed):
        rows = sorted(
            (
                r
                for r in predictions
                if r["method"] == result["method"]
                and r["calibration"] == result["calibration"]
                and r["seed"] == first_seed
            ),
            key=lambda r: r["index"],
        )
        labels = [classes.index(r["label"]) for r in rows]
        preds[labels_of[id(result)]] = [
            classes.index(r["pred"]) if r["pred"] is not None else -1 for r in rows
        ]
    if len(preds) < 2:
        return []
    return pairwise_comparisons(labels, preds, n_resamples=n_resamples, alpha=alpha)


def seed_summary(results: list[dict]) -> list[dict]:
    """Mean and standard deviation over seeds of each result that ran with several seeds."""
    groups = defaultdict(list)
    for result in results:
        groups[(result["method"], result.get("calibration", "none"))].append(result)
    summary = []
    for (method, calibration), group in groups.items():
        if len(group) < 2:
            continue
        values = {
            name: np.array([r["metrics"][name] for r in group], dtype=float) for name in SUMMARISED
        }
        summary.append(
            {
                "label": row_label({"method": method, "calibration": calibration}, False),
                "method": method,
                "calibration": calibration,
                "seeds": [r["seed"] for r in group],
                "mean": {name: float(np.nanmean(v)) for name, v in values.items()},
                "std": {name: float(np.nanstd(v, ddof=1)) for name, v in values.items()},
            }
        )
    return summary
