"""Checks on the splits before anything trains: leaks, class balance, truncation.

Exact leaks are texts equal after normalisation; near leaks are texts equal once
punctuation, spacing and case are ignored, or whose character trigrams overlap by at
least `NEAR_JACCARD`. Splitting the data is `data.py`'s job; this module only looks.
"""

from __future__ import annotations

import logging
import warnings
from collections import defaultdict

from .data import find_leaks, normalize_text
from .errors import LmclassifyWarning

logger = logging.getLogger(__name__)

NEAR_JACCARD = 0.7
_ANCHOR = 6  # candidate pairs share at least one character 6-gram
_EXAMPLES = 5


def _skeleton(text: str) -> str:
    return "".join(ch for ch in normalize_text(text).lower() if ch.isalnum())


def _grams(text: str, n: int) -> set[str]:
    return {text[i : i + n] for i in range(max(len(text) - n + 1, 1))}


def _jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def near_duplicates(train_texts, test_texts, exclude=()) -> list[tuple[int, int, float]]:
    """``(train i, test j, similarity)`` for near-duplicate pairs not in `exclude`."""
    exclude = set(exclude)
    skeletons = [_skeleton(t) for t in train_texts]
    anchors = defaultdict(set)
    for i, skeleton in enumerate(skeletons):
        for gram in _grams(skeleton, _ANCHOR):
            anchors[gram].add(i)
    trigrams, near = {}, []
    for j, text in enumerate(test_texts):
        skeleton = _skeleton(text)
        candidates = set().union(*(anchors.get(g, ()) for g in _grams(skeleton, _ANCHOR)))
        for i in sorted(candidates - {i for i, jj in exclude if jj == j}):
            if i not in trigrams:
                trigrams[i] = _grams(skeletons[i], 3)
            similarity = (
                1.0 if skeletons[i] == skeleton else _jaccard(trigrams[i], _grams(skeleton, 3))
            )
            if similarity >= NEAR_JACCARD:
                near.append((i, j, round(similarity, 3)))
    return near


def data_checks(splits, tokenizer=None, template=None, max_length=None) -> dict:
    """Class balance of each split, train/test leaks and truncated texts, as one record.

    Warns (`LmclassifyWarning`) when test texts also occur in train, and logs a warning for
    near duplicates.
    """
    exact = find_leaks(splits.train, splits.test)
    near = near_duplicates(splits.train.texts, splits.test.texts, exclude=exact)
    checks = {
        "splits": splits.summary(),
        "exact_leaks": len(exact),
        "near_leaks": len(near),
        "leak_examples": [
            {"train": splits.train.texts[i], "test": splits.test.texts[j], "kind": kind}
            for kind, pairs in (("exact", exact), ("near", near))
            for i, j, *_ in pairs[:_EXAMPLES]
        ],
    }
    if exact:
        warnings.warn(
            f"test leaks into train: {len(exact)} test texts also occur in train; "
            "test results will look better than they are",
            LmclassifyWarning,
            stacklevel=2,
        )
    if near:
        logger.warning(
            "%d test texts nearly duplicate a training text (punctuation, spacing "
            "or a few characters apart)",
            len(near),
        )
    if tokenizer is not None:
        checks["max_length"] = max_length
        checks["truncated"] = {
            name: sum(
                len(tokenizer(template.render(t))["input_ids"]) > max_length for t in split.texts
            )
            for name, split in (("train", splits.train), ("dev", splits.dev), ("test", splits.test))
        }
    logger.info(
        "data checks: %d exact and %d near leaks", checks["exact_leaks"], checks["near_leaks"]
    )
    return checks
