"""LoRA + label-scoring training on the embedded default: lmclassify against HF `Trainer`.

Run by hand (about 6 minutes on 2 cores with the defaults):

    python benchmarks/training.py [--n 128] [--batch-size 8] [--target-modules q_proj,...]

Both sides train LoRA adapters (same rank, alpha, target modules, learning rate and batch
size, one epoch, no gradient accumulation) on the first `--n` default training reviews with
the prompt `评论：{text}\\n情感：` and label words 正面 / 负面:

- `lmclassify`: the `lora-scoring` method, whose loss is a softmax over the classes'
  label-word scores from the scoring engine (LM head only at the label positions);
- `trainer`: the usual recipe, `transformers.Trainer` on the peft-wrapped causal LM with
  the language-model loss on the true class's label tokens only (full-vocabulary logits at
  every position, other labels set to -100).

Each side runs in its own process, so each peak RSS is its own. Prints examples per second,
peak RSS and the ratio. No dev evaluation or checkpoints on either side.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

PROMPT = "评论：{text}\n情感："
VERBALIZER = "negative=负面,positive=正面"


def _training_reviews(n: int):
    from lmclassify.data import load_dataset, make_splits

    splits = make_splits(load_dataset(), train_size=2000, dev_size=500, test_size=1000, seed=0)
    return splits.train.texts[:n], list(splits.train.labels[:n]), splits.train.classes


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_lmclassify(args) -> dict:
    """Seconds and peak RSS of `LoraScoring.fit` (its private model copy included)."""
    from lmclassify.methods import LoraScoring
    from lmclassify.models import load_model
    from lmclassify.prompts import Template, Verbalizer
    from lmclassify.training import TrainingConfig

    texts, labels, classes = _training_reviews(args.n)
    loaded = load_model()
    training = TrainingConfig(
        batch_size=args.batch_size,
        gradient_accumulation_steps=1,
        target_modules=args.target_modules,
        learning_rate=args.learning_rate,
    )
    method = LoraScoring(
        loaded.model,
        loaded.tokenizer,
        Template(PROMPT),
        Verbalizer.parse(VERBALIZER, classes),
        classes,
        training=training,
        progress=False,
    )
    started = time.perf_counter()
    method.fit(texts, labels)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_gib": _peak_rss_gib()}


def run_trainer(args) -> dict:
    """Seconds and peak RSS of `transformers.Trainer` on the peft-wrapped causal LM."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from lmclassify.models import load_model
    from lmclassify.prompts import Template, Verbalizer
    from lmclassify.training import TrainingConfig

    texts, labels, classes = _training_reviews(args.n)
    loaded = load_model()
    tokenizer = loaded.tokenizer
    verbalizer = Verbalizer.parse(VERBALIZER, classes)
    words = [verbalizer.words[name][0] for name in classes]
    template = Template(PROMPT)

    rows = []
    for text, label in zip(texts, labels):
        prompt = tokenizer(template.render(text))["input_ids"]
        answer = tokenizer(words[label], add_special_tokens=False)["input_ids"]
        rows.append({"input_ids": prompt + answer, "labels": [-100] * len(prompt) + answer})

    def collate(batch):
        width = max(len(row["input_ids"]) for row in batch)
        pad = lambda values, fill: values + [fill] * (width - len(values))  # noqa: E731
        return {
            "input_ids": torch.tensor([pad(r["input_ids"], tokenizer.pad_token_id) for r in batch]),
            "attention_mask": torch.tensor([pad([1] * len(r["input_ids"]), 0) for r in batch]),
            "labels": torch.tensor([pad(r["labels"], -100) for r in batch]),
        }

    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=TrainingConfig(target_modules=args.target_modules).peft_target_modules(),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(loaded.model, config)
    with tempfile.TemporaryDirectory() as output_dir:
        arguments = TrainingArguments(
            output_dir=output_dir,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=1,
            learning_rate=args.learning_rate,
            warmup_steps=0.06,  # a float is a share of the steps
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            disable_tqdm=True,
            dataloader_num_workers=0,
            remove_unused_columns=False,
        )
        trainer = Trainer(model=model, args=arguments, train_dataset=rows, data_collator=collate)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_gib": _peak_rss_gib()}


def _run_side(side: str, args) -> dict:
    """One side in a fresh process, so that its peak RSS is its own."""
    command = [sys.executable, __file__, "--side", side, *_shared_flags(args)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def _shared_flags(args) -> list[str]:
    return [
        "--n",
        str(args.n),
        "--batch-size",
        str(args.batch_size),
        "--target-modules",
        args.target_modules,
        "--learning-rate",
        str(args.learning_rate),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--target-modules", default="q_proj,k_proj,v_proj,o_proj")
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--side", choices=["lmclassify", "trainer"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.side:
        side = run_lmclassify if args.side == "lmclassify" else run_trainer
        print(json.dumps(side(args)))
        return

    print(f"{args.n} reviews, batch {args.batch_size}, LoRA r 8 on {args.target_modules}")
    results = {side: _run_side(side, args) for side in ("trainer", "lmclassify")}
    for side, result in results.items():
        rate = args.n / result["seconds"]
        print(f"{side:10s} {rate:6.2f} examples/s, peak RSS {result['peak_rss_gib']:.1f} GiB")
    ratio = results["trainer"]["seconds"] / results["lmclassify"]["seconds"]
    memory = results["lmclassify"]["peak_rss_gib"] / results["trainer"]["peak_rss_gib"]
    print(f"speed-up {ratio:.2f}x, memory {memory:.2f} of the Trainer recipe's")


if __name__ == "__main__":
    main()
