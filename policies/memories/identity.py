"""The memoryless baseline: the memory interface with no state at all."""

from __future__ import annotations

import torch

from policies.memories.base import Memory, MemoryState


class NoMemory(Memory):
    """Passes features through unchanged; its state is empty, so PPO with it is plain PPO."""

    def initial_state(self, batch_size: int) -> MemoryState:
        return {}

    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        return x, {}

    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        return x, {}
