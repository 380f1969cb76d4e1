"""The PPO algorithm for memory policies and its sequence rollout buffers."""

from agents.buffers import MemoryDictRolloutBuffer, MemoryRolloutBuffer
from agents.ppo import MemoryPPO

__all__ = ["MemoryDictRolloutBuffer", "MemoryPPO", "MemoryRolloutBuffer"]
