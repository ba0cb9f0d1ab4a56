"""lmclassify: a causal language model as a text classifier, five ways, compared honestly.

The public face is small and imports lazily, so `import lmclassify` and the CLI's help
answer at once; torch and transformers load on first use.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "lmclassify.models",
    "load_dataset": "lmclassify.data",
    "make_splits": "lmclassify.data",
    "Template": "lmclassify.prompts",
    "Verbalizer": "lmclassify.prompts",
    "LabelScorer": "lmclassify.scoring",
    "ZeroShotScoring": "lmclassify.methods",
    "ZeroShotGenerate": "lmclassify.methods",
    "Probe": "lmclassify.methods",
    "LoraHead": "lmclassify.methods",
    "LoraScoring": "lmclassify.methods",
    "TrainingConfig": "lmclassify.training",
    "CompareConfig": "lmclassify.plan",
    "run_compare": "lmclassify.compare",
    "classification_metrics": "lmclassify.metrics",
    "LmclassifyWarning": "lmclassify.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lmclassify' has no attribute {name!r}")
