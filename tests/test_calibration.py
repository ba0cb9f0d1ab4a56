"""Calibration formulas against hand computations, and the one-pass calibrated scorer."""

from __future__ import annotations

import math

import pytest
import torch

from lmclassify.calibration import (
    CONTENT_FREE_INPUTS,
    batch,
    calibrated_log_probs,
    contextual,
    dc_pmi,
    normalize_lengths,
    premise_template,
)
from lmclassify.prompts import Template, Verbalizer
from lmclassify.scoring import LabelScorer, class_log_scores

CLASSES = ["neg", "pos"]


def test_contextual_divides_by_the_content_free_distribution():
    scores = torch.log(torch.tensor([[0.2, 0.8], [0.6, 0.4]]))
    content_free = torch.log(torch.tensor([[0.3, 0.7], [0.1, 0.9]]))  # mean p_cf (0.2, 0.8)
    # Row 1: (0.2/0.2, 0.8/0.8) = (1, 1) -> (0.5, 0.5); row 2: (3, 0.5) -> (6/7, 1/7).
    expected = torch.tensor([[0.5, 0.5], [6 / 7, 1 / 7]], dtype=torch.float64)
    torch.testing.assert_close(contextual(scores, content_free).exp(), expected)


def test_contextual_renormalises_unnormalised_class_scores():
    scores = torch.log(torch.tensor([[0.02, 0.08]]))  # the same ratio as (0.2, 0.8)
    content_free = torch.log(torch.tensor([[0.1, 0.3]]))  # normalised: (0.25, 0.75)
    # (0.2 / 0.25, 0.8 / 0.75) = (0.8, 16/15) -> 0.8 / (0.8 + 16/15) = 3/7.
    assert contextual(scores, content_free).exp()[0, 0].item() == pytest.approx(3 / 7)


def test_dc_pmi_subtracts_the_premise_word_scores_then_sums_each_class():
    verbalizer = Verbalizer.from_words({"neg": ["a", "b"], "pos": ["c"]}, CLASSES)
    word_scores = torch.log(torch.tensor([[0.1, 0.2, 0.4]]))
    premise = torch.log(torch.tensor([0.2, 0.1, 0.8]))
    # neg: 0.1/0.2 + 0.2/0.1 = 2.5; pos: 0.4/0.8 = 0.5 -> (5/6, 1/6).
    result = dc_pmi(word_scores, premise, ["a", "b", "c"], verbalizer).exp()
    torch.testing.assert_close(result, torch.tensor([[5 / 6, 1 / 6]], dtype=torch.float64))


def test_batch_calibration_subtracts_the_mean_log_probability():
    scores = torch.log(torch.tensor([[0.9, 0.1], [0.6, 0.4]]))
    mean = torch.tensor([(math.log(0.9) + math.log(0.6)) / 2, (math.log(0.1) + math.log(0.4)) / 2])
    first = torch.tensor([math.log(0.9), math.log(0.1)]) - mean
    expected = torch.softmax(first.double(), dim=0)
    torch.testing.assert_close(batch(scores)[0].exp(), expected)
    # Both rows moved by the same amount: the more negative row now leans negative.
    assert batch(scores)[1].exp()[1] > 0.5


def test_length_normalisation_per_token_and_per_character():
    word_scores = torch.tensor([[-6.0, -3.0]])
    words, label_ids = ["ab", "cdef"], [[1, 2, 3], [4]]
    torch.testing.assert_close(
        normalize_lengths(word_scores, words, label_ids, "token"), torch.tensor([[-2.0, -3.0]])
    )
    torch.testing.assert_close(
        normalize_lengths(word_scores, words, label_ids, "char"), torch.tensor([[-3.0, -0.75]])
    )
    with pytest.raises(ValueError, match="`normalize` must be one of none, token, char"):
        normalize_lengths(word_scores, words, label_ids, "word")


def test_the_domain_premise_is_the_template_after_the_text():
    template = Template("Review: {text}\nSentiment:", separator=" ")
    assert premise_template(template).render("") == "\nSentiment:"
    assert premise_template(template).separator == " "


def test_calibrated_scorer_matches_the_formulas_on_the_engine(tiny_qwen2, qwen_tokenizer):
    template = Template("评论：{text}\n情感：")
    verbalizer = Verbalizer.from_words({"neg": ["负面", "很差劲"], "pos": ["正面"]}, CLASSES)
    texts = ["很好", "很差", "一般"]
    result = calibrated_log_probs(
        tiny_qwen2,
        qwen_tokenizer,
        template,
        verbalizer,
        texts,
        ("none", "contextual", "dc-pmi", "batch"),
        progress=False,
    )

    words = verbalizer.all_words()
    scorer = LabelScorer(tiny_qwen2, qwen_tokenizer, template, words, progress=False)
    word_scores = scorer.score(texts)
    scores = class_log_scores(word_scores, words, verbalizer)
    content_free = class_log_scores(scorer.score(list(CONTENT_FREE_INPUTS)), words, verbalizer)
    premise = LabelScorer(
        tiny_qwen2, qwen_tokenizer, Template("{text}\n情感："), words, progress=False
    ).score([""])

    torch.testing.assert_close(result["none"], torch.log_softmax(scores.double(), -1))
    torch.testing.assert_close(result["contextual"], contextual(scores, content_free))
    torch.testing.assert_close(result["dc-pmi"], dc_pmi(word_scores, premise, words, verbalizer))
    torch.testing.assert_close(result["batch"], batch(scores))
    for log_probs in result.values():
        torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(3, dtype=torch.float64))


def test_unknown_calibration_is_refused(tiny_qwen2, qwen_tokenizer):
    verbalizer = Verbalizer.from_words({"neg": ["负面"], "pos": ["正面"]}, CLASSES)
    with pytest.raises(ValueError, match="`calibration` must be one of none, contextual"):
        calibrated_log_probs(
            tiny_qwen2, qwen_tokenizer, Template("{text}"), verbalizer, ["x"], ("platt",)
        )
