"""Charts of one run's test predictions, each drawn to one PNG file with matplotlib (Agg).

ROC curves, confusion matrices, reliability diagrams and the spread of a verbalizer
study. Every function takes plain lists as read from `predictions.jsonl` / `results.json`
and returns the path it wrote; which charts a report shows, and where, is `report.py`'s job.
The only number computed here that no other module computes is the expected calibration
error (`expected_calibration_error`).
"""

from __future__ import annotations

import functools
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

COLOURS = (
    "#2f6db5",
    "#d9822b",
    "#3a9a5b",
    "#c0392b",
    "#7d5ba6",
    "#8c6d31",
    "#d16ba5",
    "#5f6b73",
    "#b5b82f",
    "#2aa3b8",
)
# Glyphs missing from DejaVu Sans (Chinese class names) fall back to the first of these
# that is installed; with none of them they draw as boxes.
CJK_FONTS = [
    "Noto Sans CJK SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "PingFang SC",
    "Microsoft YaHei",
    "SimHei",
]
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e4e6ea",
    "grid.linewidth": 0.6,
    "legend.frameon": False,
    "legend.fontsize": 8,
}
NO_ANSWER = "no answer"


def roc_curves(rows_by_label: dict, classes: list[str], path, aucs: dict | None = None) -> Path:
    """Every result's ROC curve on one chart, with the chance diagonal.

    Two classes: the curve of the positive (second) class's probability. More classes:
    the macro average of the one-vs-rest curves, each class's true positive rate
    interpolated on a common false positive grid and averaged, so every class weighs the
    same, as the macro one-vs-rest AUC of `lmclassify.metrics` does.

    Args:
        rows_by_label: row label -> its `predictions.jsonl` rows (`label`, `proba`).
        classes: ordered class names.
        path: PNG file to write.
        aucs: row label -> AUC shown in the legend (the one in `results.json`); a label
            without one shows the area under its drawn curve.
    """
    aucs = aucs or {}
    with _figure(path, (5.6, 4.6)) as ax:
        for i, (label, rows) in enumerate(rows_by_label.items()):
            fpr, tpr = _roc_points(rows, classes)
            auc = aucs.get(label)
            auc = _area(fpr, tpr) if auc is None else auc
            ax.plot(
                fpr, tpr, color=COLOURS[i % len(COLOURS)], lw=1.6, label=f"{label} (AUC {auc:.3f})"
            )
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color="#9aa0a6", label="chance")
        kind = f"positive class: {classes[1]}" if len(classes) == 2 else "one-vs-rest macro"
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.01),
            xlabel="false positive rate",
            ylabel="true positive rate",
            title=f"ROC curves ({kind})",
        )
        ax.set_aspect("equal")
        ax.legend(loc="lower right")
    return Path(path)


def confusion_matrix(labels, preds, classes: list[str], path, title: str) -> Path:
    """Counts of true class (rows) by predicted class (columns), each cell annotated.

    Args:
        labels: true class names. [n]
        preds: predicted class names, None where a generated answer matched no label
            word; a "no answer" column appears only when there is such a pred. [n]
        classes: ordered class names.
        path: PNG file to write.
        title: the chart's title, usually the row label.
    """
    columns = list(classes) + ([NO_ANSWER] if any(p is None for p in preds) else [])
    counts = np.zeros((len(classes), len(columns)), dtype=int)  # [true, pred]
    for label, pred in zip(labels, preds):
        counts[classes.index(label), columns.index(NO_ANSWER if pred is None else pred)] += 1

    size = max(4.2, 1.6 + 0.8 * len(columns)), max(3.4, 1.6 + 0.6 * len(classes))
    with _figure(path, size) as ax:
        ax.grid(False)
        ax.imshow(counts, cmap="Blues", vmin=0, vmax=max(counts.max(), 1), aspect="auto")
        for (row, col), count in np.ndenumerate(counts):
            dark = count > 0.6 * counts.max()
            ax.text(
                col,
                row,
                str(count),
                ha="center",
                va="center",
                color="white" if dark else "#1f2328",
                fontsize=10,
            )
        ax.set_xticks(range(len(columns)), columns, rotation=30 if len(columns) > 3 else 0)
        ax.set_yticks(range(len(classes)), classes)
        ax.set(xlabel="predicted", ylabel="true", title=title)
    return Path(path)


def expected_calibration_error(labels, proba, n_bins: int = 10, preds=None) -> float:
    """Top-label expected calibration error (Guo et al. 2017, "On Calibration of Modern
    Neural Networks", eq. 3).

    Each example's confidence is its largest class probability; examples are put in
    `n_bins` equal-width bins ((m - 1) / M, m / M], and ECE = sum over bins of
    |bin| / n * |accuracy(bin) - mean confidence(bin)|.

    Args:
        labels: true class ids. [n]
        proba: class probabilities. [n, n_classes]
        n_bins: number of equal-width confidence bins.
        preds: predicted class ids, -1 for no answer (always wrong); by default the
            argmax of `proba`. [n]

    Example:
        >>> expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=10)
        0.45
    """
    bins = _calibration_bins(labels, proba, n_bins, preds)
    n = sum(count for count, _, _ in bins)
    return float(sum(count / n * abs(acc - conf) for count, acc, conf in bins if count))


def reliability_diagram(labels, proba, path, title: str, n_bins: int = 10, preds=None) -> Path:
    """Accuracy against confidence in equal-width bins, the diagonal, and ECE in the title.

    Bars show each bin's accuracy and carry its number of examples; the gap between a
    bar and the diagonal is the miscalibration of that bin. Arguments as in
    `expected_calibration_error`, plus the PNG `path` and the chart's `title`.
    """
    bins = _calibration_bins(labels, proba, n_bins, preds)
    ece = expected_calibration_error(labels, proba, n_bins, preds)
    width = 1 / n_bins
    with _figure(path, (4.2, 4.0)) as ax:
        for m, (count, acc, conf) in enumerate(bins):
            if not count:
                continue
            left = m * width
            ax.bar(
                left,
                acc,
                width=width,
                align="edge",
                color="#2f6db5",
                alpha=0.85,
                edgecolor="white",
                label="accuracy" if m == _first_full(bins) else None,
            )
            ax.plot(
                [left, left + width],
                [conf, conf],
                color="#d9822b",
                lw=1.6,
                label="mean confidence" if m == _first_full(bins) else None,
            )
            inside = acc > 0.12  # room for the count within the bar
            ax.text(
                left + width / 2,
                0.02 if inside else acc + 0.02,
                str(count),
                ha="center",
                fontsize=7,
                color="white" if inside else "#444b52",
            )
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color="#9aa0a6", label="perfect calibration")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1.02),
            xlabel="confidence (largest class probability)",
            ylabel="accuracy",
            title=f"{title}\nECE {ece:.3f} · {n_bins} bins · bar labels: examples",
        )
        ax.legend(loc="upper left")
    return Path(path)


def verbalizer_spread(study_rows: list[dict], path) -> Path:
    """Test accuracy of every verbalizer of a study, one column per calibration.

    Each point is one verbalizer, numbered as in the report's study table (1 is the first
    row); the box spans the middle half, the best point of each column is labelled.

    Args:
        study_rows: the `verbalizer_study` rows of `results.json` (`calibration`,
            `accuracy`).
        path: PNG file to write.
    """
    groups = list(dict.fromkeys(row["calibration"] for row in study_rows))
    with _figure(path, (1.8 + 1.3 * len(groups), 3.8)) as ax:
        for x, group in enumerate(groups):
            members = [
                (i, r["accuracy"])
                for i, r in enumerate(study_rows, start=1)
                if r["calibration"] == group and r["accuracy"] is not None
            ]
            if not members:
                continue
            values = np.array([acc for _, acc in members])  # [members]
            ax.boxplot(
                values,
                positions=[x],
                widths=0.5,
                showfliers=False,
                medianprops={"color": "#d9822b"},
                boxprops={"color": "#5f6b73"},
            )
            spread = x + np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [x]
            ax.scatter(spread, values, s=18, color="#2f6db5", zorder=3)
            best = int(np.argmax(values))
            ax.annotate(
                f"#{members[best][0]}",
                (spread[best], values[best]),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="#1f2328",
            )
        ax.set_xticks(range(len(groups)), groups)
        ax.set(
            xlabel="calibration",
            ylabel="test accuracy",
            title=f"Verbalizer study ({len(study_rows)} runs)",
        )
    return Path(path)


def _roc_points(rows: list[dict], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of one result: two arrays of the same length."""
    from sklearn.metrics import roc_curve

    labels = np.array([classes.index(row["label"]) for row in rows])  # [n]
    proba = np.array([row["proba"] for row in rows], dtype=float)  # [n, n_classes]
    if len(classes) == 2:
        return _one_curve(roc_curve, labels == 1, proba[:, 1])

    grid = np.linspace(0, 1, 201)
    curves = [_one_curve(roc_curve, labels == c, proba[:, c]) for c in range(len(classes))]
    curves = [(fpr, tpr) for fpr, tpr in curves if fpr.size]
    if not curves:
        return np.array([]), np.array([])
    mean_tpr = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves], axis=0)  # [201]
    mean_tpr[0] = 0.0  # every curve starts at (0, 0), as the two-class ones do
    return grid, mean_tpr


def _area(fpr: np.ndarray, tpr: np.ndarray) -> float:
    from sklearn.metrics import auc

    return float(auc(fpr, tpr)) if fpr.size > 1 else float("nan")


def _one_curve(roc_curve, positive: np.ndarray, scores: np.ndarray):
    # A class absent from (or alone in) the test labels has no ROC curve.
    if positive.all() or not positive.any():
        return np.array([]), np.array([])
    fpr, tpr, _ = roc_curve(positive, scores)
    return fpr, tpr


def _calibration_bins(labels, proba, n_bins: int, preds) -> list[tuple[int, float, float]]:
    """(count, accuracy, mean confidence) of each of `n_bins` equal-width bins."""
    if not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"`n_bins` must be a positive integer, got {n_bins!r}")
    labels = np.asarray(labels)
    proba = np.asarray(proba, dtype=float)
    if proba.ndim != 2 or len(proba) != len(labels) or not len(labels):
        raise ValueError(
            f"`proba` must have shape (n_examples, n_classes) with "
            f"n_examples = {len(labels)!r} > 0, got {proba.shape!r}"
        )
    preds = proba.argmax(axis=1) if preds is None else np.asarray(preds)
    correct = preds == labels  # [n]
    confidence = proba.max(axis=1)  # [n]

    # Bin m holds confidences in (m / M, (m + 1) / M]; digitize keeps exact edges in the
    # lower bin, where arithmetic like ceil(0.3 * 10) would not.
    edges = np.linspace(0, 1, n_bins + 1)
    index = np.clip(np.digitize(confidence, edges, right=True) - 1, 0, n_bins - 1)  # [n]
    bins = []
    for m in range(n_bins):
        inside = index == m
        count = int(inside.sum())
        bins.append(
            (
                count,
                float(correct[inside].mean()) if count else 0.0,
                float(confidence[inside].mean()) if count else 0.0,
            )
        )
    return bins


def _first_full(bins) -> int:
    return next(m for m, (count, _, _) in enumerate(bins) if count)


@functools.cache
def _font_families() -> list[str]:
    """DejaVu Sans, then the installed CJK fonts (naming absent ones makes matplotlib log)."""
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]


@contextmanager
def _figure(path, size: tuple[float, float]):
    """One axes on a fresh Agg figure, saved to `path` on leaving; no pyplot state."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with rc_context({**STYLE, "font.family": _font_families()}), warnings.catch_warnings():
        # Without a CJK font, Chinese class names draw as boxes, not as errors.
        warnings.filterwarnings("ignore", message="Glyph .* missing")
        figure = Figure(figsize=size, dpi=110, layout="constrained")
        FigureCanvasAgg(figure)
        yield figure.add_subplot()
        figure.savefig(path, format="png")
