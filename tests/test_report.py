"""Reports of a run directory written by hand: Markdown, HTML, charts and the CLI command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lmclassify.cli import app
from lmclassify.html_report import render_html, write_report
from lmclassify.metrics import classification_metrics
from lmclassify.plots import expected_calibration_error
from lmclassify.report import print_table, render_markdown, row_label

CLASSES = ["negative", "positive"]
VERBALIZER = {"negative": ["bad"], "positive": ["good"]}
LABELS = ["zero-shot-generate", "probe +temperature [seed 0]", "probe +temperature [seed 1]"]


def _predictions(method, calibration, seed, labels, preds, proba) -> list[dict]:
    return [
        {
            "method": method,
            "index": i,
            "text": f"review {i}",
            "label": CLASSES[y],
            "pred": None if p < 0 else CLASSES[p],
            "proba": [round(float(x), 6) for x in q],
            "verbalizer": "negative=bad,positive=good",
            "calibration": calibration,
            "seed": seed,
        }
        for i, (y, p, q) in enumerate(zip(labels, preds, proba))
    ]


def _result(method, calibration, seed, labels, preds, proba, new_keys) -> dict:
    result = {
        "method": method,
        "verbalizer": VERBALIZER,
        "calibration": calibration,
        "seed": seed,
        "metrics": classification_metrics(labels, preds, proba, CLASSES),
        "seconds": {"fit": 1.25, "predict": 0.5},
    }
    if new_keys:
        result["intervals"] = {
            name: [result["metrics"][name] - 0.05, min(1.0, result["metrics"][name] + 0.05)]
            for name in ("accuracy", "f1", "precision", "recall", "auc")
        }
    return result


def _fake_outcomes(n=40):
    """Three results on `n` test examples: a generator with unparsed answers, two probes."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * (n // 2))
    outcomes = []

    # Generation: one-hot rows where the answer named a class, uniform rows where it did not.
    preds = np.where(rng.random(n) < 0.7, labels, 1 - labels)
    preds[::8] = -1
    proba = np.eye(2)[np.maximum(preds, 0)]
    proba[preds < 0] = 0.5
    outcomes.append(("zero-shot-generate", "none", 0, preds, proba))

    for seed in (0, 1):
        score = np.clip(labels * 0.4 + 0.3 + rng.normal(0, 0.2, n), 0.01, 0.99)
        proba = np.stack([1 - score, score], axis=1)
        outcomes.append(("probe", "temperature", seed, proba.argmax(axis=1), proba))
    return labels, outcomes


def write_fake_run(folder, new_keys=True):
    """A run directory as `compare` writes it, with the schema-2 keys when `new_keys`."""
    labels, outcomes = _fake_outcomes()
    results, rows = [], []
    for method, calibration, seed, preds, proba in outcomes:
        results.append(_result(method, calibration, seed, labels, preds, proba, new_keys))
        rows += _predictions(method, calibration, seed, labels, preds, proba)
    document = {
        "schema": 2 if new_keys else 1,
        "dataset": {
            "name": "reviews.csv",
            "classes": CLASSES,
            "n_train": 80,
            "n_dev": 20,
            "n_test": len(labels),
        },
        "model": {"name": "/models/tiny-qwen", "parameters": 1234567},
        "results": results,
    }
    if new_keys:
        document |= _new_keys(results)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    (folder / "predictions.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
    )
    config = {
        "options": {"seed": 0, "methods": ["zero-shot-generate", "probe"]},
        "template": {"text": "Text: {text}\nLabel:", "separator": " "},
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return document


def _new_keys(results) -> dict:
    accuracy = [result["metrics"]["accuracy"] for result in results]  # 0.575, 0.725, 0.875

    def pair(a, b, p_value, p_adjusted):
        return {
            "a": LABELS[a],
            "b": LABELS[b],
            "accuracy_a": accuracy[a],
            "accuracy_b": accuracy[b],
            "diff": accuracy[a] - accuracy[b],
            "ci": [accuracy[a] - accuracy[b] - 0.15, accuracy[a] - accuracy[b] + 0.15],
            "a_only_correct": 9,
            "b_only_correct": 3,
            "p_value": p_value,
            "p_adjusted": p_adjusted,
            "significant": p_adjusted <= 0.05,
        }

    return {
        "comparisons": [pair(0, 1, 0.2, 0.4), pair(0, 2, 0.0096, 0.0287), pair(1, 2, 0.61, 1.0)],
        "seed_summary": [
            {
                "label": "probe +temperature",
                "method": "probe",
                "calibration": "temperature",
                "seeds": [0, 1],
                "mean": {"accuracy": 0.8125, "f1": 0.8},
                "std": {"accuracy": 0.0125, "f1": 0.02},
            }
        ],
        "data_checks": {
            "splits": {
                "train": {"n": 80, "class_counts": {"negative": 40, "positive": 40}},
                "dev": {"n": 20, "class_counts": {"negative": 10, "positive": 10}},
                "test": {"n": 40, "class_counts": {"negative": 20, "positive": 20}},
            },
            "exact_leaks": 2,
            "near_leaks": 1,
            "leak_examples": [{"train": "great | value", "test": "great | value", "kind": "exact"}],
            "truncated": {"train": 3, "dev": 0, "test": 1},
            "max_length": 64,
        },
        "verbalizer_study": [
            {"verbalizer": VERBALIZER, "calibration": c, "accuracy": acc, "f1": 0.7, "auc": 0.8}
            for c, acc in (
                ("none", 0.61),
                ("none", 0.7),
                ("contextual", 0.74),
                ("contextual", 0.78),
            )
        ],
        "verbalizer_spread": [
            {"calibration": "none", "n": 2, "mean": 0.655, "min": 0.61, "max": 0.7, "std": 0.0636},
            {
                "calibration": "contextual",
                "n": 2,
                "mean": 0.76,
                "min": 0.74,
                "max": 0.78,
                "std": 0.0283,
            },
        ],
    }


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / "run"
    write_fake_run(folder)
    return folder


def test_write_report_writes_both_reports_and_every_chart(run_dir):
    written = write_report(run_dir)

    names = sorted(path.name for path in (run_dir / "plots").iterdir())
    assert names == sorted(
        [
            "roc.png",
            "verbalizers.png",
            "confusion-zero-shot-generate.png",
            "reliability-zero-shot-generate.png",
            "confusion-probe-temperature-seed-0.png",
            "reliability-probe-temperature-seed-0.png",
            "confusion-probe-temperature-seed-1.png",
            "reliability-probe-temperature-seed-1.png",
        ]
    )
    assert all(path.is_file() and path.read_bytes()[:4] == b"\x89PNG" for path in written[2:])
    assert written[:2] == [run_dir / "report.md", run_dir / "report.html"]
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")]


def test_html_is_self_contained_and_names_every_row(run_dir):
    write_report(run_dir)
    page = (run_dir / "report.html").read_text(encoding="utf-8")

    for label in LABELS:
        assert label in page
    assert "http://" not in page and "https://" not in page
    assert "<script src" not in page and "<link" not in page
    assert page.count("data:image/png;base64,") == 8
    assert "0.800 ± 0.020" in page and "Resolved configuration" in page
    assert '<p class="warning">WARNING: 2 test texts' in page


def test_render_html_draws_missing_charts_itself(run_dir):
    page = render_html(run_dir)

    assert page.count("data:image/png;base64,") == 8
    assert not (run_dir / "plots").exists()


def test_markdown_shows_intervals_significance_seeds_and_checks(run_dir):
    document = json.loads((run_dir / "results.json").read_text())
    generation = document["results"][0]["metrics"]["accuracy"]

    text = render_markdown(document)

    assert f"| zero-shot-generate | {generation:.3f} [{generation - 0.05:.3f}, " in text
    assert "| probe +temperature [seed 0] | probe +temperature [seed 1] | 0.725 | 0.875 |" in text
    assert "| -0.300 [-0.450, -0.150] | 9 | 3 | 0.010 | 0.029 | * |" in text
    assert "| 0.610 | 1.000 |  |" in text
    assert "| 0.5 | 0.029 * |" in text  # the generator is significantly worse than the best
    assert text.count("| best |") == 1
    seed_rows = [line for line in text.splitlines() if "mean ± std, 2 seeds" in line]
    assert seed_rows == [
        (
            "| probe +temperature (mean ± std, 2 seeds) | 0.812 ± 0.013 | 0.800 ± 0.020 "
            "| – | – | – |  |  |  |  |"
        )
    ]
    lines = text.splitlines()
    assert (
        lines.index(seed_rows[0])
        == lines.index(
            next(line for line in lines if line.startswith("| probe +temperature [seed 1] |"))
        )
        + 1
    )
    assert "| train | 80 | 40 (50.0 %) | 40 (50.0 %) |" in text
    assert "- WARNING: 2 test texts also occur in the training split" in text
    assert "- 1 test text nearly duplicates a training text." in text
    assert "train 3, dev 0, test 1" in text
    assert "Leak example (exact): train 'great | value', test 'great | value'." in text
    assert "| none | 2 | 0.655 | 0.610 | 0.700 | 0.064 |" in text


def test_comparisons_may_name_the_seed_of_a_single_seed_method(run_dir):
    document = json.loads((run_dir / "results.json").read_text())
    for row in document["comparisons"]:  # as when another method ran with several seeds
        for side in ("a", "b"):
            row[side] += " [seed 0]" if row[side] == LABELS[0] else ""

    text = render_markdown(document)

    assert f"| {LABELS[0]} | " in text and "| 0.5 | 0.029 * |" in text


def test_schema_one_documents_still_render(tmp_path):
    document = write_fake_run(tmp_path / "old", new_keys=False)

    text = render_markdown(document)
    write_report(tmp_path / "old")

    assert "| zero-shot-generate | " in text and "[" not in text.split("\n")[6]
    assert "Data checks" not in text and "comparisons" not in text
    page = (tmp_path / "old" / "report.html").read_text(encoding="utf-8")
    assert all(label in page for label in LABELS) and "Verbalizer study" not in page


@pytest.mark.parametrize("new_keys", [True, False])
def test_print_table_shows_every_row(tmp_path, new_keys):
    from rich.console import Console

    document = write_fake_run(tmp_path / "run", new_keys=new_keys)
    console = Console(width=250, record=True)

    print_table(document, console=console)

    text = console.export_text()
    assert all(label in text for label in LABELS)
    assert ("pairwise comparisons" in text) == new_keys
    assert ("WARNING: 2 test texts" in text) == new_keys


def test_row_label_names_calibration_and_seed():
    result = {"method": "probe", "calibration": "contextual", "seed": 3}

    assert row_label(result, several_seeds=True) == "probe +contextual [seed 3]"
    assert row_label(result | {"calibration": "none"}, several_seeds=False) == "probe"


def test_expected_calibration_error_matches_a_hand_computation():
    labels = [0, 1, 1, 0]
    proba = [[0.9, 0.1], [0.35, 0.65], [0.15, 0.85], [0.45, 0.55]]

    # Bins of width 0.2. (0.4, 0.6]: conf 0.55, wrong -> 1/4 * 0.55; (0.6, 0.8]: conf 0.65,
    # right -> 1/4 * 0.35; (0.8, 1.0]: conf 0.9 and 0.85, both right -> 2/4 * 0.125.
    assert expected_calibration_error(labels, proba, n_bins=5) == pytest.approx(0.2875)
    # An unanswered example is wrong whatever its probabilities say.
    # Then (0.8, 1.0] holds one right and one wrong: 2/4 * |0.5 - 0.875|.
    assert expected_calibration_error(labels, proba, n_bins=5, preds=[0, 1, -1, 1]) == (
        pytest.approx(0.4125)
    )


@pytest.mark.parametrize("n_bins", [0, 2.5])
def test_expected_calibration_error_rejects_bad_bins(n_bins):
    with pytest.raises(ValueError, match="`n_bins` must be a positive integer"):
        expected_calibration_error([0], [[0.6, 0.4]], n_bins=n_bins)


def test_report_command_rerenders_a_run(run_dir):
    result = CliRunner().invoke(app, ["report", str(run_dir)])

    assert result.exit_code == 0, result.stderr
    assert (run_dir / "report.html").is_file() and (run_dir / "plots" / "roc.png").is_file()


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_report_command_on_a_bad_directory_fails_in_one_line(tmp_path, make):
    folder = tmp_path / "run"
    if make == "empty":
        folder.mkdir()

    result = CliRunner().invoke(app, ["report", str(folder)])

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert ("no results.json" if make == "empty" else "is not a directory") in result.stderr


def test_chart_fonts_are_dejavu_then_only_installed_cjk_fonts():
    from matplotlib import font_manager

    from lmclassify.plots import CJK_FONTS, _font_families

    families = _font_families()
    installed = {font.name for font in font_manager.fontManager.ttflist}
    assert families[0] == "DejaVu Sans"
    assert all(name in installed and name in CJK_FONTS for name in families[1:])
