"""The `lmclassify` command end to end on a tiny model folder and a small CSV file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from typer.testing import CliRunner

from lmclassify.cli import app

SIZES = ["--train-size", "20", "--dev-size", "10", "--test-size", "30"]
ALL_METHODS = ["zero-shot-generate", "zero-shot-scoring", "probe", "lora-head", "lora-scoring"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Feature caches of these tests stay out of the user's cache."""
    monkeypatch.setenv("LMCLASSIFY_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def compare_args(tiny_model_dir, reviews_csv):
    return [
        "compare",
        "--data",
        str(reviews_csv),
        "--text-column",
        "review",
        "--label-column",
        "sentiment",
        "--model",
        str(tiny_model_dir),
        "--template",
        "评论：{text}\\n情感：",
        "--verbalizer",
        "negative=负面|很差劲,positive=正面",
        "--max-new-tokens",
        "3",
        "--no-progress",
        "--train-batch-size",
        "4",
        "--gradient-accumulation-steps",
        "1",
        *SIZES,
    ]


def run(args):
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.stdout, result.stderr


def read_predictions(run_dir):
    lines = (run_dir / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_compare_writes_a_run_whose_metrics_sklearn_reproduces(tmp_path, compare_args):
    out = tmp_path / "run"
    code, stdout, stderr = run([*compare_args, "--out", str(out)])
    assert code == 0, stderr
    assert "zero-shot-scoring" in stdout and "accuracy" in stdout

    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "models",
        "plots",
        "predictions.jsonl",
        "report.html",
        "report.md",
        "results.json",
    ]
    assert (out / "plots" / "roc.png").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["schema"] == 1
    assert results["dataset"]["classes"] == ["negative", "positive"]
    assert [r["method"] for r in results["results"]] == ALL_METHODS
    assert sorted(p.name for p in (out / "models").iterdir()) == sorted(ALL_METHODS)
    assert (out / "models" / "lora-head" / "adapter_model.safetensors").is_file()
    assert results["results"][2]["fit"]["layer"] in (1, 2)
    rows = read_predictions(out)
    assert len(rows) == 5 * 30
    for result in results["results"]:
        _assert_reproducible(result, [r for r in rows if r["method"] == result["method"]])

    config = json.loads((out / "config.json").read_text())
    assert config["options"]["seed"] == 0 and config["template"]["text"] == "评论：{text}\n情感："
    assert set(config["versions"]) >= {"torch", "transformers", "peft"}
    assert "| zero-shot-scoring" in (out / "report.md").read_text()


def _assert_reproducible(result, rows):
    classes = ["negative", "positive"]
    labels = [r["label"] for r in rows]
    preds = [r["pred"] if r["pred"] is not None else "<none>" for r in rows]
    proba = np.array([r["proba"] for r in rows])
    metrics = result["metrics"]
    assert metrics["accuracy"] == pytest.approx(accuracy_score(labels, preds))
    kwargs = {"labels": ["positive"], "average": "macro", "zero_division": 0}
    assert metrics["precision"] == pytest.approx(precision_score(labels, preds, **kwargs))
    assert metrics["recall"] == pytest.approx(recall_score(labels, preds, **kwargs))
    assert metrics["f1"] == pytest.approx(f1_score(labels, preds, **kwargs))
    y = [classes.index(label) for label in labels]
    assert metrics["auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)


def test_same_command_twice_gives_the_same_results(tmp_path, compare_args):
    documents = []
    for name in ("a", "b"):
        code, _, stderr = run(
            [*compare_args, "--methods", "zero-shot-scoring", "--out", str(tmp_path / name)]
        )
        assert code == 0, stderr
        document = json.loads((tmp_path / name / "results.json").read_text())
        for result in document["results"]:
            result.pop("seconds")
        documents.append(document)
    assert documents[0] == documents[1]
    assert read_predictions(tmp_path / "a") == read_predictions(tmp_path / "b")


@pytest.mark.parametrize("method", ["zero-shot-scoring", "probe", "lora-head", "lora-scoring"])
def test_predict_matches_what_compare_predicted(tmp_path, compare_args, method):
    out = tmp_path / "run"
    code, _, stderr = run([*compare_args, "--methods", method, "--out", str(out)])
    assert code == 0, stderr
    rows = read_predictions(out)
    source = tmp_path / "input.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": r["index"], "text": r["text"]}, ensure_ascii=False) + "\n"
            for r in rows
        )
    )

    target = tmp_path / "output.csv"
    code, stdout, stderr = run(
        [
            "predict",
            "--run",
            str(out),
            "--method",
            method,
            "--input",
            str(source),
            "--output",
            str(target),
        ]
    )
    assert code == 0, stderr
    with target.open(encoding="utf-8") as handle:
        served = list(csv.DictReader(handle))
    assert [s["pred"] for s in served] == [r["pred"] for r in rows]
    np.testing.assert_allclose(
        [float(s["proba_positive"]) for s in served], [r["proba"][1] for r in rows], atol=1e-5
    )


def _write_csv(path, rows):
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["review", "sentiment"], *rows])
    return str(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (["--data", "missing.csv"], "'missing.csv' does not exist"),
        (["--text-column", "body"], "`text_column` 'body' is not a column"),
        (["--methods", "zero-shot-scoring,magic"], "unknown method 'magic'"),
        (["--template", "no slot here"], "must contain {text} exactly once"),
        (["--verbalizer", "neutral=中,negative=负面,positive=正面"], "unknown class 'neutral'"),
        (["--model", "/nowhere/model"], "folder '/nowhere/model' does not exist"),
        (["--model", "someone/not-cached"], "hub id in the local Hugging Face cache"),
        (["--test-size", "0"], "`test_size` must be at least 1"),
        (["--train-size", "500"], "exceeds the 60 rows"),
        (["--probe-layer", "top"], "`probe_layer` must be 'auto' or an integer, got 'top'"),
        (["--probe-pooling", "max"], "`pooling` must be one of last, mean"),
        (["--epochs", "0"], "`epochs` must be a positive integer, got 0"),
        (["--learning-rate", "0"], "`learning_rate` must be positive"),
        (["--resume"], "no interrupted run"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_run(tmp_path, compare_args, change, message):
    out = tmp_path / "runs" / "bad"
    code, stdout, stderr = run([*compare_args, *change, "--out", str(out)])
    assert code == 2
    assert message in stderr
    assert stderr.strip().count("\n") == 0 and "Traceback" not in stderr
    assert not out.exists()
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.parametrize(
    "rows, message",
    [
        ([["好", "positive"], ["坏", "positive"]], "needs at least two classes"),
        ([["好", "positive"], ["  ", "negative"]], "missing or blank in row 2"),
    ],
)
def test_bad_data_files_are_refused(tmp_path, compare_args, rows, message):
    data = _write_csv(tmp_path / "bad.csv", rows)
    code, _, stderr = run([*compare_args, "--data", data, "--out", str(tmp_path / "r")])
    assert code == 2 and message in stderr
    assert not (tmp_path / "r").exists()


def test_existing_run_directory_is_kept_unless_overwrite(tmp_path, compare_args):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = run([*compare_args, "--out", str(out)])
    assert code == 2 and "already exists" in stderr
    assert (out / "keep.txt").read_text() == "mine"


def test_predict_refuses_an_unknown_method(tmp_path, compare_args):
    out = tmp_path / "run"
    assert run([*compare_args, "--methods", "zero-shot-scoring", "--out", str(out)])[0] == 0
    code, _, stderr = run(
        [
            "predict",
            "--run",
            str(out),
            "--method",
            "probe",
            "--input",
            "x.csv",
            "--output",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2 and "'probe' was not saved" in stderr


def test_an_interrupted_run_resumes_to_the_same_results(tmp_path, compare_args, monkeypatch):
    import lmclassify.compare as compare

    reference = tmp_path / "reference"
    assert (
        run([*compare_args, "--methods", "zero-shot-scoring,lora-head", "--out", str(reference)])[0]
        == 0
    )

    original = compare.evaluate_method

    def interrupt_at_lora(method, *args):
        if method.name == "lora-head":
            raise KeyboardInterrupt
        return original(method, *args)

    out = tmp_path / "run"
    args = [*compare_args, "--methods", "zero-shot-scoring,lora-head", "--out", str(out)]
    monkeypatch.setattr(compare, "evaluate_method", interrupt_at_lora)
    assert run(args)[0] != 0
    assert not out.exists()
    assert (tmp_path / ".run.partial" / "methods" / "zero-shot-scoring").is_dir()

    monkeypatch.setattr(compare, "evaluate_method", original)
    code, _, stderr = run([*args, "--resume"])
    assert code == 0, stderr
    assert not (tmp_path / ".run.partial").exists()
    assert read_predictions(out) == read_predictions(reference)

    code, _, stderr = run([*args, "--overwrite", "--resume", "--seed", "1"])
    assert code == 2 and "no interrupted run" in stderr


def test_calibrations_shots_and_a_verbalizer_study_in_one_run(tmp_path, compare_args):
    study = tmp_path / "verbalizers.txt"
    study.write_text("# two verbalizers\nnegative=负面,positive=正面\nnegative=差,positive=好\n")
    out = tmp_path / "run"
    code, stdout, stderr = run(
        [
            *compare_args,
            "--methods",
            "zero-shot-scoring,lora-scoring",
            "--calibration",
            "none,contextual,batch",
            "--shots",
            "1",
            "--study-verbalizers",
            str(study),
            "--out",
            str(out),
        ]
    )
    assert code == 0, stderr
    document = json.loads((out / "results.json").read_text())
    pairs = [(r["method"], r["calibration"]) for r in document["results"]]
    assert pairs == [
        (m, c)
        for m in ("zero-shot-scoring", "lora-scoring")
        for c in ("none", "contextual", "batch")
    ]
    rows = read_predictions(out)
    assert len(rows) == 6 * 30
    for result in document["results"]:
        _assert_reproducible(
            result,
            [
                r
                for r in rows
                if r["method"] == result["method"] and r["calibration"] == result["calibration"]
            ],
        )
    assert len(document["verbalizer_study"]) == 2 * 4
    assert {row["calibration"] for row in document["verbalizer_spread"]} == {
        "none",
        "contextual",
        "dc-pmi",
        "batch",
    }
    saved = json.loads((out / "models" / "zero-shot-scoring" / "method.json").read_text())
    assert saved["template"]["text"].count("评论：") == 3  # one demonstration per class


def test_seeds_intervals_comparisons_and_data_checks(tmp_path, compare_args):
    out = tmp_path / "run"
    code, _, stderr = run(
        [
            *compare_args,
            "--methods",
            "zero-shot-scoring,lora-head",
            "--seeds",
            "0,1",
            "--bootstrap",
            "200",
            "--out",
            str(out),
        ]
    )
    assert code == 0, stderr
    document = json.loads((out / "results.json").read_text())
    assert [(r["method"], r["seed"]) for r in document["results"]] == [
        ("zero-shot-scoring", 0),
        ("lora-head", 0),
        ("lora-head", 1),
    ]
    for result in document["results"]:
        low, high = result["intervals"]["accuracy"]
        assert low <= result["metrics"]["accuracy"] <= high
    assert sorted(p.name for p in (out / "models").iterdir()) == [
        "lora-head",
        "lora-head-seed1",
        "zero-shot-scoring",
    ]

    (summary,) = document["seed_summary"]
    accuracies = [r["metrics"]["accuracy"] for r in document["results"][1:]]
    assert summary["seeds"] == [0, 1]
    assert summary["mean"]["accuracy"] == pytest.approx(np.mean(accuracies))
    assert summary["std"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))

    (pair,) = document["comparisons"]  # seed 0 only: one pair
    assert (pair["a"], pair["b"]) == ("zero-shot-scoring", "lora-head [seed 0]")
    assert 0 <= pair["p_value"] <= pair["p_adjusted"] <= 1

    checks = document["data_checks"]
    assert checks["exact_leaks"] == 0
    assert checks["splits"]["test"]["n"] == 30
    assert checks["truncated"] == {"train": 0, "dev": 0, "test": 0}


@pytest.mark.parametrize(
    "change, message",
    [
        (["--seeds", "0,x"], "`seeds` must be comma-separated integers"),
        (["--resplit"], "`resplit` needs `seeds`"),
        (["--seeds", "1,1"], "`seeds` must be distinct integers"),
    ],
)
def test_bad_seed_options(tmp_path, compare_args, change, message):
    code, _, stderr = run([*compare_args, *change, "--out", str(tmp_path / "r")])
    assert code == 2 and message in stderr
