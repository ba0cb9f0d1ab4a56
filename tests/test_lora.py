"""The LoRA methods: frozen embeddings and LM head, peft round trips, B = 0 equals base."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from lmclassify.methods import LoraHead, LoraScoring, ZeroShotScoring, method_class
from lmclassify.prompts import Template, Verbalizer
from lmclassify.training import TrainingConfig

CLASSES = ["negative", "positive"]
TEXTS = [f"{word}{'！' * (i % 3)}" for i in range(4) for word in ("很好", "很差")]
LABELS = [1, 0] * 4
TEMPLATE = Template("评论：{text}\n情感：")
TRAINING = TrainingConfig(
    epochs=1,
    batch_size=4,
    gradient_accumulation_steps=1,
    learning_rate=1e-2,
    head_learning_rate=1e-2,
)


@pytest.fixture
def verbalizer():
    return Verbalizer.from_words({"negative": ["负面", "很差劲"], "positive": ["正面"]}, CLASSES)


@pytest.fixture(params=["tiny_qwen2", "tiny_qwen3"])
def model(request):
    return request.getfixturevalue(request.param)


def _frozen(model):
    return (
        model.get_input_embeddings().weight.detach().clone(),
        model.get_output_embeddings().weight.detach().clone(),
    )


@pytest.mark.parametrize("cls", [LoraHead, LoraScoring])
def test_embeddings_and_lm_head_stay_bit_identical(
    model, qwen_tokenizer, verbalizer, cls, tmp_path
):
    embeddings, lm_head = _frozen(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    method = cls(
        model, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, training=TRAINING, progress=False
    ).fit(TEXTS, LABELS)

    adapted = method.peft_model_.get_base_model()
    assert torch.equal(adapted.get_input_embeddings().weight, embeddings)
    assert torch.equal(adapted.get_output_embeddings().weight, lm_head)
    # The shared model: every weight unchanged and still trainable, no LoRA layer inside.
    for name, parameter in model.named_parameters():
        assert torch.equal(parameter, before[name]), name
        assert parameter.requires_grad, name
    assert model.config.tie_word_embeddings == (
        adapted.get_input_embeddings().weight.data_ptr()
        == adapted.get_output_embeddings().weight.data_ptr()
    )
    assert not any("lora" in name for name, _ in model.named_parameters())
    # The adapted copy reads the shared model's weight storage rather than a copy of it.
    shared = model.get_input_embeddings().weight.data_ptr()
    assert adapted.get_input_embeddings().weight.data_ptr() == shared

    method.save(tmp_path)
    saved = load_file(tmp_path / "adapter_model.safetensors")
    assert saved and all("lora_" in key for key in saved)
    assert not any("embed" in key or "lm_head" in key for key in saved)


def test_lora_scoring_with_b_zero_equals_zero_shot_scoring(tiny_qwen3, qwen_tokenizer, verbalizer):
    method = LoraScoring(
        tiny_qwen3, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, training=TRAINING, progress=False
    )
    method._build()  # adapters initialised: A random, B zero
    zero_shot = ZeroShotScoring(
        tiny_qwen3, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, progress=False
    )
    np.testing.assert_allclose(
        method.predict_proba(TEXTS), zero_shot.predict_proba(TEXTS), atol=1e-6
    )


@pytest.mark.parametrize("cls", [LoraHead, LoraScoring])
def test_saved_adapter_round_trips_through_peft_and_load(
    tiny_qwen2, qwen_tokenizer, verbalizer, cls, tmp_path
):
    from peft import PeftModel

    method = cls(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, training=TRAINING, progress=False
    ).fit(TEXTS, LABELS)
    method.save(tmp_path)

    peft_model = PeftModel.from_pretrained(copy.deepcopy(tiny_qwen2), tmp_path).eval()
    ids = torch.tensor([qwen_tokenizer(TEMPLATE.render(TEXTS[0]))["input_ids"]])
    with torch.no_grad():
        expected = method.peft_model_(input_ids=ids).logits
        torch.testing.assert_close(peft_model(input_ids=ids).logits, expected)

    loaded = method_class(cls.name).load(tmp_path, tiny_qwen2, qwen_tokenizer)
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), method.predict_proba(TEXTS), atol=1e-6)


def test_lora_head_probabilities_sum_to_one_and_learn(tiny_qwen2, qwen_tokenizer, verbalizer):
    training = TrainingConfig(
        epochs=6,
        batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-2,
        head_learning_rate=5e-2,
    )
    method = LoraHead(
        tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES, training=training, progress=False
    ).fit(TEXTS, LABELS)
    proba = method.predict_proba(TEXTS)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == LABELS).all()


def test_predicting_before_fitting_is_refused(tiny_qwen2, qwen_tokenizer, verbalizer):
    method = LoraHead(tiny_qwen2, qwen_tokenizer, TEMPLATE, verbalizer, CLASSES)
    with pytest.raises(ValueError, match="must be fitted or loaded"):
        method.predict_proba(TEXTS)
