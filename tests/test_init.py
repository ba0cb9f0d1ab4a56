"""The package's public face: every exported name resolves, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lmclassify


@pytest.mark.parametrize("name", [n for n in lmclassify.__all__ if n != "__version__"])
def test_every_exported_name_resolves(name):
    value = getattr(lmclassify, name)
    assert getattr(value, "__name__", name) == name


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        lmclassify.Nope  # noqa: B018


def test_import_does_not_load_torch():
    code = "import sys, lmclassify; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
