"""The two methods that use the model as it is: label scoring and generation.

`zero-shot-scoring` reads the model's probability of each class's label words after the
prompt; `zero-shot-generate` lets it write a short answer and looks for a label word in
it. Neither trains; the scoring engine and the prompt strings live in their own modules.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import torch

from ..errors import LmclassifyWarning
from ..scoring import encode_label_words, encode_prompts
from .base import LabelScoring, Method

logger = logging.getLogger(__name__)


class ZeroShotScoring(LabelScoring, Method):
    """The class whose label words are most probable after the prompt wins.

    A class with several label words scores the sum of their probabilities; the class
    probabilities are the softmax over classes of those log scores.

    Args:
        model, tokenizer, template, verbalizer, classes: as in `Method`.
        batch_size: prompts per forward pass.
        max_length: longest row in tokens; longer texts are cut.
        progress: show a progress bar.
        feature_store: a `FeatureStore`: the same forward pass then also stores every
            layer's hidden state at the prompts' last token, for a probe to reuse.
        calibration: one of `calibration.CALIBRATIONS` (default ``"none"``).
        normalize: length normalisation of label-word scores: ``"none"``, ``"token"``,
            ``"char"``.
    """

    name = "zero-shot-scoring"

    def __init__(
        self,
        model,
        tokenizer,
        template,
        verbalizer,
        classes,
        *,
        batch_size=16,
        max_length=512,
        progress=True,
        feature_store=None,
        calibration="none",
        normalize="none",
    ):
        super().__init__(model, tokenizer, template, verbalizer, classes)
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress
        self.feature_store = feature_store
        self.calibration = calibration
        self.normalize = normalize

    def fit(self, texts, labels, dev_texts=None, dev_labels=None) -> ZeroShotScoring:
        self._check_fit_inputs(texts, labels)
        return self

    def _feature_sink(self, texts):
        """Stores the pass's features for a probe, unless cached or some text was cut."""
        store = self.feature_store
        if store is None or store.get(texts, "last") is not None:
            return None

        def sink(prompts, features):
            budget = self.max_length - self._n_packed()
            if max(map(len, prompts)) < budget:
                store.put(texts, "last", features)

        return sink

    def _n_packed(self) -> int:
        label_ids = encode_label_words(
            self.tokenizer, self.verbalizer.all_words(), self.template.separator
        )
        return sum(len(ids) - 1 for ids in label_ids)


class ZeroShotGenerate(Method):
    """Greedy generation of a short answer, parsed for a label word.

    Generation stops at the newline that ends the answer's first non-blank line, or after
    `max_new_tokens`. The answer's class is the
    one whose label word appears first in it (case-insensitive; the longer word wins a
    tie). An answer with no label word gets class id -1 in `predict` and a uniform row in
    `predict_proba`; it counts as wrong. After `predict_proba`, `answers_` holds the raw
    answers and `n_unparsed_` how many matched no label word.

    Args:
        model, tokenizer, template, verbalizer, classes: as in `Method`.
        max_new_tokens: longest answer in tokens.
        batch_size: prompts generated together.
        max_length: longest prompt plus answer in tokens; longer texts are cut.
        progress: show a progress bar.
    """

    name = "zero-shot-generate"

    def __init__(
        self,
        model,
        tokenizer,
        template,
        verbalizer,
        classes,
        *,
        max_new_tokens=5,
        batch_size=16,
        max_length=512,
        progress=True,
    ):
        super().__init__(model, tokenizer, template, verbalizer, classes)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress

    def fit(self, texts, labels, dev_texts=None, dev_labels=None) -> ZeroShotGenerate:
        self._check_fit_inputs(texts, labels)
        return self

    def predict_proba(self, texts) -> np.ndarray:
        self.answers_ = self.generate(list(texts))
        ids = np.array([parse_answer(answer, self.verbalizer) for answer in self.answers_])
        self.n_unparsed_ = int((ids == -1).sum())
        if self.n_unparsed_:
            warnings.warn(
                f"{self.n_unparsed_} of {len(ids)} generated answers matched no label word; "
                "they count as wrong",
                LmclassifyWarning,
                stacklevel=2,
            )
        proba = np.full((len(ids), len(self.classes)), 1.0 / len(self.classes))
        parsed = ids >= 0
        proba[parsed] = np.eye(len(self.classes))[ids[parsed]]
        self.pred_ids_ = ids
        return proba

    def predict(self, texts) -> np.ndarray:
        self.predict_proba(texts)
        return self.pred_ids_

    @torch.no_grad()
    def generate(self, texts: list[str]) -> list[str]:
        """The model's greedy answer to each prompt, up to the first newline."""
        from tqdm.auto import tqdm
        from transformers import GenerationConfig

        prompts = encode_prompts(
            self.tokenizer, self.template, texts, self.max_length - self.max_new_tokens
        )
        config = GenerationConfig(
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        answers = [""] * len(prompts)
        bar = tqdm(total=len(prompts), desc="generating", unit="ex", disable=not self.progress)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = [prompts[i] for i in chunk]
            for i, answer in zip(chunk, self._generate_batch(batch, config)):
                answers[i] = answer
            bar.update(len(chunk))
        bar.close()
        return answers

    def _generate_batch(self, prompts: list[list[int]], config) -> list[str]:
        width = max(len(p) for p in prompts)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
        device = next(self.model.parameters()).device
        output = self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            generation_config=config,
            stopping_criteria=[_answer_line_ended(self.tokenizer, width)],
        )
        texts = self.tokenizer.batch_decode(output[:, width:], skip_special_tokens=True)
        return [first_line(text) for text in texts]


def first_line(text: str) -> str:
    """The answer: leading blank lines skipped, cut at the next newline."""
    return text.lstrip().split("\n")[0].strip()


def _answer_line_ended(tokenizer, start: int):
    """A stopping criterion: a row is done once its answer has text and then a newline
    (blank lines before the answer do not stop it: base models often start with one)."""
    from transformers import StoppingCriteria

    class AnswerLineEnded(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
            texts = tokenizer.batch_decode(input_ids[:, start:], skip_special_tokens=True)
            return torch.tensor([bool(t.strip()) and "\n" in t.lstrip() for t in texts])

    return AnswerLineEnded()


def parse_answer(answer: str, verbalizer) -> int:
    """Class id whose label word occurs first in `answer`, or -1 when none does.

    Example:
        >>> v = Verbalizer.from_words({"neg": "bad", "pos": "good"}, ["neg", "pos"])
        >>> parse_answer(" Good, not bad", v)
        1
    """
    lowered = answer.lower()
    best = None  # (position, -length, class id)
    for class_id, words in enumerate(verbalizer.words.values()):
        for word in words:
            position = lowered.find(word.strip().lower())
            if position >= 0:
                candidate = (position, -len(word.strip()), class_id)
                best = candidate if best is None else min(best, candidate)
    return -1 if best is None else best[2]
