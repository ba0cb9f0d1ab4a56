"""The interface every classification method shares, and the registry of method names.

A method turns texts into class probabilities. How it uses the model is its own business;
data loading, metrics and reports are left to the callers.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

METHOD_FILE = "method.json"


class Method(ABC):
    """`fit` / `predict_proba` / `predict` / `save` / `load`, in scikit-learn's manner.

    Constructors only store their arguments; `fit` checks them. Fitted state ends in `_`.
    `predict` returns class ids, and -1 where a method gives no answer (an unparseable
    generation), which counts as wrong.
    """

    name: str = ""
    trains: bool = False

    def __init__(self, model, tokenizer, template, verbalizer, classes):
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.verbalizer = verbalizer
        self.classes = list(classes)

    @abstractmethod
    def fit(self, texts, labels, dev_texts=None, dev_labels=None) -> Method:
        """Learn from the training split (zero-shot methods only check their inputs)."""

    @abstractmethod
    def predict_proba(self, texts) -> np.ndarray:
        """``[n, classes]`` probabilities; each row sums to 1."""

    def predict(self, texts) -> np.ndarray:
        return self.predict_proba(texts).argmax(axis=1)

    def fit_summary(self) -> dict:
        """What fitting chose or reached (layer, steps, dev score), for the results."""
        return {}

    def config(self) -> dict:
        """What `save` records beside the weights, enough to rebuild the method."""
        return {
            "method": self.name,
            "classes": self.classes,
            "template": self.template.to_json(),
            "verbalizer": self.verbalizer.to_json() if self.verbalizer else None,
        }

    def save(self, directory) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.config(), ensure_ascii=False, indent=2)
        (directory / METHOD_FILE).write_text(text + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory, model, tokenizer) -> Method:
        """Rebuild a saved method on top of an already loaded model and tokenizer."""
        from ..prompts import Template, Verbalizer

        config = read_method_config(directory)
        template = Template.from_json(config["template"])
        verbalizer = config["verbalizer"] and Verbalizer.from_words(
            config["verbalizer"], config["classes"]
        )
        method = cls(model, tokenizer, template, verbalizer, config["classes"])
        method._load_state(Path(directory), config)
        return method

    def _load_state(self, directory: Path, config: dict) -> None:
        """Read fitted state written by `save`; nothing for methods that do not train."""

    def _check_fit_inputs(self, texts, labels) -> None:
        if len(texts) != len(labels):
            raise ValueError(
                f"`texts` and `labels` differ in length: {len(texts)} vs {len(labels)}"
            )
        bad = [label for label in labels if not 0 <= int(label) < len(self.classes)]
        if bad:
            raise ValueError(
                f"`labels` must be class ids in 0..{len(self.classes) - 1}, got {bad[0]!r}"
            )


class LabelScoring:
    """Mixed into the methods that predict by label scoring (`zero-shot-scoring`,
    `lora-scoring`): every calibration from one pass, and the calibration they were set
    up with in `predict_proba`. Expects `calibration`, `normalize`, `batch_size`,
    `max_length` and `progress` attributes."""

    def _scoring_model(self):
        return self.model

    def _feature_sink(self, texts):
        return None

    def calibrated_probas(self, texts, calibrations) -> dict[str, np.ndarray]:
        """``{calibration: [n, classes] probabilities}`` from one pass over `texts`."""
        from ..calibration import calibrated_log_probs

        texts = list(texts)
        log_probs = calibrated_log_probs(
            self._scoring_model(),
            self.tokenizer,
            self.template,
            self.verbalizer,
            texts,
            calibrations,
            self.normalize,
            feature_sink=self._feature_sink(texts),
            batch_size=self.batch_size,
            max_length=self.max_length,
            progress=self.progress,
        )
        return {name: np.exp(scores.numpy()) for name, scores in log_probs.items()}

    def predict_proba(self, texts) -> np.ndarray:
        return self.calibrated_probas(texts, [self.calibration])[self.calibration]

    def config(self) -> dict:
        return {**super().config(), "calibration": self.calibration, "normalize": self.normalize}

    def _load_state(self, directory: Path, config: dict) -> None:
        super()._load_state(directory, config)
        self.calibration = config.get("calibration", "none")
        self.normalize = config.get("normalize", "none")


def read_method_config(directory) -> dict:
    path = Path(directory) / METHOD_FILE
    if not path.is_file():
        raise ValueError(f"no saved method in {str(directory)!r} (missing {METHOD_FILE})")
    return json.loads(path.read_text(encoding="utf-8"))
