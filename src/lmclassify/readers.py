"""Reading user data files into column names and rows: CSV, TSV, JSONL, JSON, Parquet.

Turning rows into a labelled dataset, and every check on texts and labels, is
`data.py`'s job; this module only parses, with one-line errors for malformed files.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

FILE_EXTENSIONS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_records(path: Path, suffix: str) -> tuple[list[str], list[dict]]:
    """Column names and rows (dicts) of a user file."""
    try:
        if suffix == ".parquet":
            return _read_parquet(path)
        if suffix in (".csv", ".tsv"):
            return _read_delimited(path, delimiter="," if suffix == ".csv" else "\t")
        if suffix == ".jsonl":
            return _read_jsonl(path)
        return _read_json(path)
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"`source` {str(path)!r} is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def _read_delimited(path: Path, delimiter: str) -> tuple[list[str], list[dict]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def _read_jsonl(path: Path) -> tuple[list[str], list[dict]]:
    rows = []
    with path.open(encoding="utf-8-sig") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"`source` {str(path)!r} line {line_number} is not valid JSON ({exc.msg}); "
                    f"each line must be one JSON object"
                ) from None
            if not isinstance(row, dict):
                raise ValueError(
                    f"`source` {str(path)!r} line {line_number} is {row!r}, not a JSON object"
                )
            rows.append(row)
    return _columns_of(rows), rows


def _read_json(path: Path) -> tuple[list[str], list[dict]]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"`source` {str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno})"
        ) from None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"`source` {str(path)!r} must hold a JSON list of objects")
    return _columns_of(rows), rows


def _read_parquet(path: Path) -> tuple[list[str], list[dict]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return list(table.column_names), table.to_pylist()


def _columns_of(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(key for row in rows for key in row))
