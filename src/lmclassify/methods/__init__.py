"""Classification methods behind one interface, looked up by their names."""

from __future__ import annotations

from .base import Method, read_method_config
from .lora import LoraHead, LoraScoring
from .probe import Probe
from .zero_shot import ZeroShotGenerate, ZeroShotScoring

METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (ZeroShotGenerate, ZeroShotScoring, Probe, LoraHead, LoraScoring)
}


def method_class(name: str) -> type[Method]:
    """The class behind a method name.

    Raises:
        ValueError: the name is not a known method.
    """
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


__all__ = [
    "METHODS",
    "LoraHead",
    "LoraScoring",
    "Method",
    "Probe",
    "ZeroShotGenerate",
    "ZeroShotScoring",
    "method_class",
    "read_method_config",
]
