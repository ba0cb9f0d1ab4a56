"""Label scoring on the embedded default: the engine against the naive approach.

Run by hand (about 5 minutes on 2 cores):

    python benchmarks/scoring.py [--n 400] [--naive-n 96] [--batch-size 16]

Scores the first `--n` test reviews of the default split with the default template and
label words 正面 / 负面. The naive approach runs one full forward of prompt + label word
per class, batched by 8 with full-vocabulary logits at every position, as a plain
`transformers` user would; it is timed on the first `--naive-n` reviews. Prints
examples per second for both, their ratio, and the largest score difference.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from lmclassify.data import load_dataset, make_splits
from lmclassify.models import load_model
from lmclassify.prompts import Template
from lmclassify.scoring import LabelScorer

WORDS = ["正面", "负面"]
PROMPT = "评论：{text}\n情感："  # the prompt of the measurements in the README
NON_EMBEDDING_PARAMETERS = 100.3e6  # Gemma 3 270M without its 262,144 x 640 embedding


@torch.no_grad()
def naive_batched(model, tokenizer, prompts, label_ids, batch_size=8):
    """``[n, words]`` by one padded full forward per (batch of prompts, word)."""
    out = torch.empty(len(prompts), len(label_ids))
    for j, word in enumerate(label_ids):
        for start in range(0, len(prompts), batch_size):
            rows = [p + word for p in prompts[start : start + batch_size]]
            width = max(map(len, rows))
            ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
            mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
            log_probs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits, -1)
            for b, row in enumerate(rows):
                steps = torch.arange(len(row) - len(word) - 1, len(row) - 1)
                out[start + b, j] = log_probs[b, steps, torch.tensor(word)].sum()
    return out


def matmul_gflops(rows: int = 896) -> float:
    """This machine's float32 matrix-multiply rate at the model's shapes."""
    inputs, weight = torch.randn(rows, 640), torch.randn(2048, 640)
    torch.nn.functional.linear(inputs, weight)
    started = time.perf_counter()
    for _ in range(20):
        torch.nn.functional.linear(inputs, weight)
    return 20 * 2 * rows * 640 * 2048 / (time.perf_counter() - started) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400)
    parser.add_argument("--naive-n", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    splits = make_splits(load_dataset(), train_size=2000, dev_size=500, test_size=1000, seed=0)
    texts = splits.test.texts[: args.n]
    loaded = load_model()
    template = Template(PROMPT)
    scorer = LabelScorer(
        loaded.model, loaded.tokenizer, template, WORDS, batch_size=args.batch_size, progress=False
    )
    prompts = scorer.encode_prompts(texts)
    print(f"{len(texts)} reviews, mean prompt {sum(map(len, prompts)) / len(prompts):.1f} tokens")

    scorer.score(texts[:16], prompts[:16])  # warm-up
    started = time.perf_counter()
    fast = scorer.score(texts, prompts)
    engine_rate = len(texts) / (time.perf_counter() - started)
    engine_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    n = min(args.naive_n, len(texts))
    started = time.perf_counter()
    naive = naive_batched(loaded.model, loaded.tokenizer, prompts[:n], scorer.label_ids)
    naive_rate = n / (time.perf_counter() - started)
    total_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

    print(f"engine: {engine_rate:6.2f} examples/s (peak RSS so far {engine_rss:.1f} GiB)")
    print(f"naive:  {naive_rate:6.2f} examples/s (peak RSS after it {total_rss:.1f} GiB)")
    print(f"ratio:  {engine_rate / naive_rate:6.2f}x")
    gflops = matmul_gflops()
    mean_tokens = sum(map(len, prompts)) / len(prompts) + scorer.layout.n_packed
    bound = gflops * 1e9 / (2 * NON_EMBEDDING_PARAMETERS * mean_tokens)
    print(
        f"matmul {gflops:.0f} GFLOP/s -> bound {bound:.1f} examples/s; "
        f"engine at {100 * engine_rate / bound:.0f} % of it"
    )
    print(f"largest |engine - naive| log-prob: {(fast[:n] - naive).abs().max():.2e}")


if __name__ == "__main__":
    main()
