"""The two LoRA methods: adapters with a classification head, and adapters trained to score.

`lora-head` puts a linear head on the last real token's final hidden state; `lora-scoring`
trains the adapters with cross-entropy over the classes' label-word scores from the
scoring engine and predicts by label scoring. Both adapt a private copy of the model, so
the shared model stays untouched, and both keep the token embeddings and the LM head
frozen. The loop itself is `training.py`'s.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import torch

from ..scoring import (
    LabelLayout,
    class_log_scores,
    encode_label_words,
    encode_prompts,
    label_log_probs,
    unwrap_causal_lm,
)
from ..training import Evaluation, Trainer, TrainingConfig
from .base import LabelScoring, Method

logger = logging.getLogger(__name__)

HEAD_FILE = "head.safetensors"


def weight_sharing_copy(model):
    """A module tree of its own for peft to adapt, over the same weight tensors as `model`.

    peft replaces linear layers in place, so each LoRA method needs its own modules; the
    base weights stay frozen and are never written, so they need no copy. Each parameter
    becomes a new `Parameter` over the same storage (freezing the copy leaves the original's
    `requires_grad` alone; tied weights stay tied). This saves a whole model of memory per
    method: about 1 GB on the embedded default.
    """
    causal_lm = unwrap_causal_lm(model)
    shared = {
        id(p): torch.nn.Parameter(p.data, requires_grad=p.requires_grad)
        for p in causal_lm.parameters()
    }
    return copy.deepcopy(causal_lm, memo=shared)


class LoraMethod(Method):
    """Shared by the LoRA methods: the adapted copy, training, prediction and saving.

    Args:
        model, tokenizer, template, verbalizer, classes: as in `Method`.
        training: a `TrainingConfig`.
        seed: fixes adapter and head initialisation, data order and dropout.
        batch_size: examples per forward pass when predicting.
        max_length: longest prompt in tokens when predicting.
        checkpoint_dir: where training checkpoints go (None: no checkpoints).
        resume: continue from the checkpoint in `checkpoint_dir`.
        max_steps: stop after this many optimiser steps (an interruption, for resuming).
        progress: show progress bars.
    """

    trains = True

    def __init__(
        self,
        model,
        tokenizer,
        template,
        verbalizer,
        classes,
        *,
        training: TrainingConfig | None = None,
        seed=0,
        batch_size=16,
        max_length=512,
        checkpoint_dir=None,
        resume=False,
        max_steps=None,
        progress=True,
    ):
        super().__init__(model, tokenizer, template, verbalizer, classes)
        self.training = training or TrainingConfig()
        self.seed = seed
        self.batch_size = batch_size
        self.max_length = max_length
        self.checkpoint_dir = checkpoint_dir
        self.resume = resume
        self.max_steps = max_steps
        self.progress = progress

    # ---------------------------------------------------------------- building

    def _build(self) -> None:
        """A LoRA-adapted private copy of the model (and the method's extra modules)."""
        from peft import LoraConfig, get_peft_model

        torch.manual_seed(self.seed)
        base = weight_sharing_copy(self.model)
        config = LoraConfig(
            r=self.training.r,
            lora_alpha=self.training.lora_alpha,
            lora_dropout=self.training.lora_dropout,
            target_modules=self.training.peft_target_modules(),
            bias="none",
            task_type="CAUSAL_LM",
        )
        self.peft_model_ = get_peft_model(base, config)
        self.modules_ = torch.nn.ModuleDict({"model": self.peft_model_, **self._extra_modules()})

    def _extra_modules(self) -> dict:
        return {}

    # ---------------------------------------------------------------- training

    def fit(self, texts, labels, dev_texts=None, dev_labels=None) -> LoraMethod:
        self._check_fit_inputs(texts, labels)
        self._build()
        prompts = self._prompts(texts, self.training.max_length)
        targets = torch.tensor([int(label) for label in labels])
        dev = None
        if dev_texts is not None and len(dev_texts):
            dev = (self._prompts(dev_texts, self.max_length), np.asarray(dev_labels))

        def loss_fn(indices):
            logits = self._batch_logits([prompts[i] for i in indices])
            return torch.nn.functional.cross_entropy(logits, targets[indices].to(logits.device))

        trainer = Trainer(
            self.modules_,
            loss_fn,
            (lambda: self._evaluate(*dev)) if dev else None,
            [len(p) for p in prompts],
            self.training,
            seed=self.seed,
            checkpoint_dir=self.checkpoint_dir,
            head_parameters=[
                n for n, _ in self.modules_.named_parameters() if not n.startswith("model.")
            ],
            progress=self.progress,
        )
        self.train_state_ = trainer.train(resume=self.resume, max_steps=self.max_steps)
        return self

    def _evaluate(self, prompts, labels) -> Evaluation:
        log_proba = torch.log_softmax(self._logits_for(prompts).double(), dim=-1)
        loss = -log_proba[torch.arange(len(labels)), torch.as_tensor(labels)].mean()
        accuracy = float((log_proba.argmax(dim=-1).numpy() == labels).mean())
        return Evaluation(score=accuracy, loss=float(loss))

    # ---------------------------------------------------------------- prediction

    def _prompts(self, texts, max_length) -> list[list[int]]:
        return encode_prompts(self.tokenizer, self.template, list(texts), max_length)

    def _batch_logits(self, prompts: list[list[int]]) -> torch.Tensor:
        """``[batch, classes]`` class logits; differentiable."""
        raise NotImplementedError

    @torch.no_grad()
    def _logits_for(self, prompts: list[list[int]]) -> torch.Tensor:
        from tqdm.auto import tqdm

        self.modules_.eval()
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        logits = torch.empty(len(prompts), len(self.classes))
        bar = tqdm(
            total=len(prompts),
            desc=self.name,
            unit="ex",
            disable=not self.progress or len(prompts) < 64,
        )
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            logits[chunk] = self._batch_logits([prompts[i] for i in chunk]).float().cpu()
            bar.update(len(chunk))
        bar.close()
        return logits

    def _check_fitted(self) -> None:
        if not hasattr(self, "modules_"):
            raise ValueError(f"`{self.name}` must be fitted or loaded before predicting")

    def predict_proba(self, texts) -> np.ndarray:
        self._check_fitted()
        logits = self._logits_for(self._prompts(texts, self.max_length))
        return torch.softmax(logits.double(), dim=-1).numpy()

    # ---------------------------------------------------------------- saving

    def fit_summary(self) -> dict:
        state = getattr(self, "train_state_", None)
        if state is None:
            return {}
        return {
            "steps": state.step,
            "best_dev": state.best_eval,
            "stopped_early": state.stopped_early,
        }

    def config(self) -> dict:
        config = super().config()
        config.update(training=self.training.to_json(), seed=self.seed, **self.fit_summary())
        return config

    def save(self, directory) -> None:
        """Adapters in peft's own format (`PeftModel.from_pretrained` reads them), the
        method's settings beside them, and any head as safetensors."""
        super().save(directory)
        self.peft_model_.save_pretrained(directory)

    def _load_state(self, directory: Path, config: dict) -> None:
        from peft import PeftModel

        self.training = TrainingConfig(**config["training"])
        self.seed = config["seed"]
        base = weight_sharing_copy(self.model)
        self.peft_model_ = PeftModel.from_pretrained(base, directory)
        self.modules_ = torch.nn.ModuleDict({"model": self.peft_model_, **self._extra_modules()})
        self.modules_.eval()


class LoraHead(LoraMethod):
    """LoRA adapters plus a linear head on the last real token's final hidden state."""

    name = "lora-head"

    def _extra_modules(self) -> dict:
        causal_lm = unwrap_causal_lm(self.model)
        hidden = causal_lm.get_output_embeddings().weight.shape[1]
        torch.manual_seed(self.seed + 1)
        weight = causal_lm.get_output_embeddings().weight
        head = torch.nn.Linear(hidden, len(self.classes), dtype=weight.dtype)
        return {"head": head.to(weight.device)}

    def _batch_logits(self, prompts):
        decoder = self.peft_model_.get_base_model().get_decoder()
        device = self.modules_["head"].weight.device
        lengths = torch.tensor([len(p) for p in prompts])
        width = int(lengths.max())
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([p + [pad] * (width - len(p)) for p in prompts])
        mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        hidden = decoder(
            input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=False
        ).last_hidden_state  # [B, T, H]
        last = hidden[torch.arange(len(prompts)), (lengths - 1).to(device)]  # [B, H]
        return self.modules_["head"](last)  # [B, classes]

    def save(self, directory) -> None:
        from safetensors.torch import save_file

        super().save(directory)
        head = self.modules_["head"]
        save_file(
            {"weight": head.weight.detach().contiguous(), "bias": head.bias.detach().contiguous()},
            Path(directory) / HEAD_FILE,
        )

    def _load_state(self, directory: Path, config: dict) -> None:
        from safetensors.torch import load_file

        super()._load_state(directory, config)
        device = self.modules_["head"].weight.device
        self.modules_["head"].load_state_dict(
            load_file(Path(directory) / HEAD_FILE, device=str(device))
        )


class LoraScoring(LabelScoring, LoraMethod):
    """LoRA adapters trained with cross-entropy over the classes' label-word scores.

    The class logits are the log of each class's summed label-word probability after the
    prompt (softmax over classes, not over the vocabulary); prediction is label scoring
    with the adapted model, the same template and the same verbalizer.
    """

    name = "lora-scoring"

    def __init__(self, *args, calibration="none", normalize="none", **kwargs):
        super().__init__(*args, **kwargs)
        self.calibration = calibration
        self.normalize = normalize

    def _scoring_model(self):
        """The adapted model, for prediction: calibration and length normalisation apply
        here only, not in training."""
        self._check_fitted()
        self.modules_.eval()
        return self.peft_model_

    def _label_layout(self) -> LabelLayout:
        if not hasattr(self, "layout_"):
            self.words_ = self.verbalizer.all_words()
            label_ids = encode_label_words(self.tokenizer, self.words_, self.template.separator)
            self.layout_ = LabelLayout.build(label_ids)
        return self.layout_

    def _prompts(self, texts, max_length):
        return super()._prompts(texts, max_length - self._label_layout().n_packed)

    def _batch_logits(self, prompts):
        word_scores = label_log_probs(
            self.peft_model_,
            prompts,
            self._label_layout(),
            pad_id=self.tokenizer.pad_token_id,
            padding_side=self.tokenizer.padding_side,
        )
        return class_log_scores(word_scores, self.words_, self.verbalizer)
