"""The linear probe: learns, matches scikit-learn, caches and shares its features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmclassify.features import FeatureStore, prompt_features
from lmclassify.methods import Probe, ZeroShotScoring, method_class
from lmclassify.prompts import Template, Verbalizer

CLASSES = ["negative", "positive"]
TEMPLATE = Template("评论：{text}\n情感：")
TRAIN = [f"{w}{'！' * (i % 4)}{'。' * (i % 3)}" for i in range(12) for w in ("很好", "很差")]
LABELS = [1, 0] * 12
TEST = ["很好！", "很差。。", "很好。", "很差！！！"]
TEST_LABELS = [1, 0, 1, 0]


@pytest.fixture
def verbalizer():
    return Verbalizer.from_words({"negative": ["负面"], "positive": ["正面"]}, CLASSES)


def _probe(model, tokenizer, verbalizer, **options):
    return Probe(model, tokenizer, TEMPLATE, verbalizer, CLASSES, progress=False, **options)


def test_probe_separates_a_separable_task(tiny_qwen2, qwen_tokenizer, verbalizer):
    probe = _probe(tiny_qwen2, qwen_tokenizer, verbalizer).fit(TRAIN, LABELS, TEST, TEST_LABELS)
    proba = probe.predict_proba(TEST)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == TEST_LABELS).all()
    assert 1 <= probe.layer_ <= 2 and probe.c_ in probe.c_grid


def test_probe_probabilities_equal_scikit_learn(tiny_qwen2, qwen_tokenizer, verbalizer):
    probe = _probe(tiny_qwen2, qwen_tokenizer, verbalizer, layer=-1, c_grid=[0.1])
    probe.fit(TRAIN, LABELS)  # no dev split: chosen by cross-validation
    assert probe.layer_ == 2

    features = prompt_features(tiny_qwen2, qwen_tokenizer, TEMPLATE, TRAIN, progress=False)
    reference = probe._pipeline(0.1).fit(features[:, 2].double().numpy(), LABELS)
    test_features = prompt_features(tiny_qwen2, qwen_tokenizer, TEMPLATE, TEST, progress=False)
    expected = reference.predict_proba(test_features[:, 2].double().numpy())
    np.testing.assert_allclose(probe.predict_proba(TEST), expected, atol=1e-9)


def test_mean_pooling_differs_from_last_token(tiny_qwen2, qwen_tokenizer):
    last = prompt_features(tiny_qwen2, qwen_tokenizer, TEMPLATE, TEST, progress=False)
    mean = prompt_features(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, TEST, pooling="mean", progress=False
    )
    assert last.shape == mean.shape == (4, 3, 64)  # embeddings + two layers
    assert not torch.allclose(last, mean)
    ids = qwen_tokenizer(TEMPLATE.render(TEST[0]))["input_ids"]
    with torch.no_grad():
        hidden = tiny_qwen2.model(input_ids=torch.tensor([ids]), output_hidden_states=True)
    torch.testing.assert_close(mean[0, 1], hidden.hidden_states[1][0].mean(dim=0))


def test_features_are_cached_and_shared_with_zero_shot_scoring(
    tmp_path, tiny_qwen2, qwen_tokenizer, verbalizer
):
    store = FeatureStore("tiny", TEMPLATE, 512, root=tmp_path)
    scoring = ZeroShotScoring(
        tiny_qwen2,
        qwen_tokenizer,
        TEMPLATE,
        verbalizer,
        CLASSES,
        progress=False,
        feature_store=store,
    )
    scoring.predict_proba(TEST)  # one pass: label scores and test features
    shared = store.get(TEST, "last")
    own = prompt_features(tiny_qwen2, qwen_tokenizer, TEMPLATE, TEST, progress=False)
    torch.testing.assert_close(shared, own, atol=1e-5, rtol=0)

    probe = _probe(tiny_qwen2, qwen_tokenizer, verbalizer, feature_store=store)
    probe.fit(TRAIN, LABELS, TEST, TEST_LABELS)  # computes and caches the train features
    calls = []
    handle = tiny_qwen2.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        again = _probe(tiny_qwen2, qwen_tokenizer, verbalizer, feature_store=store)
        again.fit(TRAIN, LABELS, TEST, TEST_LABELS)
        again.predict_proba(TEST)
    finally:
        handle.remove()
    assert calls == []  # everything came from the cache
    np.testing.assert_allclose(again.predict_proba(TEST), probe.predict_proba(TEST))


def test_probe_round_trips_through_save_and_load(tmp_path, tiny_qwen2, qwen_tokenizer, verbalizer):
    probe = _probe(tiny_qwen2, qwen_tokenizer, verbalizer).fit(TRAIN, LABELS, TEST, TEST_LABELS)
    probe.save(tmp_path)
    loaded = method_class("probe").load(tmp_path, tiny_qwen2, qwen_tokenizer)
    assert (loaded.layer_, loaded.c_) == (probe.layer_, probe.c_)
    np.testing.assert_allclose(loaded.predict_proba(TEST), probe.predict_proba(TEST))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"layer": 7}, "`layer` must be 'auto' or in -3..2, got 7"),
        ({"pooling": "max"}, "`pooling` must be one of last, mean, got 'max'"),
    ],
)
def test_bad_probe_options_are_refused(tiny_qwen2, qwen_tokenizer, verbalizer, options, message):
    with pytest.raises(ValueError, match=message):
        _probe(tiny_qwen2, qwen_tokenizer, verbalizer, **options).fit(TRAIN, LABELS)
