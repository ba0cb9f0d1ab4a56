"""Serving a saved run: load a method from `models/<method>/` and classify a file of texts.

Training and evaluation are `compare.py`'s; this module only reloads and predicts.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

OUTPUT_EXTENSIONS = (".csv", ".jsonl")


def load_run_method(run, method: str, **options):
    """The method `method` of run directory `run`, on its model, ready to predict.

    Raises:
        ValueError: `run` is not a finished run, or it saved no such method.
    """
    from .methods import method_class
    from .models import load_model

    saved = _saved_method_dir(Path(run), method)
    config = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
    loaded = load_model(config["model"]["name"])
    loaded_method = method_class(method).load(saved, loaded.model, loaded.tokenizer)
    for key, value in options.items():
        setattr(loaded_method, key, value)
    return loaded_method


def _saved_method_dir(run: Path, method: str) -> Path:
    if not (run / "config.json").is_file():
        raise ValueError(f"`run` {str(run)!r} is not a finished run directory (no config.json)")
    saved = run / "models" / method
    if not saved.is_dir():
        available = sorted(p.name for p in (run / "models").glob("*") if p.is_dir())
        raise ValueError(
            f"`method` {method!r} was not saved in {str(run)!r}; saved: {', '.join(available)}"
        )
    return saved


def predict_file(run, method: str, input, output, text_column="text", batch_size=16) -> int:
    """Write each input row with its predicted class and class probabilities; returns rows.

    CSV output gains the columns `pred` and `proba_<class>`; JSONL output gains `pred` and
    `proba` (class -> probability). `pred` is empty / null where a generation matched no
    label word. The output file appears only once complete.
    """
    from .data import read_texts

    output = Path(output)
    if output.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise ValueError(f"`output` {str(output)!r} must end in {' or '.join(OUTPUT_EXTENSIONS)}")
    _saved_method_dir(Path(run), method)
    texts, rows = read_texts(str(input), text_column=text_column)
    classifier = load_run_method(run, method, batch_size=batch_size)
    proba = classifier.predict_proba(texts)
    preds = getattr(classifier, "pred_ids_", None)
    preds = proba.argmax(axis=1) if preds is None else preds
    _write_predictions(output, rows, preds, proba, classifier.classes)
    return len(rows)


def _write_predictions(output: Path, rows, preds, proba: np.ndarray, classes) -> None:
    staging = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        if output.suffix.lower() == ".csv":
            _write_csv(staging, rows, preds, proba, classes)
        else:
            _write_jsonl(staging, rows, preds, proba, classes)
        staging.replace(output)
    finally:
        staging.unlink(missing_ok=True)


def _write_csv(path: Path, rows, preds, proba, classes) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    columns += ["pred"] + [f"proba_{name}" for name in classes]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row, pred, probs in zip(rows, preds, proba):
            extra = {f"proba_{name}": f"{p:.6f}" for name, p in zip(classes, probs)}
            writer.writerow({**row, "pred": classes[pred] if pred >= 0 else "", **extra})


def _write_jsonl(path: Path, rows, preds, proba, classes) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row, pred, probs in zip(rows, preds, proba):
            record = {
                **row,
                "pred": classes[pred] if pred >= 0 else None,
                "proba": {name: round(float(p), 6) for name, p in zip(classes, probs)},
            }
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
