"""The label-scoring engine: log P(label word | prompt) for every label word in one pass.

Each prompt runs once. The label words' tokens (all but the last of each word) are packed
after it in the same row; a 4-D attention mask lets every word see the prompt and its own
earlier tokens but not the other words, and explicit position ids continue the prompt's
positions in every word. The LM head is applied only where the next token is a label token:
the prompt's last position and each packed label token, never at every position.
Single-token words add nothing to the row, so any number of single-token verbalizers cost
one forward pass. Calibration, class aggregation and training sit on top of this module.

`naive_label_log_probs` is the plain reference (one full forward per prompt and word); the
tests hold the engine to it within 1e-4.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch

from .errors import LmclassifyWarning

logger = logging.getLogger(__name__)


def unwrap_causal_lm(model):
    """The transformers causal LM inside a peft wrapper (LoRA layers stay injected)."""
    if hasattr(model, "get_base_model"):
        return model.get_base_model()
    return model


def encode_label_words(tokenizer, words: list[str], separator: str = "") -> list[list[int]]:
    """Token ids of ``separator + word`` for each word, encoded on its own without specials.

    Raises:
        ValueError: a word encodes to no token.
    """
    encoded = []
    for word in words:
        ids = tokenizer(separator + word, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"label word {word!r} encodes to no token with this tokenizer")
        encoded.append(list(ids))
    return encoded


@dataclass(frozen=True)
class LabelLayout:
    """Where each label word's tokens sit after the prompt, shared by every row.

    For word ``j`` with tokens ``t_0..t_{L-1}``, token ``t_k`` is predicted from relative
    position ``query[j, k]``: -1 (the prompt's last token) for ``k = 0``, else the packed
    copy of ``t_{k-1}``. Packed tokens of word ``j`` carry segment id ``j``.
    """

    packed: torch.Tensor  # [C] label tokens placed after the prompt
    segment: torch.Tensor  # [C] which word each packed token belongs to
    offset: torch.Tensor  # [C] its position relative to the end of the prompt
    query: torch.Tensor  # [W, K] relative position (-1..C-1) that predicts token k of word j
    target: torch.Tensor  # [W, K] token k of word j (0 where k >= its length)
    valid: torch.Tensor  # [W, K] k < length of word j

    @classmethod
    def build(cls, label_ids: list[list[int]]) -> LabelLayout:
        n_words, max_len = len(label_ids), max(len(ids) for ids in label_ids)
        packed, segment, offset = [], [], []
        query = torch.zeros(n_words, max_len, dtype=torch.long)
        target = torch.zeros(n_words, max_len, dtype=torch.long)
        valid = torch.zeros(n_words, max_len, dtype=torch.bool)
        for j, ids in enumerate(label_ids):
            query[j, 0] = -1
            for k, token in enumerate(ids[:-1]):
                query[j, k + 1] = len(packed)
                packed.append(token)
                segment.append(j)
                offset.append(k)
            target[j, : len(ids)] = torch.tensor(ids)
            valid[j, : len(ids)] = True
        as_long = lambda values: torch.tensor(values, dtype=torch.long)  # noqa: E731
        return cls(as_long(packed), as_long(segment), as_long(offset), query, target, valid)

    @property
    def n_packed(self) -> int:
        return int(self.packed.numel())


def label_log_probs(
    model,
    prompts: list[list[int]],
    layout: LabelLayout,
    pad_id: int,
    padding_side: str = "right",
    return_features: bool = False,
):
    """Summed log-probabilities of every label word after every prompt, differentiable.

    Args:
        model: a causal LM (or a peft model around one).
        prompts: token ids of each prompt.
        layout: the label words, from `LabelLayout.build`.
        pad_id: token id used for padding (never attended to).
        padding_side: ``"left"`` or ``"right"``; results do not depend on it.
        return_features: also return every layer's hidden state at each prompt's last
            token, ``[batch, layers + 1, hidden]``, for a probe sharing this pass.

    Returns:
        ``[batch, words]`` log P(word | prompt) (and the features when asked).
    """
    causal_lm = unwrap_causal_lm(model)
    decoder, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    device = head.weight.device
    inputs = _pack_batch(prompts, layout, pad_id, padding_side, causal_lm.config, head.weight)
    inputs = _to_device(inputs, device)
    ends = inputs.pop("prompt_end")  # [B] index of each prompt's last token

    output = decoder(**inputs, use_cache=False, output_hidden_states=return_features)
    hidden = output.last_hidden_state  # [B, T, H]

    # Only the prompt's last token and the packed label tokens predict label tokens.
    relative = torch.arange(-1, layout.n_packed, device=device)  # [C + 1]
    rows = (ends[:, None] + 1 + relative[None, :]).clamp(min=0)  # [B, C + 1]
    picked = hidden.gather(1, rows[..., None].expand(-1, -1, hidden.shape[-1]))  # [B, C+1, H]
    logits = apply_head(causal_lm, head, picked)  # [B, C + 1, vocab]
    log_norm = torch.logsumexp(logits, dim=-1)  # [B, C + 1]

    query = (layout.query + 1).to(device)  # [W, K] index into the C + 1 picked positions
    target = layout.target.to(device)
    chosen = logits[:, query, target]  # [B, W, K]
    token_log_probs = chosen - log_norm[:, query]  # [B, W, K]
    scores = (token_log_probs * layout.valid.to(device)).sum(dim=-1)  # [B, W]
    if not return_features:
        return scores
    layers = torch.stack(output.hidden_states, dim=1)  # [B, layers + 1, T, H]
    index = ends[:, None, None, None].expand(-1, layers.shape[1], 1, layers.shape[-1])
    return scores, layers.gather(2, index)[:, :, 0]  # [B, layers + 1, H]


def _to_device(value, device):
    if isinstance(value, dict):
        return {key: _to_device(item, device) for key, item in value.items()}
    return value.to(device)


def apply_head(causal_lm, head, hidden: torch.Tensor) -> torch.Tensor:
    """The LM head on some hidden states, with the model's final logit soft-capping."""
    logits = head(hidden)
    cap = getattr(causal_lm.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits


def _pack_batch(prompts, layout, pad_id, padding_side, config, like) -> dict[str, torch.Tensor]:
    """Rows of prompt + packed label tokens, padded, with position ids and 4-D masks."""
    if padding_side not in ("left", "right"):
        raise ValueError(f"`padding_side` must be 'left' or 'right', got {padding_side!r}")
    lengths = torch.tensor([len(p) for p in prompts])  # [B]
    width = int(lengths.max()) + layout.n_packed
    batch = len(prompts)
    input_ids = torch.full((batch, width), pad_id, dtype=torch.long)
    position = torch.zeros(batch, width, dtype=torch.long)
    segment = torch.full((batch, width), -2, dtype=torch.long)  # -2 pad, -1 prompt, j word
    starts = (
        width - lengths - layout.n_packed if padding_side == "left" else torch.zeros_like(lengths)
    )
    for b, prompt in enumerate(prompts):
        s, n = int(starts[b]), len(prompt)
        input_ids[b, s : s + n] = torch.tensor(prompt)
        input_ids[b, s + n : s + n + layout.n_packed] = layout.packed
        position[b, s : s + n] = torch.arange(n)
        position[b, s + n : s + n + layout.n_packed] = n + layout.offset
        segment[b, s : s + n] = -1
        segment[b, s + n : s + n + layout.n_packed] = layout.segment
    masks = _attention_masks(position, segment, config, like)
    return {
        "input_ids": input_ids,
        "position_ids": position,
        "attention_mask": masks,
        "prompt_end": starts + lengths - 1,
    }


def _attention_masks(position, segment, config, like):
    """Additive [B, 1, T, T] masks: prompt causal, each word sees the prompt and itself.

    Models that mix full and sliding-window layers (Gemma 3) get one mask per layer type.
    """
    key_seg, query_seg = segment[:, None, :], segment[:, :, None]  # [B, 1, T], [B, T, 1]
    key_pos, query_pos = position[:, None, :], position[:, :, None]
    allowed = (key_seg != -2) & (key_pos <= query_pos) & ((key_seg == -1) | (key_seg == query_seg))
    # A padding query attends to itself only, so its softmax stays finite.
    eye = torch.eye(segment.shape[1], dtype=torch.bool)[None]
    allowed = allowed | ((query_seg == -2) & eye)

    layer_types = set(getattr(config, "layer_types", None) or ["full_attention"])
    unknown = layer_types - {"full_attention", "sliding_attention"}
    if unknown:
        raise NotImplementedError(
            f"label scoring supports full and sliding-window attention, not {sorted(unknown)}"
        )
    masks = {"full_attention": _additive(allowed, like)}
    if "sliding_attention" in layer_types:
        window = config.sliding_window
        masks["sliding_attention"] = _additive(allowed & (query_pos - key_pos < window), like)
    if layer_types == {"full_attention"}:
        return masks["full_attention"]
    return masks


def _additive(allowed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(allowed.shape, dtype=like.dtype)
    mask.masked_fill_(~allowed, torch.finfo(like.dtype).min)
    return mask[:, None]  # [B, 1, T, T]


def encode_prompts(tokenizer, template, texts: list[str], max_tokens: int) -> list[list[int]]:
    """Token ids of each rendered prompt; a text too long for `max_tokens` is cut, not the
    template, so the question after the text survives. Cuts are counted in a warning."""
    encoded, truncated = [], 0
    for text in texts:
        ids = _encode(tokenizer, template, text)
        if len(ids) > max_tokens:
            ids, truncated = _truncate(tokenizer, template, text, max_tokens), truncated + 1
        encoded.append(ids)
    if truncated:
        warnings.warn(
            f"{truncated} of {len(texts)} texts were cut to fit {max_tokens} prompt tokens",
            LmclassifyWarning,
            stacklevel=2,
        )
    return encoded


def _encode(tokenizer, template, text: str) -> list[int]:
    return list(tokenizer(template.render(text))["input_ids"])


def _truncate(tokenizer, template, text: str, max_tokens: int) -> list[int]:
    text_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    keep = max(len(text_ids) - (len(_encode(tokenizer, template, text)) - max_tokens), 0)
    while True:
        ids = _encode(tokenizer, template, tokenizer.decode(text_ids[:keep]))
        if len(ids) <= max_tokens or keep == 0:
            return ids[:max_tokens]
        keep -= 1


class LabelScorer:
    """Scores many texts against a set of label words, in length-sorted batches.

    Args:
        model: causal LM (or peft model).
        tokenizer: its tokenizer; its `padding_side` decides the row layout.
        template: a `Template`.
        words: label words to score (e.g. the union of several verbalizers' words).
        batch_size: prompts per forward pass.
        max_length: longest row (prompt + packed label tokens); longer texts are cut.
        progress: show a progress bar.
    """

    def __init__(
        self, model, tokenizer, template, words, *, batch_size=16, max_length=512, progress=True
    ):
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.words = list(words)
        self.batch_size = batch_size
        self.max_length = max_length
        self.progress = progress
        self.label_ids = encode_label_words(tokenizer, self.words, template.separator)
        self.layout = LabelLayout.build(self.label_ids)

    def encode_prompts(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each rendered prompt, leaving room for the packed label tokens."""
        budget = self.max_length - self.layout.n_packed
        return encode_prompts(self.tokenizer, self.template, texts, budget)

    @torch.no_grad()
    def score(self, texts: list[str], prompts=None, return_features: bool = False):
        """``[n, words]`` log P(word | prompt) for each text, in the input order.

        With `return_features`, also ``[n, layers + 1, hidden]``: every layer's hidden
        state at each prompt's last token, from the same forward pass.
        """
        from tqdm.auto import tqdm

        if prompts is None:
            prompts = self.encode_prompts(texts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        scores, features = torch.empty(len(prompts), len(self.words)), None
        bar = tqdm(total=len(prompts), desc="scoring", unit="ex", disable=not self.progress)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self._score_batch([prompts[i] for i in chunk], return_features)
            if return_features:
                batch, batch_features = batch
                if features is None:
                    features = torch.empty(len(prompts), *batch_features.shape[1:])
                features[chunk] = batch_features.float().cpu()
            scores[chunk] = batch.float().cpu()
            bar.update(len(chunk))
        bar.close()
        return (scores, features) if return_features else scores

    def _score_batch(self, batch: list[list[int]], return_features: bool = False):
        return label_log_probs(
            self.model,
            batch,
            self.layout,
            pad_id=self.tokenizer.pad_token_id,
            padding_side=self.tokenizer.padding_side,
            return_features=return_features,
        )


def class_log_scores(word_scores: torch.Tensor, words: list[str], verbalizer) -> torch.Tensor:
    """``[n, classes]``: log of the summed probabilities of each class's label words."""
    index = {word: i for i, word in enumerate(words)}
    columns = [
        torch.logsumexp(word_scores[:, [index[w] for w in class_words]], dim=-1)
        for class_words in verbalizer.words.values()
    ]
    return torch.stack(columns, dim=-1)


@torch.no_grad()
def naive_label_log_probs(model, prompts: list[list[int]], label_ids: list[list[int]]):
    """The plain reference: one full forward of prompt + word per pair, ``[n, words]``."""
    out = torch.empty(len(prompts), len(label_ids))
    for i, prompt in enumerate(prompts):
        for j, word in enumerate(label_ids):
            ids = torch.tensor([prompt + word])
            log_probs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            steps = torch.arange(len(prompt) - 1, len(prompt) + len(word) - 1)
            out[i, j] = log_probs[steps, torch.tensor(word)].sum()
    return out
