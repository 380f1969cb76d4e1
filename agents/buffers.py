"""Rollout buffers that hand out whole training sequences, with the memory state before each.

A rollout of ``n_steps`` per env is cut into ``n_steps / sequence_length`` sequences per env, all of the
same length: episodes may start anywhere inside a sequence (the memory resets there), so no padding and
no variable batch sizes are needed. Before the first step of each sequence the rollout records the memory
state it carried in; training starts each sequence from that state, which is what makes the recomputed
log-probabilities equal to the rollout's on the first pass (for tlb the state includes the inputs of the
current chunk so far, so a chunk that began in the previous rollout is replayed, not cut).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, NamedTuple

import numpy as np
import torch
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer

from policies.memories import MemoryState
from policies.policy import SequenceObservations


class SequenceSamples(NamedTuple):
    """SB3's ``RolloutBufferSamples`` layout, so SB3's ``PPO.train`` consumes it unchanged."""

    observations: SequenceObservations
    actions: torch.Tensor
    old_values: torch.Tensor
    old_log_prob: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor


class SequenceStorage:
    """What a rollout buffer needs on top of SB3's to serve sequences (mixed into SB3's two buffers)."""

    buffer_size: int
    n_envs: int
    pos: int
    device: torch.device
    observations: np.ndarray | dict[str, np.ndarray]
    actions: np.ndarray
    values: np.ndarray
    log_probs: np.ndarray
    advantages: np.ndarray
    returns: np.ndarray
    episode_starts: np.ndarray
    full: bool
    to_torch: Any  # SB3's BaseBuffer.to_torch

    def _init_sequences(self, sequence_length: int) -> None:
        if sequence_length <= 0 or self.buffer_size % sequence_length != 0:
            raise ValueError(
                f"n_steps={self.buffer_size} is not a multiple of sequence_length={sequence_length}: "
                "choose a sequence_length that divides n_steps"
            )
        self.sequence_length = sequence_length
        self._memory_states: dict[str, np.ndarray] = {}
        # States recorded during the rollout, still as the policy's tensors: copied to the host together
        # when first read, so that recording one is no host synchronisation inside the rollout on a GPU.
        self._pending_states: list[tuple[int, MemoryState]] = []

    def reset(self) -> None:
        super().reset()  # type: ignore[misc]
        self._pending_states = []  # an interrupted rollout's states are not this one's

    @property
    def sequences_per_env(self) -> int:
        return self.buffer_size // self.sequence_length

    def add_sequence_state(self, state: MemoryState) -> None:
        """Record the memory state before the step about to be added, which must start a sequence."""
        if self.pos % self.sequence_length != 0:
            raise RuntimeError(f"step {self.pos} does not start a sequence of length {self.sequence_length}")
        self._pending_states.append(
            (self.pos // self.sequence_length, {k: v.detach() for k, v in state.items()})
        )

    @property
    def memory_states(self) -> dict[str, np.ndarray]:
        """The recorded states, [sequences_per_env, n_envs, ...] per key, as numpy arrays."""
        if self._pending_states:
            pending, self._pending_states = self._pending_states, []
            indices = [index for index, _ in pending]
            for key in pending[0][1]:
                values = torch.stack([state[key] for _, state in pending]).cpu().numpy()
                if key not in self._memory_states:
                    shape = (self.sequences_per_env, self.n_envs, *values.shape[2:])
                    self._memory_states[key] = np.zeros(shape, dtype=values.dtype)
                self._memory_states[key][indices] = values
        return self._memory_states

    def _as_sequences(self, array: np.ndarray) -> np.ndarray:
        """[n_steps, n_envs, ...] -> [n_sequences, L, ...] with sequence id = index_in_env * n_envs + env."""
        per_env, length, n_envs = self.sequences_per_env, self.sequence_length, self.n_envs
        array = array.reshape(per_env, length, n_envs, *array.shape[2:]).swapaxes(1, 2)
        return array.reshape(per_env * n_envs, length, *array.shape[3:])

    def get(self, batch_size: int | None = None) -> Generator[SequenceSamples, None, None]:  # type: ignore[override]
        """Shuffled minibatches of ``batch_size / sequence_length`` whole sequences."""
        assert self.full, "the rollout is not complete"
        batch_size = batch_size or self.buffer_size * self.n_envs
        if batch_size % self.sequence_length != 0:
            raise ValueError(
                f"batch_size={batch_size} is not a multiple of sequence_length={self.sequence_length}: "
                "a minibatch is made of whole sequences"
            )
        obs = self.observations
        sequences: dict[str, Any] = {
            "observations": {k: self._as_sequences(v) for k, v in obs.items()}
            if isinstance(obs, dict)
            else self._as_sequences(obs),
            "actions": self._as_sequences(self.actions.astype(np.float32, copy=False)),  # as SB3 samples
            "old_values": self._as_sequences(self.values),
            "old_log_prob": self._as_sequences(self.log_probs),
            "advantages": self._as_sequences(self.advantages),
            "returns": self._as_sequences(self.returns),
            "episode_starts": self._as_sequences(self.episode_starts),
        }
        states = {k: v.reshape(-1, *v.shape[2:]) for k, v in self.memory_states.items()}
        n_sequences = self.sequences_per_env * self.n_envs
        per_batch = max(batch_size // self.sequence_length, 1)
        order = np.random.permutation(n_sequences)
        for begin in range(0, n_sequences, per_batch):
            yield self._sequence_samples(sequences, states, order[begin : begin + per_batch])

    def _sequence_samples(
        self, sequences: dict[str, Any], states: dict[str, np.ndarray], ids: np.ndarray
    ) -> SequenceSamples:
        def flat(array: np.ndarray) -> torch.Tensor:
            picked = array[ids]
            return self.to_torch(picked.reshape(picked.shape[0] * picked.shape[1], *picked.shape[2:]))

        obs = sequences["observations"]
        observations = SequenceObservations(
            observations={k: flat(v) for k, v in obs.items()} if isinstance(obs, dict) else flat(obs),
            memory_state={k: torch.as_tensor(v[ids], device=self.device) for k, v in states.items()},
            episode_starts=self.to_torch(sequences["episode_starts"][ids]).bool(),
        )
        return SequenceSamples(
            observations,
            flat(sequences["actions"]),
            flat(sequences["old_values"]).flatten(),
            flat(sequences["old_log_prob"]).flatten(),
            flat(sequences["advantages"]).flatten(),
            flat(sequences["returns"]).flatten(),
        )


class MemoryRolloutBuffer(SequenceStorage, RolloutBuffer):
    """SB3's ``RolloutBuffer`` serving whole sequences (vector and image observations)."""

    def __init__(self, *args: Any, sequence_length: int = 32, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_sequences(sequence_length)


class MemoryDictRolloutBuffer(SequenceStorage, DictRolloutBuffer):
    """SB3's ``DictRolloutBuffer`` serving whole sequences (Dict observations)."""

    def __init__(self, *args: Any, sequence_length: int = 32, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._init_sequences(sequence_length)
