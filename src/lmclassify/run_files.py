"""A finished run directory as read, and the charts drawn from it into `plots/`.

Reads what `compare.py` wrote (`results.json`, `predictions.jsonl`, `config.json`) and
recomputes no metric; the charts themselves are `plots.py`'s and the pages that show them
`report.py`'s (Markdown) and `html_report.py`'s (HTML).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .report import row_labels, verbalizer_text


@dataclass
class Run:
    """What a run directory holds, as read; `predictions` is empty when the file is absent."""

    path: Path
    document: dict
    predictions: list[dict]
    config: dict | None


def load_run(run_dir) -> Run:
    """Read a run directory written by `lmclassify compare`.

    Raises:
        ValueError: `run_dir` is not a directory, has no `results.json`, or holds a file
            that is not valid JSON.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ValueError(f"`run_dir` {str(path)!r} is not a directory")
    if not (path / "results.json").is_file():
        raise ValueError(
            f"`run_dir` {str(path)!r} has no results.json; "
            "give a run directory written by `lmclassify compare`"
        )
    document = _read_json(path / "results.json")
    config = _read_json(path / "config.json") if (path / "config.json").is_file() else None
    predictions = []
    if (path / "predictions.jsonl").is_file():
        with open(path / "predictions.jsonl", encoding="utf-8") as handle:
            predictions = [json.loads(line) for line in handle if line.strip()]
    return Run(path, document, predictions, config)


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{str(path)!r} is not valid JSON: {error}") from None


def predictions_by_label(run: Run) -> dict[str, list[dict]]:
    """Each result's `predictions.jsonl` rows, in test order, by row label.

    Rows belong to a result with the same method, calibration and seed; where several
    verbalizers share those, the result's own verbalizer picks among them.
    """
    groups: dict[tuple, dict[str, list[dict]]] = {}
    for row in run.predictions:
        key = (row["method"], row.get("calibration", "none"), row.get("seed"))
        groups.setdefault(key, {}).setdefault(row.get("verbalizer", ""), []).append(row)
    found = {}
    for result, label in zip(run.document["results"], row_labels(run.document["results"])):
        candidates = groups.get(
            (result["method"], result.get("calibration", "none"), result.get("seed")), {}
        )
        verbalizer = verbalizer_text(result.get("verbalizer") or {}, sep=",")
        rows = candidates.get(verbalizer)
        if rows is None and len(candidates) == 1:
            rows = next(iter(candidates.values()))
        if rows:
            found[label] = sorted(rows, key=lambda row: row["index"])
    return found


def plot_files(run: Run) -> dict:
    """The PNG names of a run's charts: `roc`, `verbalizers` (or None), and per row label
    `confusion` and `reliability`."""
    labels = list(predictions_by_label(run))
    slugs = _unique_slugs(labels)
    return {
        "roc": "roc.png" if labels else None,
        "confusion": {label: f"confusion-{slugs[label]}.png" for label in labels},
        "reliability": {label: f"reliability-{slugs[label]}.png" for label in labels},
        "verbalizers": "verbalizers.png" if run.document.get("verbalizer_study") else None,
    }


def _unique_slugs(labels: list[str]) -> dict[str, str]:
    slugs: dict[str, str] = {}
    for label in labels:
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-") or "result"
        candidate, n = slug, 2
        while candidate in slugs.values():
            candidate, n = f"{slug}-{n}", n + 1
        slugs[label] = candidate
    return slugs


def draw_plots(run: Run, folder: Path) -> list[Path]:
    """Draw every chart of `plot_files` into `folder`; returns the files written."""
    from . import plots

    names, rows = plot_files(run), predictions_by_label(run)
    classes = run.document["dataset"]["classes"]
    labels = row_labels(run.document["results"])
    aucs = {label: r["metrics"].get("auc") for label, r in zip(labels, run.document["results"])}
    written = []
    if names["roc"]:
        written.append(plots.roc_curves(rows, classes, folder / names["roc"], aucs=aucs))
    for label, label_rows in rows.items():
        truth = [row["label"] for row in label_rows]
        preds = [row["pred"] for row in label_rows]
        written.append(
            plots.confusion_matrix(truth, preds, classes, folder / names["confusion"][label], label)
        )
        written.append(
            plots.reliability_diagram(
                [classes.index(t) for t in truth],
                [row["proba"] for row in label_rows],
                folder / names["reliability"][label],
                label,
                preds=[-1 if p is None else classes.index(p) for p in preds],
            )
        )
    if names["verbalizers"]:
        written.append(
            plots.verbalizer_spread(run.document["verbalizer_study"], folder / names["verbalizers"])
        )
    return written
