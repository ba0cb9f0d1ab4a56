"""Hidden-state features of prompts from a frozen model, and their cache on disk.

A feature is every layer's hidden state of the rendered prompt, at its last token or
averaged over its tokens: ``[n, layers + 1, hidden]``. Features are cached as
safetensors under `cache_dir()/features`, keyed by model, template, pooling, length limit
and the texts themselves, so a second run does not recompute them. What is learned from
them is the probe's business.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import torch

from .models import cache_dir
from .scoring import encode_prompts, unwrap_causal_lm

logger = logging.getLogger(__name__)

POOLINGS = ("last", "mean")


def check_pooling(pooling: str) -> None:
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be one of {', '.join(POOLINGS)}, got {pooling!r}")


@torch.no_grad()
def prompt_features(
    model,
    tokenizer,
    template,
    texts,
    *,
    pooling="last",
    batch_size=16,
    max_length=512,
    progress=True,
) -> torch.Tensor:
    """``[n, layers + 1, hidden]`` hidden states of each prompt (embeddings first).

    Args:
        pooling: ``"last"`` takes the prompt's last token (the one that would predict the
            label word), ``"mean"`` averages over the prompt's tokens.
    """
    from tqdm.auto import tqdm

    check_pooling(pooling)
    prompts = encode_prompts(tokenizer, template, list(texts), max_length)
    decoder = unwrap_causal_lm(model).get_decoder()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    features = None
    bar = tqdm(total=len(prompts), desc="features", unit="ex", disable=not progress)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = _pooled(
            decoder, [prompts[i] for i in chunk], tokenizer.pad_token_id, pooling, device
        )
        if features is None:
            features = torch.empty(len(prompts), *batch.shape[1:])
        features[chunk] = batch.float().cpu()
        bar.update(len(chunk))
    bar.close()
    return features


def _pooled(decoder, prompts, pad_id, pooling, device) -> torch.Tensor:
    lengths = torch.tensor([len(p) for p in prompts])
    width = int(lengths.max())
    input_ids = torch.tensor([p + [pad_id] * (width - len(p)) for p in prompts])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).long()  # [B, T]
    output = decoder(
        input_ids=input_ids.to(device),
        attention_mask=mask.to(device),
        output_hidden_states=True,
        use_cache=False,
    )
    hidden = torch.stack(output.hidden_states, dim=1)  # [B, layers + 1, T, H]
    if pooling == "last":
        index = (lengths - 1).to(device)[:, None, None, None]
        return hidden.gather(2, index.expand(-1, hidden.shape[1], 1, hidden.shape[-1]))[:, :, 0]
    weights = mask.to(device, hidden.dtype)[:, None, :, None]  # [B, 1, T, 1]
    return (hidden * weights).sum(dim=2) / weights.sum(dim=2)  # [B, layers + 1, H]


class FeatureStore:
    """Features on disk, keyed by what determines them.

    Args:
        model_id: identifies the weights (the folder they were loaded from).
        template: the `Template` the prompts were rendered with.
        max_length: prompt length limit in tokens.
        root: cache folder; defaults to `cache_dir() / "features"`.
    """

    def __init__(self, model_id: str, template, max_length: int, root=None):
        self.model_id = model_id
        self.template = template
        self.max_length = max_length
        self.root = Path(root) if root else cache_dir() / "features"

    def path(self, texts, pooling: str) -> Path:
        key = json.dumps(
            [self.model_id, self.template.to_json(), self.max_length, pooling, list(texts)],
            ensure_ascii=False,
        )
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.safetensors"

    def get(self, texts, pooling: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        path = self.path(texts, pooling)
        if not path.is_file():
            return None
        logger.info("reusing cached features %s", path.name)
        return load_file(path)["features"]

    def put(self, texts, pooling: str, features: torch.Tensor) -> None:
        """Write atomically: a crash never leaves a half-written feature file."""
        from safetensors.torch import save_file

        path = self.path(texts, pooling)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(f".{path.name}.{os.getpid()}")
        save_file({"features": features.contiguous()}, staging)
        staging.replace(path)

    def get_or_compute(self, model, tokenizer, texts, pooling: str, **options) -> torch.Tensor:
        features = self.get(texts, pooling)
        if features is None:
            features = prompt_features(
                model,
                tokenizer,
                self.template,
                texts,
                pooling=pooling,
                max_length=self.max_length,
                **options,
            )
            self.put(texts, pooling, features)
        return features
