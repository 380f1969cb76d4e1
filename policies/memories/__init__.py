"""Memories behind one interface: ``initial_state``, ``step``, ``sequence``."""

from policies.memories.base import Memory, MemoryState
from policies.memories.identity import NoMemory
from policies.memories.recurrent import GRUMemory, LSTMMemory, RecurrentMemory
from policies.memories.registry import MEMORY_CLASSES, make_memory, memory_parameters
from policies.memories.tlb import PaperTemporalLatentBottleneck, TemporalLatentBottleneck
from policies.memories.window_transformer import WindowTransformerMemory

__all__ = [
    "MEMORY_CLASSES",
    "GRUMemory",
    "LSTMMemory",
    "Memory",
    "MemoryState",
    "NoMemory",
    "RecurrentMemory",
    "PaperTemporalLatentBottleneck",
    "TemporalLatentBottleneck",
    "WindowTransformerMemory",
    "make_memory",
    "memory_parameters",
]
