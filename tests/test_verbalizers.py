"""Verbalizer studies share forward passes; label-word search never sees the test split."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lmclassify import verbalizers as module
from lmclassify.calibration import calibrated_log_probs
from lmclassify.cli import app
from lmclassify.prompts import Template, Verbalizer, demonstrations
from lmclassify.verbalizers import search_verbalizers, spread, verbalizer_study

CLASSES = ["negative", "positive"]
TEMPLATE = Template("评论：{text}\n情感：")
TEXTS = ["很好！", "很差。", "非常满意", "太失望了", "不错", "糟糕", "喜欢", "讨厌", "一般"]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0, 0]
SINGLE = ["negative=负面,positive=正面", "negative=差,positive=好", "negative=坏,positive=好"]


def _verbalizers(specs):
    return [Verbalizer.parse(spec, CLASSES) for spec in specs]


def _count_calls(model):
    calls = []
    handle = model.model.register_forward_hook(lambda *args: calls.append(1))
    return calls, handle


@pytest.mark.parametrize(
    "calibrations, passes",
    [
        (("none", "batch"), 1),
        (("none", "contextual"), 2),
        (("none", "dc-pmi"), 2),
        (("none", "contextual", "dc-pmi", "batch"), 3),
    ],
)
def test_single_token_verbalizers_share_one_pass_over_the_data(
    tiny_qwen2, qwen_tokenizer, calibrations, passes
):
    calls, handle = _count_calls(tiny_qwen2)
    try:
        rows = verbalizer_study(
            tiny_qwen2,
            qwen_tokenizer,
            TEMPLATE,
            _verbalizers(SINGLE),
            TEXTS,
            LABELS,
            CLASSES,
            calibrations,
            progress=False,
        )
    finally:
        handle.remove()
    assert len(rows) == len(SINGLE) * len(calibrations)
    assert len(calls) == passes  # nine texts in one batch; references add one pass each


def test_multi_token_verbalizers_reuse_the_prompt_pass(tiny_qwen2, qwen_tokenizer):
    specs = [*SINGLE, "negative=很差劲|非常负面,positive=非常满意"]
    calls, handle = _count_calls(tiny_qwen2)
    try:
        verbalizer_study(
            tiny_qwen2,
            qwen_tokenizer,
            TEMPLATE,
            _verbalizers(specs),
            TEXTS,
            LABELS,
            CLASSES,
            ("none",),
            progress=False,
        )
    finally:
        handle.remove()
    assert len(calls) == 1  # the multi-token words are packed after the shared prompt


def test_study_rows_equal_scoring_each_verbalizer_alone(tiny_qwen2, qwen_tokenizer):
    specs = [*SINGLE, "negative=很差劲,positive=正面"]
    rows = verbalizer_study(
        tiny_qwen2,
        qwen_tokenizer,
        TEMPLATE,
        _verbalizers(specs),
        TEXTS,
        LABELS,
        CLASSES,
        ("none", "contextual"),
        progress=False,
    )
    for verbalizer in _verbalizers(specs):
        alone = calibrated_log_probs(
            tiny_qwen2,
            qwen_tokenizer,
            TEMPLATE,
            verbalizer,
            TEXTS,
            ("none", "contextual"),
            progress=False,
        )
        for name, log_probs in alone.items():
            row = next(
                r
                for r in rows
                if r["verbalizer"] == verbalizer.to_json() and r["calibration"] == name
            )
            accuracy = (log_probs.argmax(-1) == torch.tensor(LABELS)).double().mean()
            assert row["accuracy"] == pytest.approx(float(accuracy))


def test_spread_summarises_accuracy_per_calibration():
    rows = [{"calibration": "none", "accuracy": a} for a in (0.5, 0.7, 0.9)]
    rows += [{"calibration": "batch", "accuracy": 0.8}]
    assert spread(rows) == [
        {
            "calibration": "none",
            "n": 3,
            "mean": pytest.approx(0.7),
            "min": 0.5,
            "max": 0.9,
            "std": pytest.approx(0.2),
        },
        {"calibration": "batch", "n": 1, "mean": 0.8, "min": 0.8, "max": 0.8, "std": 0.0},
    ]


def test_search_returns_k_verbalizers_without_touching_test(
    tiny_qwen2, qwen_tokenizer, monkeypatch
):
    test_texts = ["测试集专用的句子一", "测试集专用的句子二"]
    seen = []
    original = module.score_words

    def recording(model, tokenizer, template, words, texts, *args, **kwargs):
        seen.extend(texts)
        return original(model, tokenizer, template, words, texts, *args, **kwargs)

    monkeypatch.setattr(module, "score_words", recording)
    found = search_verbalizers(
        tiny_qwen2,
        qwen_tokenizer,
        TEMPLATE,
        CLASSES,
        (TEXTS, LABELS),
        (TEXTS[:4], LABELS[:4]),
        3,
        per_class=3,
        progress=False,
    )
    assert len(found) == 3
    assert not set(seen) & set(test_texts) and set(seen) == set(TEXTS[:4])
    for item in found:
        words = item["verbalizer"].words
        assert all(len(w) == 1 for w in words.values())
        assert words["negative"] != words["positive"]
        ids = qwen_tokenizer(words["negative"][0], add_special_tokens=False)["input_ids"]
        assert len(ids) == 1
    accuracies = [item["dev_accuracy"] for item in found]
    assert accuracies == sorted(accuracies, reverse=True)


def test_demonstrations_are_seeded_balanced_and_answered():
    prefix = demonstrations(
        TEXTS, LABELS, CLASSES, TEMPLATE, Verbalizer.parse(SINGLE[0], CLASSES), 2, seed=0
    )
    blocks = prefix.strip().split("\n\n")
    assert len(blocks) == 4
    assert sum(b.endswith("正面") for b in blocks) == 2 == sum(b.endswith("负面") for b in blocks)
    for block in blocks:
        text = block.split("\n")[0].removeprefix("评论：")
        assert LABELS[TEXTS.index(text)] == (1 if block.endswith("正面") else 0)
    again = demonstrations(
        TEXTS, LABELS, CLASSES, TEMPLATE, Verbalizer.parse(SINGLE[0], CLASSES), 2, seed=0
    )
    assert again == prefix
    with pytest.raises(ValueError, match="`shots` 6 needs 6 training examples of class"):
        demonstrations(
            TEXTS, LABELS, CLASSES, TEMPLATE, Verbalizer.parse(SINGLE[0], CLASSES), 6, seed=0
        )


@pytest.fixture
def study_args(tiny_model_dir, reviews_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("LMCLASSIFY_CACHE", str(tmp_path / "cache"))
    return [
        "verbalizers",
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
        "--train-size",
        "20",
        "--dev-size",
        "10",
        "--test-size",
        "30",
        "--no-progress",
    ]


def test_verbalizers_command_writes_the_study(study_args, tmp_path):
    out = tmp_path / "study.json"
    result = CliRunner().invoke(
        app,
        [
            *study_args,
            "--verbalizer",
            SINGLE[0],
            "--verbalizer",
            SINGLE[1],
            "--search",
            "2",
            "--shots",
            "1",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(out.read_text())
    assert len(document["rows"]) == 4 * 4  # two given + two searched, four calibrations
    assert [row["calibration"] for row in document["spread"]] == [
        "none",
        "contextual",
        "dc-pmi",
        "batch",
    ]
    assert len(document["search"]) == 2
    assert document["template"]["text"].count("评论：") == 3  # two demonstrations + the input
    assert "accuracy across verbalizers" in result.stdout


def test_verbalizers_command_needs_verbalizers_for_user_data(study_args):
    result = CliRunner().invoke(app, study_args)
    assert result.exit_code == 2
    assert "give verbalizers with --verbalizer" in result.stderr


def test_verbalizers_command_scores_with_a_trained_lora_scoring_run(study_args, tmp_path):
    import numpy as np

    run_dir = tmp_path / "run"
    compare = [a if a != "verbalizers" else "compare" for a in study_args]
    compare += ["--methods", "lora-scoring", "--verbalizer", SINGLE[0], "--out", str(run_dir)]
    compare += ["--train-batch-size", "4", "--gradient-accumulation-steps", "1"]
    assert CliRunner().invoke(app, compare).exit_code == 0

    out = tmp_path / "study.json"
    result = CliRunner().invoke(
        app,
        [
            "verbalizers",
            "--run",
            str(run_dir),
            "--verbalizer",
            SINGLE[0],
            "--calibration",
            "none",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(out.read_text())["rows"]
    results = json.loads((run_dir / "results.json").read_text())["results"]
    # The same adapters, prompt and verbalizer on the same test split: the same accuracy.
    assert row["accuracy"] == pytest.approx(results[0]["metrics"]["accuracy"])
    assert np.isclose(row["auc"], results[0]["metrics"]["auc"])
    assert "lora-scoring" in json.loads(out.read_text())["model"]
