"""Policies: the memories, the BabyAI observation encoder and the SB3 actor-critic policy."""

from policies.memories import (
    MEMORY_CLASSES,
    GRUMemory,
    LSTMMemory,
    Memory,
    MemoryState,
    NoMemory,
    PaperTemporalLatentBottleneck,
    TemporalLatentBottleneck,
    WindowTransformerMemory,
    make_memory,
)

__all__ = [
    "MEMORY_CLASSES",
    "GRUMemory",
    "LSTMMemory",
    "Memory",
    "MemoryState",
    "NoMemory",
    "PaperTemporalLatentBottleneck",
    "TemporalLatentBottleneck",
    "WindowTransformerMemory",
    "make_memory",
]
