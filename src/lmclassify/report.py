"""Rendering a run's `results.json` as readable tables: Markdown for files, rich for terminals.

Only reads results; computing them is `compare.py`'s job.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = ("accuracy", "f1", "precision", "recall", "auc")


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _label(result: dict) -> str:
    calibration = result.get("calibration", "none")
    return result["method"] + ("" if calibration == "none" else f" +{calibration}")


def _verbalizers(document: dict) -> str:
    seen = dict.fromkeys(
        ", ".join(f"{name}={'|'.join(words)}" for name, words in r["verbalizer"].items())
        for r in document["results"]
        if r.get("verbalizer")
    )
    return "; ".join(seen)


def _data_name(document: dict) -> str:
    return Path(document["dataset"]["name"]).name


def table_rows(document: dict) -> list[list[str]]:
    """One row per result: method, the metrics, unparsed answers, fit and predict seconds."""
    rows = []
    for result in document["results"]:
        metrics = result["metrics"]
        rows.append(
            [_label(result)]
            + [_cell(metrics.get(name)) for name in COLUMNS]
            + [str(metrics.get("n_unparsed", 0))]
            + [f"{result['seconds']['fit']:.1f}", f"{result['seconds']['predict']:.1f}"]
        )
    return rows


HEADER = ["method", *COLUMNS, "unparsed", "fit s", "predict s"]


def render_markdown(document: dict) -> str:
    """`report.md`: what ran on what, then the comparison table, then how to read it."""
    data, model = document["dataset"], document["model"]
    lines = [
        f"# lmclassify: {_data_name(document)} with {Path(model['name']).name}",
        "",
        f"Classes: {', '.join(data['classes'])}. Splits: {data['n_train']} train, "
        f"{data['n_dev']} dev, {data['n_test']} test. "
        f"Model parameters: {model['parameters']:,}. Label words: {_verbalizers(document)}.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(HEADER))) + " |",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(document)]
    lines += [
        "",
        "Precision, recall and F1 are those of the second class "
        f"({data['classes'][-1]!r}) for two classes, macro averages otherwise; AUC is ROC AUC.",
    ]
    if any(r["metrics"].get("n_unparsed") for r in document["results"]):
        lines.append(
            "Generated answers that matched no label word (`unparsed`) count as wrong; their "
            "probability rows are uniform, so AUC for generation rests on hard answers."
        )
    return "\n".join(lines) + "\n"


def print_table(document: dict, console=None) -> None:
    """The comparison table on the terminal."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: no reason to wrap at 80 columns
            console = Console(width=120)
    data = document["dataset"]
    table = Table(
        title=f"{_data_name(document)} · {Path(document['model']['name']).name} · "
        f"{data['n_test']} test examples",
        caption=f"label words: {_verbalizers(document)}",
    )
    for i, name in enumerate(HEADER):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in table_rows(document):
        table.add_row(*row)
    console.print(table)
