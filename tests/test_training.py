"""The shared training loop: batching, schedule, early stopping, checkpoints and resume."""

from __future__ import annotations

import pytest
import torch

from lmclassify.methods import LoraScoring
from lmclassify.prompts import Template, Verbalizer
from lmclassify.training import Evaluation, TrainingConfig, length_grouped_batches

CLASSES = ["negative", "positive"]
TEXTS = [f"{word}{'！' * (i % 5)}" for i in range(8) for word in ("很好", "很差")]
LABELS = [1, 0] * 8


def test_length_grouped_batches_cover_every_example_once_and_are_seeded():
    lengths = [(i * 7) % 23 for i in range(100)]
    batches = length_grouped_batches(lengths, 8, seed=3)
    flat = sorted(i for batch in batches for i in batch)
    assert flat == list(range(100))
    assert sum(len(batch) == 8 for batch in batches) == 12  # 100 = 12 x 8 + 4
    assert batches == length_grouped_batches(lengths, 8, seed=3)
    assert batches != length_grouped_batches(lengths, 8, seed=4)
    # Within a batch lengths are close: each batch is a slice of a sorted window.
    spread = max(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread <= 6


def test_evaluation_prefers_score_then_lower_loss():
    assert Evaluation(0.8, 0.5).better_than(Evaluation(0.7, 0.1))
    assert Evaluation(0.8, 0.4).better_than(Evaluation(0.8, 0.5))
    assert not Evaluation(0.8, 0.5).better_than(Evaluation(0.8, 0.5))
    assert Evaluation(0.0, 9.0).better_than(None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 0}, "`epochs` must be a positive integer, got 0"),
        ({"learning_rate": -1.0}, "`learning_rate` must be positive"),
        ({"warmup_ratio": 1.0}, "`warmup_ratio` must be in"),
        ({"lora_dropout": 1.5}, "`lora_dropout` must be in"),
        ({"eval_steps": 0}, "`eval_steps` must be a positive integer"),
    ],
)
def test_training_config_checks_its_fields(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingConfig(**kwargs)


def _method(model, tokenizer, **options):
    verbalizer = Verbalizer.from_words(
        {"negative": ["负面", "很差劲"], "positive": ["正面"]}, CLASSES
    )
    training = TrainingConfig(
        epochs=2,
        batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=5e-3,
        checkpoint_steps=2,
        eval_steps=3,
        patience=5,
    )
    return LoraScoring(
        model,
        tokenizer,
        Template("评论：{text}\n情感："),
        verbalizer,
        CLASSES,
        training=training,
        seed=7,
        progress=False,
        **options,
    )


def _trainable(method):
    return {n: p.detach().clone() for n, p in method.modules_.named_parameters() if p.requires_grad}


def test_resume_continues_to_the_same_result(tmp_path, tiny_qwen2, qwen_tokenizer):
    dev = (TEXTS[:6], LABELS[:6])
    whole = _method(tiny_qwen2, qwen_tokenizer).fit(TEXTS, LABELS, *dev)
    assert whole.train_state_.step == 8  # 16 examples, batches of 4, two epochs

    interrupted = _method(tiny_qwen2, qwen_tokenizer, checkpoint_dir=tmp_path, max_steps=5)
    interrupted.fit(TEXTS, LABELS, *dev)
    assert interrupted.train_state_.step == 5 and (tmp_path / "checkpoint.pt").is_file()

    resumed = _method(tiny_qwen2, qwen_tokenizer, checkpoint_dir=tmp_path, resume=True)
    resumed.fit(TEXTS, LABELS, *dev)

    assert resumed.train_state_.step == 8
    assert resumed.train_state_.history == whole.train_state_.history
    expected, actual = _trainable(whole), _trainable(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name


def test_training_lowers_the_loss_and_keeps_the_best_dev_state(tiny_qwen2, qwen_tokenizer):
    method = _method(tiny_qwen2, qwen_tokenizer).fit(TEXTS, LABELS, TEXTS, LABELS)
    losses = [h["loss"] for h in method.train_state_.history if "loss" in h]
    assert losses[-1] < losses[0]
    dev_scores = [h["dev_score"] for h in method.train_state_.history if "dev_score" in h]
    assert method.train_state_.best_eval["score"] == max(dev_scores)
    proba = method.predict_proba(TEXTS)
    assert (proba.argmax(axis=1) == LABELS).mean() == pytest.approx(max(dev_scores))


def test_early_stopping_stops_after_patience(tiny_qwen2, qwen_tokenizer):
    method = _method(tiny_qwen2, qwen_tokenizer)
    method.training = TrainingConfig(
        epochs=3,
        batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-9,
        eval_steps=1,
        patience=2,
    )
    method.fit(TEXTS, LABELS, TEXTS, LABELS)
    assert method.train_state_.stopped_early
    assert method.train_state_.step < 12
