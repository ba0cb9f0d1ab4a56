"""Correcting label-word bias: calibrations and length normalisation of label scores.

The formulas work on what the scoring engine produces: label-word log-probabilities
``[n, words]`` and their class aggregates ``[n, classes]``. `calibrated_log_probs` runs
the engine once over the inputs (plus the few reference prompts a calibration needs) and
returns every requested calibration from that one pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .prompts import Template
from .scoring import LabelScorer, class_log_scores

CALIBRATIONS = ("none", "contextual", "dc-pmi", "batch")
NORMALIZATIONS = ("none", "token", "char")
CONTENT_FREE_INPUTS = ("N/A", "", "[MASK]")


def check_calibration(name: str) -> None:
    if name not in CALIBRATIONS:
        raise ValueError(f"`calibration` must be one of {', '.join(CALIBRATIONS)}, got {name!r}")


def check_calibrations(names) -> None:
    """At least one calibration, each a known one."""
    if not names:
        raise ValueError("`calibrations` is empty; choose from " + ", ".join(CALIBRATIONS))
    for name in names:
        check_calibration(name)


def check_normalization(name: str) -> None:
    if name not in NORMALIZATIONS:
        raise ValueError(f"`normalize` must be one of {', '.join(NORMALIZATIONS)}, got {name!r}")


def normalize_lengths(word_scores, words, label_ids, how: str) -> torch.Tensor:
    """Length-normalised label-word log-probabilities ``[n, words]``.

    ``"token"`` divides each word's summed log-probability by its number of tokens (the
    mean per-token log-probability); ``"char"`` by its number of characters, as in
    lm-evaluation-harness's ``acc_norm``; ``"none"`` leaves them as they are.
    """
    check_normalization(how)
    if how == "none":
        return word_scores
    if how == "token":
        lengths = torch.tensor([len(ids) for ids in label_ids], dtype=word_scores.dtype)
    else:
        lengths = torch.tensor([max(len(w.strip()), 1) for w in words], dtype=word_scores.dtype)
    return word_scores / lengths


def contextual(scores: torch.Tensor, content_free: torch.Tensor) -> torch.Tensor:
    """Contextual calibration (Zhao et al. 2021, *Calibrate Before Use*).

    The class distribution is divided by the mean class distribution the model gives
    content-free inputs ("N/A", "", "[MASK]"), then renormalised: ``q ∝ p / p_cf``.

    Args:
        scores: ``[n, classes]`` class log scores of the inputs.
        content_free: ``[m, classes]`` class log scores of the content-free inputs.

    Returns:
        ``[n, classes]`` calibrated log-probabilities.
    """
    p_cf = torch.softmax(content_free.double(), dim=-1).mean(dim=0)  # [classes]
    log_p = torch.log_softmax(scores.double(), dim=-1)
    return torch.log_softmax(log_p - torch.log(p_cf), dim=-1)


def dc_pmi(word_scores: torch.Tensor, premise_word_scores: torch.Tensor, words, verbalizer):
    """Domain-conditional PMI (Holtzman et al. 2021, *Surface Form Competition*).

    Each label word scores ``log P(word | prompt) - log P(word | domain premise)``, the
    premise being the template's text after the input slot (what states the answer's
    domain, e.g. "\\nSentiment:"); a class sums its words' ratios.

    Args:
        word_scores: ``[n, words]`` label-word log-probabilities after each prompt.
        premise_word_scores: ``[words]`` or ``[1, words]`` after the domain premise alone.

    Returns:
        ``[n, classes]`` log-probabilities, normalised over the classes.
    """
    ratios = word_scores.double() - premise_word_scores.double().reshape(1, -1)
    return torch.log_softmax(class_log_scores(ratios, words, verbalizer), dim=-1)


def batch(scores: torch.Tensor) -> torch.Tensor:
    """Batch calibration (Zhou et al. 2023, *Batch Calibration*).

    The contextual bias is estimated from the unlabelled inputs being classified: their
    mean class log-probability is subtracted from each input's.

    Args:
        scores: ``[n, classes]`` class log scores of all test inputs.

    Returns:
        ``[n, classes]`` calibrated log-probabilities.
    """
    log_p = torch.log_softmax(scores.double(), dim=-1)
    return torch.log_softmax(log_p - log_p.mean(dim=0, keepdim=True), dim=-1)


def premise_template(template) -> Template:
    """The domain premise as a template: what follows the input slot, with no input."""
    return Template("{text}" + template.suffix, separator=template.separator)


@dataclass
class WordScores:
    """Label-word log-probabilities of the inputs and of the references calibration needs.

    Attributes:
        words: the label words, in column order.
        label_ids: their token ids.
        inputs: ``[n, words]`` after each input's prompt.
        content_free: ``[3, words]`` after the content-free prompts, or None.
        premise: ``[1, words]`` after the domain premise alone, or None.
    """

    words: list
    label_ids: list
    inputs: torch.Tensor
    content_free: torch.Tensor | None = None
    premise: torch.Tensor | None = None


def score_words(
    model,
    tokenizer,
    template,
    words,
    texts,
    calibrations=("none",),
    feature_sink=None,
    **scorer_options,
) -> WordScores:
    """One pass over `texts` (and the reference prompts the calibrations need) for `words`.

    Args:
        feature_sink: called as ``feature_sink(prompts, features)`` with every layer's
            hidden state at the prompts' last token from the same pass, for a probe.
        scorer_options: `batch_size`, `max_length`, `progress` for `LabelScorer`.
    """
    for name in calibrations:
        check_calibration(name)
    scorer = LabelScorer(model, tokenizer, template, list(words), **scorer_options)
    if feature_sink is None:
        inputs = scorer.score(list(texts))
    else:
        prompts = scorer.encode_prompts(list(texts))
        inputs, features = scorer.score(list(texts), prompts, return_features=True)
        feature_sink(prompts, features)
    scores = WordScores(list(words), scorer.label_ids, inputs)
    quiet = {**scorer_options, "progress": False}
    if "contextual" in calibrations:
        scorer.progress = False
        scores.content_free = scorer.score(list(CONTENT_FREE_INPUTS))
    if "dc-pmi" in calibrations:
        premise = LabelScorer(model, tokenizer, premise_template(template), list(words), **quiet)
        scores.premise = premise.score([""])
    return scores


def apply_calibrations(
    scores: WordScores, verbalizer, calibrations=("none",), normalize="none"
) -> dict[str, torch.Tensor]:
    """``{calibration: [n, classes] log-probabilities}`` for one verbalizer's words."""
    check_normalization(normalize)
    columns = [scores.words.index(word) for word in verbalizer.all_words()]
    words = verbalizer.all_words()
    label_ids = [scores.label_ids[i] for i in columns]

    def pick(matrix):
        return normalize_lengths(matrix[:, columns], words, label_ids, normalize)

    inputs = pick(scores.inputs)
    classes = class_log_scores(inputs, words, verbalizer)
    out = {}
    for name in calibrations:
        if name == "none":
            out[name] = torch.log_softmax(classes.double(), dim=-1)
        elif name == "batch":
            out[name] = batch(classes)
        elif name == "contextual":
            reference = class_log_scores(pick(scores.content_free), words, verbalizer)
            out[name] = contextual(classes, reference)
        else:
            out[name] = dc_pmi(inputs, pick(scores.premise), words, verbalizer)
    return out


def calibrated_log_probs(
    model,
    tokenizer,
    template,
    verbalizer,
    texts,
    calibrations=("none",),
    normalize="none",
    feature_sink=None,
    **scorer_options,
) -> dict[str, torch.Tensor]:
    """``{calibration: [n, classes] log-probabilities}`` from one pass over `texts`.

    Args:
        model, tokenizer: the (possibly adapted) causal LM.
        template, verbalizer: the prompt and the label words.
        calibrations: names from `CALIBRATIONS`.
        normalize: length normalisation of label-word scores, from `NORMALIZATIONS`.
        feature_sink, scorer_options: as in `score_words`.
    """
    check_normalization(normalize)
    scores = score_words(
        model,
        tokenizer,
        template,
        verbalizer.all_words(),
        texts,
        calibrations,
        feature_sink,
        **scorer_options,
    )
    return apply_calibrations(scores, verbalizer, calibrations, normalize)
