"""Model loading: cache location, folders, offline errors, GGUF paths."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmclassify.models import cache_dir, check_model_available, load_model


def test_cache_dir_prefers_lmclassify_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCLASSIFY_CACHE", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("LMCLASSIFY_CACHE")
    assert cache_dir() == tmp_path / "xdg" / "lmclassify"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "lmclassify"


def test_a_model_folder_loads_with_a_pad_token(tiny_model_dir, tiny_qwen2):
    loaded = load_model(str(tiny_model_dir))
    assert loaded.tokenizer.pad_token_id is not None
    assert loaded.n_parameters == sum(p.numel() for p in tiny_qwen2.parameters())
    assert loaded.describe()["source"] == str(tiny_model_dir)
    assert not loaded.model.training
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(ids).logits, tiny_qwen2(ids).logits)


@pytest.mark.parametrize(
    "name, message",
    [
        ("/no/such/folder", "folder '/no/such/folder' does not exist"),
        ("/no/such/model.gguf", "GGUF file '/no/such/model.gguf' does not exist"),
        ("someone/uncached-model", "hub id in the local Hugging Face cache"),
    ],
)
def test_unavailable_models_get_one_line_errors(name, message):
    with pytest.raises(ValueError, match=message) as error:
        check_model_available(name)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"\0")
    with pytest.raises(ValueError, match="is a file but not a .gguf file"):
        load_model(str(weights))


def test_unknown_dtype_is_refused(tiny_model_dir):
    with pytest.raises(ValueError, match="`dtype` must be one of"):
        load_model(str(tiny_model_dir), dtype="int4")


def test_a_folder_without_safetensors_is_refused(tmp_path, tiny_qwen2, qwen_tokenizer):
    tiny_qwen2.config.save_pretrained(tmp_path)
    qwen_tokenizer.save_pretrained(tmp_path)
    torch.save(tiny_qwen2.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_model(str(tmp_path))
