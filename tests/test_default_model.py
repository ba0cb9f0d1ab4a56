"""End to end on the real embedded default (Gemma 3 270M from PyPI): slow, run by CI."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from lmclassify.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def default_model():
    from lmclassify.models import load_model

    return load_model()


def test_default_model_is_gemma_in_float32(default_model):
    assert default_model.n_parameters == 268_098_176
    assert next(default_model.model.parameters()).dtype == torch.float32
    ids = default_model.tokenizer("负面", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2  # multi-token label words are the normal case


def test_engine_equals_naive_on_the_real_model(default_model):
    from lmclassify.prompts import Template
    from lmclassify.scoring import LabelScorer, naive_label_log_probs

    texts = ["这家酒店很好，服务周到，下次还来。", "房间太小了，而且很脏，不推荐。", "一般般吧"]
    scorer = LabelScorer(
        default_model.model,
        default_model.tokenizer,
        Template("评论：{text}\n情感："),
        ["正面", "负面", "好", "差"],
        progress=False,
    )
    fast = scorer.score(texts)
    naive = naive_label_log_probs(
        default_model.model, scorer.encode_prompts(texts), scorer.label_ids
    )
    torch.testing.assert_close(fast, naive, atol=1e-3, rtol=0)


def test_compare_on_the_embedded_default(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--methods",
            "zero-shot-scoring,zero-shot-generate",
            "--test-size",
            "40",
            "--no-progress",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads((out / "results.json").read_text())
    assert document["dataset"]["n_test"] == 40 and document["dataset"]["n_train"] == 2000
    assert document["model"]["parameters"] == 268_098_176
    by_method = {r["method"]: r["metrics"] for r in document["results"]}
    # The base model answers 正面 to the default question, whatever the review: every
    # generated answer parses, and both methods call every test review positive.
    assert by_method["zero-shot-generate"]["n_unparsed"] == 0
    for metrics in by_method.values():
        assert metrics["n"] == 40
        assert metrics["recall_per_class"] == {"negative": 0.0, "positive": 1.0}
        assert metrics["accuracy"] == 0.5  # the test split is balanced
    assert by_method["zero-shot-generate"]["auc"] == 0.5  # one answer for every review
    rows = (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 80
    assert (out / "report.html").is_file()
