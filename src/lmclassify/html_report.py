"""The run directory's HTML page, and the writer of all its reports: `report.html`,
`report.md` and `plots/`.

Reads the run through `run_files.py` and never recomputes a metric; the tables are
`report.py`'s and the charts `plots.py`'s. The page is self-contained: inline style,
charts as data URIs, nothing fetched to view it.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from .files import replace_directory, write_text_atomically
from .report import (
    COLUMNS,
    COMPARISON_HEADER,
    SIGNIFICANT,
    SPREAD_HEADER,
    STUDY_HEADER,
    balance_rows,
    check_lines,
    comparison_rows,
    label_words_summary,
    page_title,
    reading_notes,
    render_markdown,
    row_labels,
    seed_summary_row,
    spread_rows,
    study_rows,
    table_header,
    versus_best,
    with_interval,
)
from .run_files import Run, draw_plots, load_run, plot_files

logger = logging.getLogger(__name__)


def write_report(run_dir) -> list[Path]:
    """Render `plots/*.png`, `report.md` and `report.html` in a run directory.

    Reads only the run's files. The plots are drawn into a hidden folder that replaces
    `plots/` when complete; each report is written to a temporary file and renamed.

    Returns:
        The paths written: `report.md`, `report.html`, then the plots.
    """
    run = load_run(run_dir)
    staging = run.path / f".plots.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        written = draw_plots(run, staging)
        page = _render_html(run, staging)
        replace_directory(staging, run.path / "plots")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_text_atomically(run.path / "report.md", render_markdown(run.document))
    write_text_atomically(run.path / "report.html", page)
    logger.info("report written to %s", run.path / "report.html")
    plots = [run.path / "plots" / path.name for path in written]
    return [run.path / "report.md", run.path / "report.html", *plots]


# HTML.


def render_html(run_dir, plots_dir=None) -> str:
    """`report.html`: one self-contained page (inline CSS, charts as data URIs, no network).

    Args:
        run_dir: a run directory written by `lmclassify compare`.
        plots_dir: folder holding the charts of `plot_files`; by default `run_dir/plots`.
            Where any is missing, all are drawn afresh into a temporary folder.
    """
    run = load_run(run_dir)
    folder = Path(plots_dir) if plots_dir else run.path / "plots"
    names = plot_files(run)
    expected = [
        names["roc"],
        names["verbalizers"],
        *names["confusion"].values(),
        *names["reliability"].values(),
    ]
    if all((folder / name).is_file() for name in expected if name):
        return _render_html(run, folder)
    with tempfile.TemporaryDirectory() as temporary:
        draw_plots(run, Path(temporary))
        return _render_html(run, Path(temporary))


def _render_html(run: Run, folder: Path) -> str:
    document, names = run.document, plot_files(run)
    sections = [
        _html_results(document),
        _html_table_section("Seed summary", "seeds", ["method", *COLUMNS], _seed_rows(document)),
        _html_table_section(
            "Pairwise comparisons",
            "pairs",
            COMPARISON_HEADER,
            comparison_rows(document),
            _pairs_note(document),
            left=2,
        ),
        _html_plots(names, folder),
        _html_data_checks(document),
        _html_study(document, names, folder),
        _html_config(run.config),
    ]
    sections = [section for section in sections if section]
    nav = "".join(
        f'<a href="#{anchor}">{title}</a>'
        for anchor, title in re.findall(SECTION_START, "".join(sections))
    )
    return PAGE.format(
        title=_esc(f"lmclassify: {page_title(document)}"),
        style=STYLE,
        script=SCRIPT,
        nav=nav,
        heading=_esc(page_title(document)),
        summary=_html_summary(document),
        body="\n".join(sections),
    )


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _html_summary(document: dict) -> str:
    data, model = document["dataset"], document["model"]
    facts = [
        ("classes", ", ".join(data["classes"])),
        ("splits", f"{data['n_train']} train · {data['n_dev']} dev · {data['n_test']} test"),
        ("model", f"{Path(model['name']).name} ({model['parameters']:,} parameters)"),
        ("label words", label_words_summary(document)),
    ]
    return "".join(f"<div><dt>{_esc(k)}</dt><dd>{_esc(v)}</dd></div>" for k, v in facts)


def _html_results(document: dict) -> str:
    results, labels = document["results"], row_labels(document["results"])
    best = {
        name: max(
            (r["metrics"].get(name) for r in results if r["metrics"].get(name) is not None),
            default=None,
        )
        for name in COLUMNS
    }
    header = table_header(document)
    body = []
    for i, (result, label) in enumerate(zip(results, labels)):
        cells = [f'<td class="label">{_esc(label)}</td>']
        for name in COLUMNS:
            value = result["metrics"].get(name)
            mark = ' class="best"' if value is not None and value == best[name] else ""
            cells.append(f'<td{mark} data-v="{_num(value)}">{_metric_html(result, name)}</td>')
        cells += [
            _num_td(result["metrics"].get("n_unparsed", 0), "{:d}"),
            _num_td(result["seconds"]["fit"], "{:.1f}"),
            _num_td(result["seconds"]["predict"], "{:.1f}"),
        ]
        if document.get("comparisons"):
            cells.append(_versus_best_td(versus_best(document, i)))
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = " ".join(_esc(note).replace("`", "") for note in reading_notes(document))
    notes += " Highlighted: the best value of each column. Click a header to sort."
    return _section("Results", "results", _table(header, body, sortable=True), notes)


def _metric_html(result: dict, name: str) -> str:
    return _value_html(with_interval(result, name))


def _value_html(text: str) -> str:
    """A number, with what follows it in brackets set small beneath: `0.812 [0.79, 0.83]`."""
    value, _, rest = text.partition(" ")
    if rest[:1] in ("[", "(") and rest[-1:] in ("]", ")"):
        return f'{_esc(value)}<span class="ci">{_esc(rest)}</span>'
    return _esc(text)


def _versus_best_td(text: str) -> str:
    p = text.removesuffix(f" {SIGNIFICANT}")
    mark = f' <span class="sig">{SIGNIFICANT}</span>' if p != text else ""
    value = "-1" if text == "best" else p.lstrip("<")
    return f'<td data-v="{_esc(value)}">{_esc(p)}{mark}</td>'


def _num(value) -> str:
    return "" if value is None else repr(float(value))


def _num_td(value, pattern: str) -> str:
    return f'<td data-v="{_num(value)}">{_esc(pattern.format(value))}</td>'


def _seed_rows(document: dict) -> list[list[str]]:
    rows = []
    for summary in document.get("seed_summary") or ():
        row = seed_summary_row(summary, 1 + len(COLUMNS))
        rows.append(
            [
                f"{summary['label']} (seeds {', '.join(map(str, summary.get('seeds', [])))})",
                *row[1:],
            ]
        )
    return rows


def _pairs_note(document: dict) -> str:
    n = len(document.get("comparisons") or ())
    return (
        f"Exact McNemar test on the examples only one of the two got right, Holm-adjusted "
        f"over all {n} pairs; {SIGNIFICANT} marks a significant difference."
    )


def _html_table_section(title: str, anchor: str, header, rows, note="", left=1) -> str:
    if not rows:
        return ""
    table = _table(header, _rows_html(rows, left), sortable=True, left=left)
    return _section(title, anchor, table, note)


def _rows_html(rows: list[list[str]], left: int = 1) -> list[str]:
    """Table rows whose first `left` cells are text, the first of them bold."""
    return [
        "<tr>" + "".join(_plain_td(i, cell, left) for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    ]


def _plain_td(i: int, cell: str, left: int = 1) -> str:
    if cell == SIGNIFICANT:
        return f'<td class="sig">{SIGNIFICANT}</td>'
    number = cell.split(" ")[0].lstrip("<+").replace("−", "-")
    numeric = re.fullmatch(r"-?\d+(\.\d+)?", number) is not None
    value = f' data-v="{_esc(number)}"' if numeric and i >= left else ""
    kind = ' class="label"' if not i else ' class="text"' if i < left else ""
    return f"<td{value}{kind}>{_value_html(cell)}</td>"


def _table(header, body: list[str], sortable: bool = False, left: int = 1) -> str:
    head = "".join(
        f'<th class="text">{_esc(name)}</th>' if i < left else f"<th>{_esc(name)}</th>"
        for i, name in enumerate(header)
    )
    kind = ' class="sortable"' if sortable else ""
    return (
        f'<div class="scroll"><table{kind}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


SECTION_START = r'<section id="([a-z-]+)" data-title="([^"]+)">'


def _section(title: str, anchor: str, content: str, note: str = "") -> str:
    """A titled part of the page; its title also names it in the page's table of contents."""
    note = f'<p class="note">{note}</p>' if note else ""
    return (
        f'<section id="{anchor}" data-title="{_esc(title)}"><h2>{_esc(title)}</h2>'
        f"{content}{note}</section>"
    )


def _image(folder: Path, name: str | None, caption: str) -> str:
    """A chart as a data URI; `caption` is its alternative text (charts carry their title)."""
    if not name or not (folder / name).is_file():
        return ""
    data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
    return f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}"></figure>'


def _html_plots(names: dict, folder: Path) -> str:
    if not names["roc"]:
        return ""
    parts = [
        f'<div class="grid wide">{_image(folder, names["roc"], "ROC curves")}</div>',
        "<h3>Confusion matrices</h3>",
        '<div class="grid">'
        + "".join(_image(folder, name, label) for label, name in names["confusion"].items())
        + "</div>",
        "<h3>Reliability diagrams</h3>",
        '<div class="grid">'
        + "".join(_image(folder, name, label) for label, name in names["reliability"].items())
        + "</div>",
    ]
    return _section("Charts", "charts", "".join(parts))


def _html_data_checks(document: dict) -> str:
    checks = document.get("data_checks")
    if not checks:
        return ""
    classes = document["dataset"]["classes"]
    body = _rows_html(balance_rows(checks, classes))
    lines = check_lines(checks)
    warnings = "".join(
        f'<p class="warning">{_esc(line)}</p>' for line in lines if line.startswith("WARNING")
    )
    items = "".join(f"<li>{_esc(line)}</li>" for line in lines if not line.startswith("WARNING"))
    table = _table(["split", "examples", *classes], body)
    items = f"<ul>{items}</ul>" if items else ""
    return _section("Data checks", "data-checks", table + warnings + items)


def _html_study(document: dict, names: dict, folder: Path) -> str:
    rows = study_rows(document)
    if not rows:
        return ""
    chart = _image(folder, names["verbalizers"], "Accuracy of each verbalizer")
    spread = spread_rows(document)
    spread = _table(SPREAD_HEADER, _rows_html(spread)) if spread else ""
    tables = f"<div>{spread}{_table(STUDY_HEADER, _rows_html(rows, left=3), True, 3)}</div>"
    return _section("Verbalizer study", "verbalizers", f'<div class="side">{chart}{tables}</div>')


def _html_config(config: dict | None) -> str:
    if config is None:
        return ""
    text = json.dumps(config, indent=2, ensure_ascii=False)
    return _section(
        "Configuration",
        "configuration",
        f"<details><summary>Resolved configuration (config.json)</summary>"
        f"<pre>{_esc(text)}</pre></details>",
    )


STYLE = """
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa;
  --best: #dcf3e3; --accent: #2f6db5; --warn: #fff4e5; --warn-line: #d97706; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Helvetica Neue",
  Arial, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 32px 28px 64px; }
h1 { font-size: 24px; margin: 0 0 4px; letter-spacing: -0.01em; }
h1 small { display: block; font-size: 13px; color: var(--muted); font-weight: 500;
  text-transform: uppercase; letter-spacing: 0.06em; }
h2 { font-size: 17px; margin: 36px 0 10px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 14px; margin: 22px 0 8px; color: var(--muted); }
dl { display: flex; flex-wrap: wrap; gap: 6px 28px; margin: 14px 0 0; }
dt { font-size: 11px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); }
dd { margin: 0; }
nav { margin-top: 14px; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13px; }
th, td { padding: 6px 9px; text-align: right; white-space: nowrap; vertical-align: top; }
th { font-weight: 600; color: var(--muted); border-bottom: 2px solid var(--line);
  font-size: 12px; white-space: normal; vertical-align: bottom; }
td { border-bottom: 1px solid #eef1f4; }
th.text, td.text, td.label { text-align: left; }
td.label { font-weight: 600; }
tbody tr:hover td { background: var(--soft); }
.sortable-tables table.sortable th { cursor: pointer; user-select: none; }
.sortable-tables table.sortable th::after { content: " \\2195"; color: #b8c0c8; }
.sortable-tables th[aria-sort=descending]::after { content: " \\2193"; color: var(--accent); }
.sortable-tables th[aria-sort=ascending]::after { content: " \\2191"; color: var(--accent); }
td.best { background: var(--best); }
tbody tr:hover td.best { background: #c8ebd3; }
.ci { display: block; color: var(--muted); font-size: 11px; line-height: 1.2; }
.sig { color: #b54708; font-weight: 700; }
.note { color: var(--muted); font-size: 12px; max-width: 860px; }
.warning { background: var(--warn); border-left: 4px solid var(--warn-line); padding: 8px 12px;
  font-weight: 600; }
ul { padding-left: 20px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(340px, 1fr));
  gap: 14px; }
.grid.wide { grid-template-columns: minmax(0, 640px); }
figure { margin: 0; padding: 10px; border: 1px solid var(--line); border-radius: 6px; }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; }
.side { display: flex; flex-wrap: wrap; gap: 20px; align-items: flex-start; }
.side figure { flex: 0 1 520px; }
.side .scroll + .scroll { margin-top: 16px; }
details summary { cursor: pointer; color: var(--accent); }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 12px; overflow: auto; font-size: 12px; max-height: 520px; }
footer { margin-top: 48px; color: var(--muted); font-size: 12px; }
"""

SCRIPT = """
for (const th of document.querySelectorAll("table.sortable th")) {
  th.addEventListener("click", () => {
    const table = th.closest("table"), column = th.cellIndex;
    const down = th.getAttribute("aria-sort") !== "descending";
    for (const other of table.querySelectorAll("th")) other.removeAttribute("aria-sort");
    th.setAttribute("aria-sort", down ? "descending" : "ascending");
    const key = (row) => row.cells[column].dataset.v ?? row.cells[column].textContent;
    const rows = [...table.tBodies[0].rows].sort((a, b) => {
      const x = key(a), y = key(b), nx = parseFloat(x), ny = parseFloat(y);
      const order = isNaN(nx) || isNaN(ny) ? String(x).localeCompare(String(y)) : nx - ny;
      return down ? -order : order;
    });
    table.tBodies[0].append(...rows);
  });
}
document.documentElement.classList.add("sortable-tables");
"""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<main>
<header><h1><small>lmclassify report</small>{heading}</h1><dl>{summary}</dl>
<nav>{nav}</nav></header>
{body}
<footer>Rendered by <code>lmclassify report</code> from results.json, predictions.jsonl and
config.json; no number on this page was recomputed.</footer>
</main>
<script>{script}</script>
</body>
</html>
"""
