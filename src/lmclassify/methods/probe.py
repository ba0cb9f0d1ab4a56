"""The linear probe: logistic regression on a frozen model's hidden states.

Features are one layer's hidden state of the rendered prompt, at its last token (the one
that would predict the label word) or averaged over its tokens, standardised. The layer
(unless fixed) and the regularisation strength are chosen on the dev split. Features come
from `features.py`, shared with zero-shot scoring's forward pass and cached on disk.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..features import FeatureStore, check_pooling, prompt_features
from .base import Method

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "probe.safetensors"
C_GRID = (1e-3, 1e-2, 1e-1, 1.0)


class Probe(Method):
    """Logistic regression on standardised hidden states of the frozen model.

    Args:
        model, tokenizer, template, verbalizer, classes: as in `Method` (the verbalizer is
            not used: the probe never reads label words).
        layer: hidden-state index (0 = embeddings, -1 = last layer), or ``"auto"`` to pick
            the layer with the best dev accuracy.
        pooling: ``"last"`` (the prompt's last token) or ``"mean"``.
        c_grid: inverse regularisation strengths tried on the dev split.
        feature_store: a `FeatureStore` to share and cache features, or None.
        batch_size, max_length, progress: for the feature pass.

    Fitted attributes: `layer_`, `c_`, `mean_`, `scale_`, `coef_` ``[classes, hidden]``,
    `intercept_` ``[classes]`` (a two-class fit is stored as two rows, -w/2 and +w/2).
    """

    name = "probe"
    trains = True

    def __init__(
        self,
        model,
        tokenizer,
        template,
        verbalizer,
        classes,
        *,
        layer="auto",
        pooling="last",
        c_grid=C_GRID,
        feature_store: FeatureStore | None = None,
        batch_size=16,
        max_length=512,
        progress=True,
        seed=0,
    ):
        super().__init__(model, tokenizer, template, verbalizer, classes)
        self.layer = layer
        self.pooling = pooling
        self.c_grid = tuple(c_grid)
        self.feature_store = feature_store
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress
        self.seed = seed

    def fit(self, texts, labels, dev_texts=None, dev_labels=None) -> Probe:
        self._check_fit_inputs(texts, labels)
        check_pooling(self.pooling)
        train = self._features(texts)
        dev = self._features(dev_texts) if dev_texts is not None and len(dev_texts) else None
        layers = self._candidate_layers(train.shape[1])
        y, y_dev = np.asarray(labels), None if dev is None else np.asarray(dev_labels)

        best = None
        for layer in layers:
            for c in self.c_grid:
                score = self._selection_score(train[:, layer], y, dev, y_dev, layer, c)
                if best is None or score > best[0]:
                    best = (score, layer, c)
        _, self.layer_, self.c_ = best
        logger.info("probe: layer %d, C=%g (dev accuracy %.4f)", self.layer_, self.c_, best[0])
        self._fit_final(train[:, self.layer_], y)
        return self

    def _candidate_layers(self, n_layers: int) -> list[int]:
        if self.layer == "auto":
            return list(range(1, n_layers))
        layer = int(self.layer)
        if not -n_layers <= layer < n_layers:
            raise ValueError(
                f"`layer` must be 'auto' or in {-n_layers}..{n_layers - 1}, got {self.layer!r}"
            )
        return [layer % n_layers]

    def _selection_score(self, x, y, dev, y_dev, layer, c) -> float:
        """Dev accuracy (dev log-loss breaking ties); 5-fold CV on train without a dev split."""
        from sklearn.metrics import accuracy_score, log_loss
        from sklearn.model_selection import cross_val_score

        model = self._pipeline(c)
        if dev is None:
            return float(cross_val_score(model, x, y, cv=5).mean())
        model.fit(x, y)
        proba = model.predict_proba(dev[:, layer])
        loss = log_loss(y_dev, proba, labels=list(range(len(self.classes))))
        return accuracy_score(y_dev, proba.argmax(axis=1)) - 1e-6 * loss

    def _pipeline(self, c: float):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(
            StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=self.seed)
        )

    def _fit_final(self, x, y) -> None:
        pipeline = self._pipeline(self.c_).fit(x, y)
        scaler, regression = pipeline[0], pipeline[1]
        self.mean_, self.scale_ = scaler.mean_, scaler.scale_
        coef, intercept = regression.coef_, regression.intercept_
        if coef.shape[0] == 1:  # sklearn's binary form: one row for the second class
            coef = np.vstack([-coef / 2, coef / 2])
            intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
        self.coef_, self.intercept_ = coef, intercept

    def _features(self, texts) -> np.ndarray:
        """``[n, layers + 1, hidden]`` features, from the store when it has them."""
        options = {"batch_size": self.batch_size, "progress": self.progress}
        if self.feature_store is not None:
            features = self.feature_store.get_or_compute(
                self.model, self.tokenizer, list(texts), self.pooling, **options
            )
        else:
            features = prompt_features(
                self.model,
                self.tokenizer,
                self.template,
                list(texts),
                pooling=self.pooling,
                max_length=self.max_length,
                **options,
            )
        return features.double().numpy()

    def predict_proba(self, texts) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise ValueError("`probe` must be fitted or loaded before predicting")
        x = (self._features(texts)[:, self.layer_] - self.mean_) / self.scale_
        logits = x @ self.coef_.T + self.intercept_  # [n, classes]
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)

    def fit_summary(self) -> dict:
        return {"layer": self.layer_, "C": self.c_} if hasattr(self, "layer_") else {}

    def config(self) -> dict:
        config = super().config()
        config.update({"layer": self.layer, "pooling": self.pooling, "c_grid": self.c_grid})
        if hasattr(self, "layer_"):
            config.update({"chosen_layer": self.layer_, "chosen_c": self.c_})
        return config

    def save(self, directory) -> None:
        from safetensors.numpy import save_file

        super().save(directory)
        arrays = {
            "mean": self.mean_,
            "scale": self.scale_,
            "coef": self.coef_,
            "intercept": self.intercept_,
        }
        save_file(
            {k: np.ascontiguousarray(v) for k, v in arrays.items()},
            str(Path(directory) / WEIGHTS_FILE),
        )

    def _load_state(self, directory: Path, config: dict) -> None:
        from safetensors.numpy import load_file

        arrays = load_file(str(directory / WEIGHTS_FILE))
        self.layer, self.pooling = config["layer"], config["pooling"]
        self.layer_, self.c_ = config["chosen_layer"], config["chosen_c"]
        self.mean_, self.scale_ = arrays["mean"], arrays["scale"]
        self.coef_, self.intercept_ = arrays["coef"], arrays["intercept"]
