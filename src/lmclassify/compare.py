"""Running a plan: every method on the same splits, into one run directory.

The run directory is written to a hidden staging folder and renamed into place at the
end, so a half-finished run never looks finished; an interrupted run keeps its finished
methods and checkpoints there for `resume`. Planning is `plan.py`'s job, rendering the
report `html_report.py`'s; the methods and the metrics are their own modules'.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path

from . import __version__
from .calibration import CALIBRATIONS
from .checks import data_checks
from .features import FeatureStore
from .files import replace_directory
from .metrics import classification_metrics, json_safe
from .plan import CompareConfig, Plan, plan_run, staging_dir
from .stats import bootstrap_ci
from .summary import comparisons, seed_summary
from .verbalizers import spread, verbalizer_study

logger = logging.getLogger(__name__)

SCHEMA = 1


def run_compare(config: CompareConfig) -> dict:
    """Run every method of `config` and write the run directory; returns `results.json`.

    The run is built in a hidden staging folder beside `out` and renamed into place when
    finished. Finished methods and training checkpoints are kept there if the run is
    interrupted, and `resume=True` continues from them.
    """
    from .models import load_model

    plan = plan_run(config)
    staging = _open_staging(plan)
    try:
        loaded = load_model(plan.config.model)
        checks = data_checks(plan.splits, loaded.tokenizer, plan.template, plan.config.max_length)
        results, predictions = _run_methods(plan, loaded, staging)
        document = _results_document(plan, loaded, results)
        document.update(
            json_safe(
                {
                    "comparisons": comparisons(
                        results, predictions, plan.splits.test.classes, plan.config.n_resamples
                    ),
                    "seed_summary": seed_summary(results),
                    "data_checks": checks,
                }
            )
        )
        if plan.study:
            study = json_safe(_run_study(plan, loaded))
            document.update(verbalizer_study=study, verbalizer_spread=spread(study))
        _write_run(staging, plan, loaded, document, predictions)
        _move_into_place(staging, plan.out)
    except BaseException:
        _keep_if_resumable(staging)
        raise
    logger.info("run written to %s", plan.out)
    return document


def _open_staging(plan: Plan) -> Path:
    staging = staging_dir(plan.out)
    options = json.dumps(_repeatable_options(plan.config), sort_keys=True)
    if plan.config.resume:
        previous = (staging / "options.json").read_text(encoding="utf-8")
        if previous != options:
            raise ValueError(
                f"`resume`: the interrupted run in {str(staging)!r} used other options; "
                "rerun it with the same options or start afresh without --resume"
            )
        logger.info("resuming the interrupted run in %s", staging)
        return staging
    if staging.exists():
        logger.info("discarding an earlier interrupted run in %s", staging)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    (staging / "options.json").write_text(options, encoding="utf-8")
    return staging


def _repeatable_options(config: CompareConfig) -> dict:
    """The options that decide the results (not where they go or how they are shown)."""
    options = asdict(config)
    for key in ("out", "overwrite", "resume", "progress"):
        options.pop(key)
    return options


def _keep_if_resumable(staging: Path) -> None:
    if (staging / "methods").is_dir() or (staging / "checkpoints").is_dir():
        logger.warning("interrupted; the finished part is kept in %s: rerun with --resume", staging)
    else:
        shutil.rmtree(staging, ignore_errors=True)


def _run_methods(plan: Plan, loaded, staging: Path) -> tuple[list[dict], list[dict]]:
    import torch

    store = FeatureStore(loaded.source, plan.template, plan.config.max_length)
    results, predictions = [], []
    for name, seed in _units(plan):
        key = name if seed == plan.config.run_seeds[0] else f"{name}-seed{seed}"
        done = staging / "methods" / key
        if (done / "result.json").is_file():
            logger.info("method %s (seed %d): finished before the interruption", name, seed)
        else:
            logger.info("method %s (seed %d)", name, seed)
            torch.manual_seed(seed)
            splits = plan.splits_for(seed)
            method = build_method(name, plan, loaded, store, staging, seed)
            method_results, rows = evaluate_method(method, plan, splits, seed)
            method.save(staging / "models" / key)
            _save_method_outcome(done, method_results, rows)
        method_results, rows = _load_method_outcome(done)
        results.extend(method_results)
        predictions.extend(rows)
    shutil.rmtree(staging / "methods", ignore_errors=True)
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    return results, predictions


def _units(plan: Plan) -> list[tuple[str, int]]:
    """(method, seed) pairs to run: every method once; trained ones again for each further
    seed (with `resplit`, every method again, on that seed's split)."""
    from .methods import METHODS

    seeds = plan.config.run_seeds
    return [
        (name, seed)
        for seed in seeds
        for name in plan.methods
        if seed == seeds[0] or METHODS[name].trains or plan.config.resplit
    ]


def _run_study(plan: Plan, loaded) -> list[dict]:
    """Zero-shot scoring of the test split with every study verbalizer and calibration."""
    logger.info("verbalizer study: %d verbalizers", len(plan.study))
    test, config = plan.splits.test, plan.config
    return verbalizer_study(
        loaded.model,
        loaded.tokenizer,
        plan.zero_shot_template,
        plan.study,
        test.texts,
        test.labels,
        test.classes,
        calibrations=CALIBRATIONS,
        normalize=config.normalize,
        batch_size=config.batch_size,
        max_length=config.max_length,
        progress=config.progress,
    )


def _save_method_outcome(folder: Path, result: list[dict], rows: list[dict]) -> None:
    """A finished method's result and predictions, written last so they mark it done."""
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    _write_jsonl(staging / "predictions.jsonl", rows)
    _write_json(staging / "result.json", json_safe(result))
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def _load_method_outcome(folder: Path) -> tuple[list[dict], list[dict]]:
    result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    lines = (folder / "predictions.jsonl").read_text(encoding="utf-8").splitlines()
    return result, [json.loads(line) for line in lines]


def build_method(
    name: str, plan: Plan, loaded, store=None, staging: Path | None = None, seed: int | None = None
):
    """A method object with the run's model, prompt strings and options."""
    from .methods import method_class

    config = plan.config
    seed = config.run_seeds[0] if seed is None else seed
    options = {
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "progress": config.progress,
    }
    template = plan.template
    if name == "zero-shot-generate":
        options["max_new_tokens"] = config.max_new_tokens
        template = plan.zero_shot_template
    if name == "zero-shot-scoring":
        template = plan.zero_shot_template
        options.update(
            normalize=config.normalize, feature_store=store if template == plan.template else None
        )
    if name == "lora-scoring":
        options["normalize"] = config.normalize
    if name == "probe":
        layer = config.probe_layer if config.probe_layer == "auto" else int(config.probe_layer)
        options.update(layer=layer, pooling=config.probe_pooling, feature_store=store, seed=seed)
    if name in ("lora-head", "lora-scoring"):
        checkpoints = staging / "checkpoints" / f"{name}-seed{seed}" if staging else None
        options.update(
            training=config.training, seed=seed, checkpoint_dir=checkpoints, resume=config.resume
        )
    classes = plan.splits.test.classes
    cls = method_class(name)
    return cls(loaded.model, loaded.tokenizer, template, plan.verbalizer, classes, **options)


def evaluate_method(method, plan: Plan, splits=None, seed: int | None = None):
    """Fit on train (with dev), predict test, and measure; one result per calibration for
    the label-scoring methods, one otherwise. Returns the results and their rows."""
    splits = splits or plan.splits
    seed = plan.config.run_seeds[0] if seed is None else seed
    train, dev, test = splits.train, splits.dev, splits.test
    started = time.perf_counter()
    method.fit(train.texts, train.labels, dev.texts, dev.labels)
    fit_seconds = time.perf_counter() - started

    started = time.perf_counter()
    if hasattr(method, "calibrated_probas"):
        probas = method.calibrated_probas(test.texts, plan.config.calibrations)
    else:
        probas = {"none": method.predict_proba(test.texts)}
    predict_seconds = time.perf_counter() - started

    results, rows = [], []
    for calibration, proba in probas.items():
        preds = getattr(method, "pred_ids_", None)
        preds = proba.argmax(axis=1) if preds is None else preds
        result = {
            "method": method.name,
            "verbalizer": plan.verbalizer.to_json(),
            "calibration": calibration,
            "seed": seed,
            "metrics": classification_metrics(test.labels, preds, proba, test.classes),
            "intervals": bootstrap_ci(
                test.labels, preds, proba, test.classes, n_resamples=plan.config.n_resamples, seed=0
            ),
            "seconds": {"fit": round(fit_seconds, 3), "predict": round(predict_seconds, 3)},
        }
        if method.fit_summary():
            result["fit"] = method.fit_summary()
        results.append(result)
        rows += _prediction_rows(method, test, preds, proba, plan, calibration, seed)
    return results, rows


def _prediction_rows(method, test, preds, proba, plan, calibration, seed) -> list[dict]:
    answers = getattr(method, "answers_", None)
    rows = []
    for i, (text, label) in enumerate(zip(test.texts, test.labels)):
        row = {
            "method": method.name,
            "index": i,
            "text": text,
            "label": test.classes[label],
            "pred": test.classes[preds[i]] if preds[i] >= 0 else None,
            "proba": [round(float(p), 6) for p in proba[i]],
            "verbalizer": str(plan.verbalizer),
            "calibration": calibration,
            "seed": seed,
        }
        if answers is not None:
            row["answer"] = answers[i]
        rows.append(row)
    return rows


def _results_document(plan: Plan, loaded, results: list[dict]) -> dict:
    test = plan.splits.test
    return json_safe(
        {
            "schema": SCHEMA,
            "dataset": {
                "name": test.name,
                "classes": test.classes,
                "n_train": len(plan.splits.train),
                "n_dev": len(plan.splits.dev),
                "n_test": len(test),
            },
            "model": {"name": loaded.name, "parameters": loaded.n_parameters},
            "results": results,
        }
    )


def resolved_config(plan: Plan, loaded) -> dict:
    """`config.json`: the options as resolved, the splits, the prompt and the versions."""
    import peft
    import torch
    import transformers

    options = asdict(plan.config)
    options["methods"] = plan.methods
    options["out"] = str(plan.out)
    return {
        "lmclassify": __version__,
        "options": options,
        "model": loaded.describe(),
        "data": {"classes": plan.splits.test.classes, "splits": plan.splits.summary()},
        "template": plan.template.to_json(),
        "verbalizer": plan.verbalizer.to_json(),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
        },
    }


def _write_run(staging: Path, plan: Plan, loaded, document: dict, predictions: list[dict]):
    from .html_report import write_report

    _write_json(staging / "config.json", resolved_config(plan, loaded))
    _write_json(staging / "results.json", document)
    _write_jsonl(staging / "predictions.jsonl", predictions)
    write_report(staging)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _move_into_place(staging: Path, out: Path) -> None:
    """Rename the finished staging folder to `out`, replacing an old run only at the end."""
    (staging / "options.json").unlink()
    replace_directory(staging, out)
