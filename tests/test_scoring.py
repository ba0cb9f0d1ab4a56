"""The label-scoring engine equals the naive one-forward-per-word reference."""

from __future__ import annotations

import pytest
import torch

from lmclassify.prompts import Template, Verbalizer
from lmclassify.scoring import (
    LabelLayout,
    LabelScorer,
    class_log_scores,
    label_log_probs,
    naive_label_log_probs,
)

TEXTS = [
    "这家酒店很好，服务周到，下次还来。",
    "差",
    "房间太小了，而且很脏，不推荐。前台态度也一般，早餐种类少，总之不会再住了。",
    "一般般吧",
    "The room was clean and the staff were friendly.",
    "位置不错",
    "Terrible. Never again!",
    "环境安静，床很舒服，非常满意，推荐给大家。",
    "ok",
]
TEMPLATE = Template("评论：{text}\n情感：")
VERBALIZERS = {
    "single": ["正面", "负面"],  # one Qwen token each
    "multi": ["很差劲", "非常负面"],  # two tokens each
    "mixed": ["正面", "非常负面", "好", "很差劲", " positive"],
}


_NAIVE_CACHE: dict = {}


def _naive(model, prompts, label_ids):
    """The reference does not depend on batching or padding: compute it once per case."""
    key = (id(model), str(prompts), str(label_ids))
    if key not in _NAIVE_CACHE:
        _NAIVE_CACHE[key] = naive_label_log_probs(model, prompts, label_ids)
    return _NAIVE_CACHE[key]


@pytest.fixture(params=["tiny_qwen2", "tiny_qwen3", "tiny_gemma3"])
def model(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("words", VERBALIZERS.values(), ids=VERBALIZERS.keys())
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_engine_equals_naive(model, qwen_tokenizer, words, batch_size, padding_side):
    qwen_tokenizer.padding_side = padding_side
    scorer = LabelScorer(
        model, qwen_tokenizer, TEMPLATE, words, batch_size=batch_size, progress=False
    )
    prompts = scorer.encode_prompts(TEXTS)

    fast = scorer.score(TEXTS)
    naive = _naive(model, prompts, scorer.label_ids)

    assert fast.shape == (len(TEXTS), len(words))
    torch.testing.assert_close(fast, naive, atol=1e-4, rtol=0)


def test_multi_token_words_really_are_multi_token(qwen_tokenizer):
    scorer_words = VERBALIZERS["multi"]
    layout = LabelLayout.build([qwen_tokenizer(w)["input_ids"] for w in scorer_words])
    assert layout.n_packed == 2  # one packed token per two-token word
    assert layout.query.tolist() == [[-1, 0], [-1, 1]]


def test_single_token_words_pack_nothing_after_the_prompt(qwen_tokenizer):
    layout = LabelLayout.build([qwen_tokenizer(w)["input_ids"] for w in VERBALIZERS["single"]])
    assert layout.n_packed == 0


def test_single_token_verbalizers_share_one_forward_pass(tiny_qwen2, qwen_tokenizer):
    words = ["正面", "负面", "好", "差", " positive", " negative"]
    calls = []
    handle = tiny_qwen2.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        LabelScorer(
            tiny_qwen2, qwen_tokenizer, TEMPLATE, words, batch_size=16, progress=False
        ).score(TEXTS)
    finally:
        handle.remove()
    assert len(calls) == 1  # nine texts, six words, three verbalizers: one pass


def test_scores_do_not_depend_on_batch_company(tiny_qwen2, qwen_tokenizer):
    words = VERBALIZERS["mixed"]
    scorer = LabelScorer(tiny_qwen2, qwen_tokenizer, TEMPLATE, words, batch_size=8, progress=False)
    together = scorer.score(TEXTS)
    alone = torch.cat([scorer.score([text]) for text in TEXTS])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_label_log_probs_has_gradients(tiny_qwen2, qwen_tokenizer):
    layout = LabelLayout.build([qwen_tokenizer(w)["input_ids"] for w in VERBALIZERS["mixed"]])
    prompts = [qwen_tokenizer(TEMPLATE.render(t))["input_ids"] for t in TEXTS[:3]]
    scores = label_log_probs(tiny_qwen2, prompts, layout, pad_id=qwen_tokenizer.pad_token_id)
    scores.sum().backward()
    grad = tiny_qwen2.model.layers[0].self_attn.q_proj.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    tiny_qwen2.zero_grad(set_to_none=True)


def test_class_scores_sum_word_probabilities():
    word_scores = torch.log(torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.05, 0.05]]))
    verbalizer = Verbalizer.from_words({"neg": ["a", "b"], "pos": ["c"]}, ["neg", "pos"])
    scores = class_log_scores(word_scores, ["a", "b", "c"], verbalizer)
    expected = torch.log(torch.tensor([[0.3, 0.3], [0.45, 0.05]]))
    torch.testing.assert_close(scores, expected)


def test_long_texts_are_cut_but_keep_the_question(tiny_qwen2, qwen_tokenizer):
    scorer = LabelScorer(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, VERBALIZERS["multi"], max_length=24, progress=False
    )
    with pytest.warns(UserWarning, match="1 of 2 texts were cut"):
        prompts = scorer.encode_prompts(["好" * 100, "短"])
    assert len(prompts[0]) <= 24 - scorer.layout.n_packed
    question = qwen_tokenizer("\n情感：", add_special_tokens=False)["input_ids"]
    assert prompts[0][-len(question) :] == question


def test_empty_label_word_encoding_is_refused(qwen_tokenizer, tiny_qwen2):
    with pytest.raises(ValueError, match="encodes to no token"):
        LabelScorer(tiny_qwen2, qwen_tokenizer, TEMPLATE, [""], progress=False)
