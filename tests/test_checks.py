"""Data checks: exact and near leaks between splits, class balance, truncation."""

from __future__ import annotations

import pytest

from lmclassify.checks import data_checks, near_duplicates
from lmclassify.data import Dataset, Splits
from lmclassify.prompts import Template

CLASSES = ["negative", "positive"]


def _dataset(texts, labels):
    return Dataset("toy", list(texts), list(labels), CLASSES)


def _splits(train, test):
    return Splits(_dataset(*train), _dataset([], []), _dataset(*test), seed=0)


def test_near_duplicates_ignore_punctuation_spacing_and_case():
    train = ["这家酒店很好，服务周到，下次还来。", "Great room, friendly staff!", "完全无关的句子"]
    test = ["这家酒店很好 服务周到 下次还来!", "great room friendly staff", "另一句完全不同的话"]
    assert near_duplicates(train, test) == [(0, 0, 1.0), (1, 1, 1.0)]


def test_near_duplicates_find_small_edits_above_the_threshold():
    train = ["房间干净，早餐丰富，前台服务热情周到，位置方便，强烈推荐大家入住"]
    close = ["房间干净，早餐丰富，前台服务热情周到，位置方便，推荐大家入住"]
    far = ["房间干净，早餐一般，价格偏高"]
    assert [pair[:2] for pair in near_duplicates(train, close)] == [(0, 0)]
    assert near_duplicates(train, far) == []


def test_exact_leaks_warn_and_are_counted_once():
    splits = _splits(
        (["a b c d e f g", "xyz xyz xyz"], [0, 1]),
        (["a b c d e f g", "xyz  xyz  xyz!", "new text here"], [0, 1, 1]),
    )
    with pytest.warns(UserWarning, match="1 test texts also occur in train"):
        checks = data_checks(splits)
    assert checks["exact_leaks"] == 1 and checks["near_leaks"] == 1
    assert [e["kind"] for e in checks["leak_examples"]] == ["exact", "near"]
    assert checks["splits"]["test"]["class_counts"] == {"negative": 1, "positive": 2}


def test_truncation_is_counted_per_split(qwen_tokenizer):
    splits = _splits((["短", "很长" * 50], [0, 1]), (["好长" * 50], [1]))
    checks = data_checks(splits, qwen_tokenizer, Template("评论：{text}\n情感："), 20)
    assert checks["truncated"] == {"train": 1, "dev": 0, "test": 1}
    assert checks["max_length"] == 20
