"""Build a memory by name: the one place that knows which memories exist."""

from __future__ import annotations

import inspect
from typing import Any

from policies.memories.base import Memory
from policies.memories.identity import NoMemory
from policies.memories.recurrent import GRUMemory, LSTMMemory
from policies.memories.tlb import PaperTemporalLatentBottleneck, TemporalLatentBottleneck
from policies.memories.window_transformer import WindowTransformerMemory

MEMORY_CLASSES: dict[str, type[Memory]] = {
    "tlb": TemporalLatentBottleneck,
    "tlb-paper": PaperTemporalLatentBottleneck,
    "lstm": LSTMMemory,
    "gru": GRUMemory,
    "transformer": WindowTransformerMemory,
    "none": NoMemory,
}


def memory_parameters(name: str) -> list[str]:
    """The keyword arguments the memory called ``name`` accepts (besides ``input_dim``)."""
    signature = inspect.signature(memory_class(name).__init__)
    return [p for p in signature.parameters if p not in ("self", "input_dim")]


def memory_class(name: str) -> type[Memory]:
    if name not in MEMORY_CLASSES:
        raise ValueError(f"unknown memory {name!r}: use one of {', '.join(MEMORY_CLASSES)}")
    return MEMORY_CLASSES[name]


def make_memory(name: str, input_dim: int, **kwargs: Any) -> Memory:
    """Build the memory ``name`` for inputs of width ``input_dim`` from its keyword arguments."""
    cls = memory_class(name)
    unknown = sorted(set(kwargs) - set(memory_parameters(name)))
    if unknown:
        raise ValueError(
            f"memory {name!r} takes no argument {', '.join(map(repr, unknown))}: "
            f"it accepts {', '.join(memory_parameters(name)) or 'none'}"
        )
    return cls(input_dim=input_dim, **kwargs)
