"""What a comparison will run: options, checked and resolved against the data.

`CompareConfig` holds the options (the CLI maps onto it one to one); `plan_run` loads and
splits the data, resolves template, verbalizer, demonstrations and the run directory, and
checks that the model is available, all before any model is loaded, so bad input fails in
seconds. Running the plan is `compare.py`'s job.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from .calibration import check_calibrations, check_normalization
from .data import DEFAULT_DATASET, load_dataset, make_splits
from .features import check_pooling
from .models import DEFAULT_MODEL, check_model_available
from .prompts import Template, Verbalizer, default_template, default_verbalizer, demonstrations
from .training import TrainingConfig
from .verbalizers import default_verbalizers, read_verbalizers

logger = logging.getLogger(__name__)

DEFAULT_SIZES = {"train_size": 2000, "dev_size": 500, "test_size": 1000}


def _help(text: str, default=None, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class CompareConfig:
    """Everything `compare` needs; the CLI maps onto these fields one to one."""

    data: str = _help("built-in dataset name or a CSV / JSONL / Parquet file", DEFAULT_DATASET)
    text_column: str = _help("column holding the text in a data file", "text")
    label_column: str = _help("column holding the label in a data file", "label")
    model: str = _help("built-in model, local folder, .gguf file or cached hub id", DEFAULT_MODEL)
    methods: tuple[str, ...] | None = _help("methods to run; None runs every method")
    template: str | None = _help("prompt with a {text} slot; None picks the data's default")
    separator: str | None = _help("text between prompt and label word; None: template default")
    verbalizer: str | None = _help("'class=word[|word2],class=word'; None picks the default")
    train_size: int | None = _help("training examples; None: 2000 or what the data allows")
    dev_size: int | None = _help("development examples; None: 500 or what the data allows")
    test_size: int | None = _help("test examples; None: 1000 or what the data allows")
    seed: int = _help("fixes splits, initialisation and data order", 0)
    seeds: tuple[int, ...] | None = _help(
        "repeat the trained methods with these seeds (the split stays that of `seed`)"
    )
    resplit: bool = _help("with `seeds`: also draw a new split per seed and rerun all", False)
    n_resamples: int = _help("bootstrap resamples for confidence intervals", 1000)
    batch_size: int = _help("prompts per forward pass", 16)
    max_length: int = _help("longest prompt in tokens; longer texts are cut", 512)
    max_new_tokens: int = _help("longest generated answer for zero-shot-generate", 5)
    calibrations: tuple[str, ...] = _help(
        "calibrations of label scoring, each its own row: none, contextual, dc-pmi, batch",
        ("none",),
    )
    normalize: str = _help("length normalisation of label-word scores: none, token, char", "none")
    shots: int = _help("labelled training examples per class in zero-shot prompts", 0)
    study_verbalizers: str | None = _help(
        "also score many verbalizers zero-shot: 'builtin' or a file of specs", None
    )
    probe_layer: str = _help(
        "probe's hidden-state layer: an index or 'auto' (chosen on dev)", "auto"
    )
    probe_pooling: str = _help("probe's pooling: 'last' token or 'mean'", "last")
    training: TrainingConfig = field(
        default_factory=TrainingConfig, metadata={"help": "how the LoRA methods train"}
    )
    out: str | None = _help("run directory; None: runs/<data>-<time>")
    overwrite: bool = _help("replace an existing run directory", False)
    resume: bool = _help("continue the interrupted run in `out`", False)
    progress: bool = _help("show progress bars", True)

    def __post_init__(self) -> None:
        from .methods import METHODS

        for name in self.methods or ():
            if name not in METHODS:
                raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
        if self.methods is not None and not self.methods:
            raise ValueError("`methods` is empty; choose from " + ", ".join(METHODS))
        for key in ("train_size", "dev_size", "test_size"):
            value = getattr(self, key)
            if value is not None and value < (1 if key == "test_size" else 0):
                raise ValueError(
                    f"`{key}` must be at least {1 if key == 'test_size' else 0}, got {value!r}"
                )
        for key in ("batch_size", "max_length", "max_new_tokens"):
            if getattr(self, key) < 1:
                raise ValueError(f"`{key}` must be a positive integer, got {getattr(self, key)!r}")
        if self.probe_layer != "auto" and not _is_int(self.probe_layer):
            raise ValueError(
                f"`probe_layer` must be 'auto' or an integer, got {self.probe_layer!r}"
            )
        check_pooling(self.probe_pooling)
        check_calibrations(self.calibrations)
        check_normalization(self.normalize)
        if self.shots < 0:
            raise ValueError(f"`shots` must be 0 or more, got {self.shots!r}")
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ValueError(f"`seeds` must be distinct integers, got {self.seeds!r}")
        if self.resplit and not self.seeds:
            raise ValueError("`resplit` needs `seeds`: the seeds to draw splits with")
        if self.n_resamples < 1:
            raise ValueError(f"`n_resamples` must be a positive integer, got {self.n_resamples!r}")

    @property
    def run_seeds(self) -> tuple[int, ...]:
        return self.seeds or (self.seed,)
        if self.resume and not self.out:
            raise ValueError("`resume` needs `out`: the run directory to continue")


def _is_int(value: str) -> bool:
    try:
        int(value)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class Plan:
    """A config with everything resolved against the data, before any model is loaded."""

    config: CompareConfig
    splits: object
    template: Template
    verbalizer: Verbalizer
    methods: list[str]
    out: Path
    zero_shot_template: Template | None = None
    study: list | None = None
    dataset: object = None

    def splits_for(self, seed: int):
        """The run's split, or with `resplit` a split drawn with `seed`."""
        if not self.config.resplit or seed == self.splits.seed:
            return self.splits
        return make_splits(
            self.dataset,
            train_size=self.config.train_size,
            dev_size=self.config.dev_size,
            test_size=self.config.test_size,
            seed=seed,
            balanced=self.config.data == DEFAULT_DATASET,
        )


def plan_run(config: CompareConfig) -> Plan:
    """Load and split the data and check every option, so bad input fails in seconds."""
    from .methods import METHODS

    dataset = load_dataset(
        config.data, text_column=config.text_column, label_column=config.label_column
    )
    config = replace(config, **_split_sizes(config, len(dataset)))
    splits = make_splits(
        dataset,
        train_size=config.train_size,
        dev_size=config.dev_size,
        test_size=config.test_size,
        seed=config.seed,
        balanced=config.data == DEFAULT_DATASET,
    )
    template = _resolve_template(config, dataset)
    verbalizer = (
        Verbalizer.parse(config.verbalizer, dataset.classes)
        if config.verbalizer
        else default_verbalizer(dataset.classes, dataset.name)
    )
    check_model_available(config.model)
    out = _resolve_out(config)
    methods = list(config.methods or METHODS)
    zero_shot_template = template
    if config.shots:
        train = splits.train
        zero_shot_template = template.with_prefix(
            demonstrations(
                train.texts,
                train.labels,
                train.classes,
                template,
                verbalizer,
                config.shots,
                config.seed,
            )
        )
    study = None
    if config.study_verbalizers:
        study = (
            default_verbalizers(dataset.name, dataset.classes)
            if config.study_verbalizers == "builtin"
            else read_verbalizers(config.study_verbalizers, dataset.classes)
        )
    return Plan(
        config, splits, template, verbalizer, methods, out, zero_shot_template, study, dataset
    )


def _split_sizes(config: CompareConfig, available: int) -> dict[str, int]:
    """The sizes asked for, with unset ones at their defaults, scaled to small data."""
    sizes = {key: getattr(config, key) for key in DEFAULT_SIZES}
    unset = [key for key, value in sizes.items() if value is None]
    for key in unset:
        sizes[key] = DEFAULT_SIZES[key]
    if unset and sum(sizes.values()) > available:
        room = available - sum(v for k, v in sizes.items() if k not in unset)
        share = sum(DEFAULT_SIZES[key] for key in unset)
        for key in unset:
            sizes[key] = max(int(room * DEFAULT_SIZES[key] / share), 1 if key == "test_size" else 0)
        logger.info("data has %d examples; using split sizes %s", available, sizes)
    return sizes


def _resolve_template(config: CompareConfig, dataset) -> Template:
    if config.template is None:
        template = default_template(dataset.classes, dataset.name)
        if config.separator is not None:
            template = Template(template.text, separator=config.separator)
        return template
    return Template(config.template, separator=config.separator or "")


def _resolve_out(config: CompareConfig) -> Path:
    if config.out:
        out = Path(config.out)
    else:
        stem = Path(config.data).stem if config.data != DEFAULT_DATASET else config.data
        out = Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    if out.exists() and not config.overwrite:
        raise ValueError(
            f"`out` {str(out)!r} already exists; choose another directory or pass --overwrite"
        )
    if config.resume and not staging_dir(out).is_dir():
        raise ValueError(f"`resume`: there is no interrupted run for {str(out)!r} to continue")
    return out


def staging_dir(out: Path) -> Path:
    """Where a run is written until it is finished; an interrupted run stays here."""
    return out.with_name(f".{out.name}.partial")
