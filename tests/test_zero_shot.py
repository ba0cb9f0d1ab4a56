"""The zero-shot methods: probabilities, parsing of answers, saving and loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmclassify.methods import ZeroShotGenerate, ZeroShotScoring, method_class
from lmclassify.methods.zero_shot import first_line, parse_answer
from lmclassify.prompts import Template, Verbalizer
from lmclassify.scoring import encode_label_words, encode_prompts, naive_label_log_probs

CLASSES = ["negative", "positive"]
TEXTS = ["这家酒店很好，服务周到。", "房间太小了，而且很脏。", "一般般吧", "非常满意"]
TEMPLATE = Template("评论：{text}\n情感：")


@pytest.fixture
def verbalizer():
    return Verbalizer.from_words({"negative": ["负面", "很差劲"], "positive": ["正面"]}, CLASSES)


def test_scoring_probabilities_are_the_softmax_of_summed_word_probabilities(
    tiny_qwen2, qwen_tokenizer, verbalizer
):
    method = ZeroShotScoring(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, progress=False
    )
    proba = method.fit(TEXTS, [1, 0, 0, 1]).predict_proba(TEXTS)

    prompts = encode_prompts(qwen_tokenizer, TEMPLATE, TEXTS, 512)
    label_ids = encode_label_words(qwen_tokenizer, verbalizer.all_words())
    words = naive_label_log_probs(tiny_qwen2, prompts, label_ids).double().exp()
    expected = torch.stack([words[:, 0] + words[:, 1], words[:, 2]], dim=1)
    expected = (expected / expected.sum(dim=1, keepdim=True)).numpy()

    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(proba, expected, atol=1e-4)
    np.testing.assert_array_equal(method.predict(TEXTS), expected.argmax(axis=1))


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("正面", 1),
        (" 负面评价", 0),
        ("很差劲，不是正面", 0),  # the first label word wins
        ("Positive!", -1),  # no label word of this verbalizer
        ("", -1),
    ],
)
def test_parse_answer_finds_the_first_label_word(verbalizer, answer, expected):
    assert parse_answer(answer, verbalizer) == expected


def test_parse_answer_is_case_insensitive_and_prefers_longer_words():
    verbalizer = Verbalizer.from_words({"neg": ["not good"], "pos": ["Good"]}, ["neg", "pos"])
    assert parse_answer(" NOT GOOD at all", verbalizer) == 0
    assert parse_answer(" good", verbalizer) == 1


def test_generation_counts_unparsed_answers_as_uniform(tiny_qwen2, qwen_tokenizer, verbalizer):
    method = ZeroShotGenerate(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, max_new_tokens=3, progress=False
    )
    with pytest.warns(UserWarning, match="matched no label word"):
        proba = method.fit(TEXTS, [1, 0, 0, 1]).predict_proba(TEXTS)

    assert len(method.answers_) == len(TEXTS)
    assert all("\n" not in answer for answer in method.answers_)
    assert method.n_unparsed_ == int((method.pred_ids_ == -1).sum()) > 0
    np.testing.assert_allclose(proba[method.pred_ids_ == -1], 0.5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_generation_is_greedy_and_batch_independent(tiny_qwen2, qwen_tokenizer, verbalizer):
    method = ZeroShotGenerate(
        tiny_qwen2,
        qwen_tokenizer,
        TEMPLATE,
        verbalizer,
        CLASSES,
        max_new_tokens=3,
        batch_size=4,
        progress=False,
    )
    together = method.generate(TEXTS)
    method.batch_size = 1
    assert method.generate(TEXTS) == together


@pytest.mark.parametrize("cls", [ZeroShotScoring, ZeroShotGenerate])
def test_save_and_load_round_trip(tmp_path, tiny_qwen2, qwen_tokenizer, verbalizer, cls):
    method = cls(tiny_qwen2, qwen_tokenizer, Template("Q {text} A", " "), verbalizer, CLASSES)
    method.save(tmp_path)
    loaded = method_class(cls.name).load(tmp_path, tiny_qwen2, qwen_tokenizer)
    assert loaded.config() == method.config()
    assert loaded.template.separator == " "


def test_fit_checks_labels(tiny_qwen2, qwen_tokenizer, verbalizer):
    method = ZeroShotScoring(tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES)
    with pytest.raises(ValueError, match="differ in length: 2 vs 1"):
        method.fit(TEXTS[:2], [0])
    with pytest.raises(ValueError, match="class ids in 0..1, got 2"):
        method.fit(TEXTS[:2], [0, 2])


def test_unknown_method_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown method 'lora'; choose from"):
        method_class("lora")


@pytest.mark.parametrize(
    "generated, answer",
    [("\n\n 正面\n因为", "正面"), ("负面。很差\n", "负面。很差"), ("  ", ""), ("a\nb", "a")],
)
def test_the_answer_is_the_first_non_blank_line(generated, answer):
    assert first_line(generated) == answer
