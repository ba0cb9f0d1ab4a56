"""The training loop shared by the LoRA methods: batches, optimiser, checkpoints, resume.

AdamW with linear warm-up and decay, gradient accumulation and clipping, length-grouped
batches, development-split evaluation with the best state kept, early stopping, and
checkpoints from which an interrupted run continues to the same result as an
uninterrupted one. What a batch's loss is, and what "better" means on the dev split, the
methods decide; this module only drives.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "checkpoint.pt"


def _help(text: str, default, **kwargs):
    return field(default=default, metadata={"help": text}, **kwargs)


@dataclass(frozen=True)
class TrainingConfig:
    """How the LoRA methods train; defaults suit the embedded default on 2 CPU cores."""

    epochs: int = _help("passes over the training split", 1)
    batch_size: int = _help("examples per forward pass", 8)
    gradient_accumulation_steps: int = _help("forward passes per optimiser step", 2)
    learning_rate: float = _help("peak learning rate of the adapters", 5e-4)
    head_learning_rate: float = _help("peak learning rate of a classification head", 2e-3)
    weight_decay: float = _help("AdamW weight decay", 0.0)
    warmup_ratio: float = _help("share of steps with a linear warm-up", 0.06)
    max_grad_norm: float = _help("gradient clipping norm", 1.0)
    max_length: int = _help("longest prompt in tokens while training", 256)
    eval_steps: int | None = _help("evaluate on dev every N steps (also after each epoch)", None)
    patience: int = _help("evaluations without improvement before stopping early", 2)
    checkpoint_steps: int = _help("save a checkpoint every N optimiser steps", 50)
    r: int = _help("LoRA rank", 8)
    lora_alpha: int = _help("LoRA scaling numerator", 16)
    lora_dropout: float = _help("dropout on the LoRA input (costs a third more time on CPU)", 0.0)
    target_modules: str = _help("'all-linear' or comma-separated module names", "all-linear")

    def __post_init__(self) -> None:
        positive = (
            "epochs",
            "batch_size",
            "gradient_accumulation_steps",
            "max_length",
            "patience",
            "checkpoint_steps",
            "r",
            "lora_alpha",
        )
        for name in positive:
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(
                    f"`{name}` must be a positive integer, got {getattr(self, name)!r}"
                )
        for name in ("learning_rate", "head_learning_rate"):
            if not getattr(self, name) > 0:
                raise ValueError(f"`{name}` must be positive, got {getattr(self, name)!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"`warmup_ratio` must be in [0, 1), got {self.warmup_ratio!r}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"`lora_dropout` must be in [0, 1), got {self.lora_dropout!r}")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ValueError(f"`eval_steps` must be a positive integer, got {self.eval_steps!r}")

    def peft_target_modules(self):
        if self.target_modules == "all-linear":
            return "all-linear"
        return [name.strip() for name in self.target_modules.split(",") if name.strip()]

    def to_json(self) -> dict:
        return asdict(self)


def length_grouped_batches(lengths, batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of similar lengths: shuffle, sort within windows of 50 batches,
    cut into batches, shuffle the batches. Fixed by `seed`."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    window = batch_size * 50
    batches = []
    for start in range(0, len(order), window):
        group = sorted(order[start : start + window], key=lambda i: (lengths[i], i))
        batches += [
            list(map(int, group[k : k + batch_size])) for k in range(0, len(group), batch_size)
        ]
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class Evaluation:
    """A dev-split evaluation: higher `score` is better, `loss` breaks ties."""

    score: float
    loss: float

    def better_than(self, other: Evaluation | None) -> bool:
        if other is None:
            return True
        return (self.score, -self.loss) > (other.score, -other.loss)


@dataclass
class TrainState:
    """Everything a checkpoint holds beyond module and optimiser weights."""

    step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    best: dict | None = None
    best_eval: dict | None = None
    bad_evals: int = 0
    stopped_early: bool = False
    history: list = field(default_factory=list)


class Trainer:
    """Drives training of `module`'s trainable parameters.

    Args:
        module: holds every trainable parameter (adapters and any head).
        loss_fn: ``loss_fn(indices) -> scalar loss`` for a batch of training examples.
        evaluate_fn: ``evaluate_fn() -> Evaluation`` on the dev split, or None.
        lengths: token length of each training example, for length-grouped batches.
        config: a `TrainingConfig`.
        seed: fixes batch order and dropout.
        checkpoint_dir: where checkpoints go; None saves none.
        head_parameters: names of parameters that use `head_learning_rate`.
    """

    def __init__(
        self,
        module,
        loss_fn: Callable,
        evaluate_fn: Callable | None,
        lengths,
        config: TrainingConfig,
        seed: int = 0,
        checkpoint_dir=None,
        head_parameters=(),
        progress: bool = True,
    ):
        self.module = module
        self.loss_fn = loss_fn
        self.evaluate_fn = evaluate_fn
        self.lengths = list(lengths)
        self.config = config
        self.seed = seed
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.head_parameters = set(head_parameters)
        self.progress = progress

    def train(self, resume: bool = False, max_steps: int | None = None) -> TrainState:
        """Train to the end (or to `max_steps` optimiser steps, for an interruption), keep
        the best dev state in `module`, and return the state with its history."""
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=not torch.cuda.is_available())
        optimizer, scheduler = self._optimizer_and_schedule()
        state = self._load_checkpoint(optimizer, scheduler) if resume else None
        if state is None:
            state = TrainState()
            torch.manual_seed(self.seed)  # dropout draws; a resumed run restores them instead
        self.module.train()
        finished = self._run_epochs(accelerator, optimizer, scheduler, state, max_steps)
        if finished:
            self._finish(state)
        return state

    def _run_epochs(self, accelerator, optimizer, scheduler, state, max_steps) -> bool:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.total_steps,
            initial=state.step,
            desc="training",
            unit="step",
            disable=not self.progress,
        )
        try:
            while state.epoch < self.config.epochs and not state.stopped_early:
                steps = self._epoch_steps(state.epoch)
                while state.step_in_epoch < len(steps):
                    if max_steps is not None and state.step >= max_steps:
                        return False
                    loss = self._optimizer_step(
                        accelerator, optimizer, scheduler, steps[state.step_in_epoch]
                    )
                    state.step += 1
                    state.step_in_epoch += 1
                    state.history.append({"step": state.step, "loss": loss})
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}")
                    self._maybe_evaluate(state, end_of_epoch=False)
                    if state.stopped_early:
                        break
                    if state.step % self.config.checkpoint_steps == 0:
                        self._save_checkpoint(optimizer, scheduler, state)
                if not state.stopped_early:
                    self._maybe_evaluate(state, end_of_epoch=True)
                state.epoch += 1
                state.step_in_epoch = 0
                self._save_checkpoint(optimizer, scheduler, state)
        finally:
            bar.close()
        return True

    @property
    def steps_per_epoch(self) -> int:
        batches = math.ceil(len(self.lengths) / self.config.batch_size)
        return math.ceil(batches / self.config.gradient_accumulation_steps)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.config.epochs

    def _epoch_steps(self, epoch: int) -> list[list[list[int]]]:
        batches = length_grouped_batches(
            self.lengths, self.config.batch_size, self.seed * 1000 + epoch
        )
        accumulate = self.config.gradient_accumulation_steps
        return [batches[i : i + accumulate] for i in range(0, len(batches), accumulate)]

    def _optimizer_step(self, accelerator, optimizer, scheduler, step_batches) -> float:
        n_examples = sum(len(batch) for batch in step_batches)
        total = 0.0
        for batch in step_batches:
            # Each batch weighs by its examples, so the step's loss is the example mean.
            loss = self.loss_fn(batch) * (len(batch) / n_examples)
            accelerator.backward(loss)
            total += float(loss.detach())
        accelerator.clip_grad_norm_(self._trainable().values(), self.config.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        return total

    def _maybe_evaluate(self, state: TrainState, end_of_epoch: bool) -> None:
        every = self.config.eval_steps
        due = end_of_epoch or (every is not None and state.step % every == 0)
        if self.evaluate_fn is None or not due:
            return
        self.module.eval()
        with torch.no_grad():
            evaluation = self.evaluate_fn()
        self.module.train()
        best = Evaluation(**state.best_eval) if state.best_eval else None
        state.history.append(
            {"step": state.step, "dev_score": evaluation.score, "dev_loss": evaluation.loss}
        )
        logger.info(
            "step %d: dev score %.4f, dev loss %.4f", state.step, evaluation.score, evaluation.loss
        )
        if evaluation.better_than(best):
            state.best = {k: v.detach().clone() for k, v in self._trainable().items()}
            state.best_eval = asdict(evaluation)
            state.bad_evals = 0
        else:
            state.bad_evals += 1
            state.stopped_early = state.bad_evals >= self.config.patience
            if state.stopped_early:
                logger.info("stopping early: no dev improvement in %d evaluations", state.bad_evals)

    def _finish(self, state: TrainState) -> None:
        if state.best is not None:
            self._load_trainable(state.best)
        self.module.eval()

    def _trainable(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.module.named_parameters() if p.requires_grad}

    def _load_trainable(self, tensors: dict) -> None:
        with torch.no_grad():
            for name, parameter in self._trainable().items():
                parameter.copy_(tensors[name])

    def _optimizer_and_schedule(self):
        groups = [
            {
                "params": [
                    p for n, p in self._trainable().items() if n not in self.head_parameters
                ],
                "lr": self.config.learning_rate,
            },
            {
                "params": [p for n, p in self._trainable().items() if n in self.head_parameters],
                "lr": self.config.head_learning_rate,
            },
        ]
        groups = [group for group in groups if group["params"]]
        optimizer = torch.optim.AdamW(groups, weight_decay=self.config.weight_decay)
        warmup = int(self.config.warmup_ratio * self.total_steps)
        total = self.total_steps

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

    def _save_checkpoint(self, optimizer, scheduler, state: TrainState) -> None:
        if self.checkpoint_dir is None:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        payload = {
            "trainable": {k: v.detach().clone() for k, v in self._trainable().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "state": asdict(state),
            "rng": torch.get_rng_state(),
        }
        path = self.checkpoint_dir / CHECKPOINT_FILE
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        torch.save(payload, staging)
        staging.replace(path)

    def _load_checkpoint(self, optimizer, scheduler) -> TrainState | None:
        path = self.checkpoint_dir / CHECKPOINT_FILE if self.checkpoint_dir else None
        if path is None or not path.is_file():
            logger.info("no checkpoint to resume from; starting afresh")
            return None
        payload = torch.load(path, weights_only=True)
        self._load_trainable(payload["trainable"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng"])
        state = TrainState(**payload["state"])
        logger.info("resuming at step %d (epoch %d)", state.step, state.epoch)
        return state
