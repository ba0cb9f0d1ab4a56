"""A run's results as tables: Markdown for `report.md`, rich for the terminal.

Only reads a `results.json` document and never recomputes a metric; the HTML page is
`html_report.py`'s and the charts `plots.py`'s. Every key that later runs added
(`intervals`, `comparisons`, `seed_summary`, `data_checks`, `verbalizer_study`) is
optional, so older runs still render.
"""

from __future__ import annotations

from pathlib import Path

COLUMNS = ("accuracy", "f1", "precision", "recall", "auc")
HEADER = ["method", *COLUMNS, "unparsed", "fit s", "predict s"]
SIGNIFICANT = "*"


# Labels and cells.


def row_label(result: dict, several_seeds: bool) -> str:
    """`method`, then ` +<calibration>` unless it is "none", then ` [seed N]` if asked."""
    calibration = result.get("calibration", "none")
    label = result["method"] + ("" if calibration == "none" else f" +{calibration}")
    return label + (f" [seed {result['seed']}]" if several_seeds else "")


def row_labels(results: list[dict]) -> list[str]:
    """Each result's row label; seeds are named for methods that ran with several."""
    seeds: dict[str, set] = {}
    for result in results:
        seeds.setdefault(result["method"], set()).add(result.get("seed"))
    return [row_label(r, len(seeds[r["method"]]) > 1) for r in results]


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def with_interval(result: dict, name: str) -> str:
    interval = (result.get("intervals") or {}).get(name)
    value = _cell(result["metrics"].get(name))
    if not interval or None in interval or value == "–":
        return value
    return f"{value} [{interval[0]:.3f}, {interval[1]:.3f}]"


def _signed(value: float) -> str:
    text = f"{value:+.3f}"
    return text if float(text) else "0.000"


def _p(value) -> str:
    return "–" if value is None else "<0.001" if value < 0.001 else f"{value:.3f}"


def label_words_summary(document: dict) -> str:
    seen = dict.fromkeys(
        verbalizer_text(r["verbalizer"]) for r in document["results"] if r.get("verbalizer")
    )
    return "; ".join(seen)


def verbalizer_text(verbalizer: dict, sep: str = ", ") -> str:
    """`class=word|word2, class=word`; with `sep=","` it is `str(Verbalizer)`, as in
    `predictions.jsonl`."""
    return sep.join(f"{name}={'|'.join(words)}" for name, words in verbalizer.items())


def _data_name(document: dict) -> str:
    return Path(document["dataset"]["name"]).name


def page_title(document: dict) -> str:
    return f"{_data_name(document)} with {Path(document['model']['name']).name}"


# The results table, shared by Markdown and the terminal.


def _names(document: dict) -> list[set[str]]:
    """The labels a comparison may use for each result: its row label, or that label with
    its seed (a run that varied seeds for some methods may name every row's seed)."""
    results = document["results"]
    return [{label, row_label(r, True)} for r, label in zip(results, row_labels(results))]


def _best_compared(document: dict) -> int | None:
    """Index of the most accurate result among those the comparisons name."""
    compared = {name for row in document.get("comparisons") or () for name in (row["a"], row["b"])}
    candidates = [i for i, names in enumerate(_names(document)) if names & compared]
    accuracy = [document["results"][i]["metrics"].get("accuracy") for i in candidates]
    scored = [(acc, i) for acc, i in zip(accuracy, candidates) if acc is not None]
    return max(scored)[1] if scored else None


def versus_best(document: dict, i: int) -> str:
    """Holm-adjusted p of result `i` against the best compared one, marked if significant."""
    best, names = _best_compared(document), _names(document)
    if i == best:
        return "best"
    for row in document.get("comparisons") or ():
        if best is not None and (
            {row["a"], row["b"]} & names[i] and {row["a"], row["b"]} & names[best]
        ):
            return _p(row["p_adjusted"]) + (f" {SIGNIFICANT}" if row["significant"] else "")
    return ""


def table_header(document: dict) -> list[str]:
    return HEADER + (["vs best"] if document.get("comparisons") else [])


def table_rows(document: dict, compact: bool = False) -> list[list[str]]:
    """One row per result, and a mean ± std row after each group of seeds of one method.

    `compact` (the terminal) gives an interval for accuracy only."""
    results, labels = document["results"], row_labels(document["results"])
    summaries = {_summary_key(s): s for s in document.get("seed_summary") or ()}
    group_ends = {_summary_key(r): i for i, r in enumerate(results)}
    rows = []
    for i, (result, label) in enumerate(zip(results, labels)):
        metrics = result["metrics"]
        row = (
            [label]
            + [
                with_interval(result, name)
                if not compact or name == "accuracy"
                else _cell(metrics.get(name))
                for name in COLUMNS
            ]
            + [str(metrics.get("n_unparsed", 0))]
            + [f"{result['seconds']['fit']:.1f}", f"{result['seconds']['predict']:.1f}"]
        )
        row += [versus_best(document, i)] if document.get("comparisons") else []
        rows.append(row)
        if group_ends[_summary_key(result)] == i and _summary_key(result) in summaries:
            rows.append(seed_summary_row(summaries.pop(_summary_key(result)), len(row)))
    rows += [
        seed_summary_row(summary, len(table_header(document))) for summary in summaries.values()
    ]
    return rows


def _summary_key(row: dict) -> tuple[str, str]:
    return row["method"], row.get("calibration", "none")


def seed_summary_row(summary: dict, width: int) -> list[str]:
    mean, std = summary.get("mean") or {}, summary.get("std") or {}
    cells = [
        f"{mean[name]:.3f} ± {std.get(name) or 0:.3f}" if mean.get(name) is not None else "–"
        for name in COLUMNS
    ]
    label = f"{summary['label']} (mean ± std, {len(summary.get('seeds', []))} seeds)"
    return [label, *cells] + [""] * (width - 1 - len(COLUMNS))


# Markdown.


def render_markdown(document: dict) -> str:
    """`report.md`: what ran on what, the comparison table, how to read it, then the checks."""
    data, model = document["dataset"], document["model"]
    header = table_header(document)
    lines = [
        f"# lmclassify: {page_title(document)}",
        "",
        (
            f"Classes: {', '.join(data['classes'])}. Splits: {data['n_train']} train, "
            f"{data['n_dev']} dev, {data['n_test']} test. "
            f"Model parameters: {model['parameters']:,}. "
            f"Label words: {label_words_summary(document)}."
        ),
        "",
        *_markdown_table(header, table_rows(document)),
        "",
        *reading_notes(document),
    ]
    for section in (_markdown_comparisons, _markdown_data_checks, _markdown_study):
        lines += section(document)
    return "\n".join(lines) + "\n"


def _markdown_table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """A Markdown table whose first `left` columns are text, the others numbers."""
    lines = [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join("---" if i < left else "---:" for i in range(len(header))) + " |",
    ]
    return lines + ["| " + " | ".join(_md_escape(cell) for cell in row) + " |" for row in rows]


def _md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def reading_notes(document: dict) -> list[str]:
    classes = document["dataset"]["classes"]
    notes = [
        (
            "Precision, recall and F1 are those of the second class "
            f"({classes[-1]!r}) for two classes, macro averages otherwise; AUC is ROC AUC."
        )
    ]
    if any(r.get("intervals") for r in document["results"]):
        notes.append("Brackets hold 95 % percentile bootstrap intervals over test examples.")
    if document.get("comparisons"):
        notes.append(
            f"`vs best`: exact McNemar p against the most accurate compared row, "
            f"Holm-adjusted over all pairs; `{SIGNIFICANT}` marks a significant "
            "difference."
        )
    if any(r["metrics"].get("n_unparsed") for r in document["results"]):
        notes.append(
            "Generated answers that matched no label word (`unparsed`) count as wrong; their "
            "probability rows are uniform, so AUC for generation rests on hard answers."
        )
    return notes


def comparison_rows(document: dict) -> list[list[str]]:
    """One row per compared pair: accuracies, difference with its interval, McNemar, Holm."""
    rows = []
    for row in document.get("comparisons") or ():
        ci = row.get("ci") or [None, None]
        diff = _signed(row["diff"]) + (
            f" [{_signed(ci[0])}, {_signed(ci[1])}]" if None not in ci else ""
        )
        rows.append(
            [
                row["a"],
                row["b"],
                _cell(row["accuracy_a"]),
                _cell(row["accuracy_b"]),
                diff,
                str(row["a_only_correct"]),
                str(row["b_only_correct"]),
                _p(row["p_value"]),
                _p(row["p_adjusted"]),
                SIGNIFICANT if row["significant"] else "",
            ]
        )
    return rows


COMPARISON_HEADER = [
    "A",
    "B",
    "accuracy A",
    "accuracy B",
    "A − B [95 % CI]",
    "only A right",
    "only B right",
    "p",
    "p Holm",
    "",
]


def _markdown_comparisons(document: dict) -> list[str]:
    rows = comparison_rows(document)
    if not rows:
        return []
    return [
        "",
        "## Pairwise comparisons",
        "",
        *_markdown_table(COMPARISON_HEADER, rows, left=2),
        "",
        (
            f"Exact McNemar test on the examples only one of the two got right, Holm-adjusted "
            f"over all {len(rows)} pairs; `{SIGNIFICANT}`: significant after adjustment."
        ),
    ]


def _markdown_data_checks(document: dict) -> list[str]:
    checks = document.get("data_checks")
    if not checks:
        return []
    classes = document["dataset"]["classes"]
    lines = [
        "",
        "## Data checks",
        "",
        *_markdown_table(["split", "examples", *classes], balance_rows(checks, classes)),
        "",
    ]
    return lines + [f"- {line}" for line in check_lines(checks)]


def balance_rows(checks: dict, classes: list[str]) -> list[list[str]]:
    rows = []
    for split, info in (checks.get("splits") or {}).items():
        n, counts = info.get("n", 0), info.get("class_counts") or {}
        shares = [
            f"{counts.get(c, 0)} ({100 * counts.get(c, 0) / n:.1f} %)" if n else "0"
            for c in classes
        ]
        rows.append([split, str(n), *shares])
    return rows


def check_lines(checks: dict) -> list[str]:
    """Leaks and truncation, one sentence each; a leak's sentence starts with WARNING."""
    lines = []
    exact, near = checks.get("exact_leaks"), checks.get("near_leaks")
    if exact:
        verb = "occurs" if exact == 1 else "occur"
        lines.append(
            f"WARNING: {_texts(exact)} also {verb} in the training split (exact "
            "duplicates); test metrics overstate what the methods generalise."
        )
    elif exact == 0:
        lines.append("No exact duplicates between the training and test splits.")
    if near:
        verb = "nearly duplicate" if near > 1 else "nearly duplicates"
        lines.append(f"{_texts(near)} {verb} a training text.")
    for example in (checks.get("leak_examples") or [])[:3]:
        kind = f" ({example['kind']})" if example.get("kind") else ""
        lines.append(
            f"Leak example{kind}: train {_short(example.get('train'))!r}, "
            f"test {_short(example.get('test'))!r}."
        )
    truncated = checks.get("truncated")
    if truncated is not None:
        counts = ", ".join(f"{split} {count}" for split, count in truncated.items())
        limit = checks.get("max_length")
        lines.append(
            f"Texts cut to fit max_length{f' ({limit} tokens)' if limit else ''}: {counts}."
        )
    return lines


def _texts(n: int) -> str:
    return f"{n} test text" + ("" if n == 1 else "s")


def _short(text, limit: int = 80) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def study_rows(document: dict) -> list[list[str]]:
    """The verbalizer study, numbered in the order of `results.json`."""
    return [
        [
            str(i),
            verbalizer_text(r["verbalizer"]),
            r.get("calibration", "none"),
            _cell(r.get("accuracy")),
            _cell(r.get("f1")),
            _cell(r.get("auc")),
        ]
        for i, r in enumerate(document.get("verbalizer_study") or (), start=1)
    ]


STUDY_HEADER = ["#", "verbalizer", "calibration", "accuracy", "f1", "auc"]


def spread_rows(document: dict) -> list[list[str]]:
    """Per calibration, how far accuracy moves across the study's verbalizers."""
    return [
        [r["calibration"], str(r["n"]), *(_cell(r.get(k)) for k in SPREAD_HEADER[2:])]
        for r in document.get("verbalizer_spread") or ()
    ]


SPREAD_HEADER = ["calibration", "verbalizers", "mean", "min", "max", "std"]


def _markdown_study(document: dict) -> list[str]:
    rows = study_rows(document)
    if not rows:
        return []
    spread = spread_rows(document)
    return (
        ["", "## Verbalizer study", ""]
        + (_markdown_table(SPREAD_HEADER, spread) + [""] if spread else [])
        + _markdown_table(STUDY_HEADER, rows, left=3)
    )


# Terminal.


def print_table(document: dict, console=None) -> None:
    """The comparison table on the terminal, then pairwise tests and leak warnings."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a file: no reason to wrap at 80 columns
            console = Console(width=160)
    data = document["dataset"]
    table = Table(
        title=f"{_data_name(document)} · {Path(document['model']['name']).name} · "
        f"{data['n_test']} test examples",
        caption=f"label words: {escape(label_words_summary(document))}",
    )
    for i, name in enumerate(table_header(document)):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    for row in table_rows(document, compact=True):
        # Row labels hold brackets ("[seed 0]") that rich would read as markup.
        table.add_row(*map(escape, row), style="italic" if "(mean ± std" in row[0] else None)
    console.print(table)
    if document.get("comparisons"):
        pairs = Table(title="pairwise comparisons (exact McNemar, Holm-adjusted)")
        for i, name in enumerate(COMPARISON_HEADER):
            pairs.add_column(name, justify="left" if i < 2 else "right")
        for row in comparison_rows(document):
            pairs.add_row(*map(escape, row))
        console.print(pairs)
    for line in check_lines(document.get("data_checks") or {}):
        if line.startswith("WARNING"):
            console.print(f"[bold red]{escape(line)}[/]")


# The run directory.
