"""The one interface every memory implements.

A memory turns a stream of per-step feature vectors into per-step outputs while carrying a state across
steps. The PPO code only ever calls the three methods below, so it never needs to know which memory it
holds. States are dicts of batch-first tensors: the rollout buffer can store, index and concatenate them
without knowing what they contain.

The law every memory obeys (and ``tests/test_memories.py`` checks): ``sequence`` equals folding ``step``
over the time axis, including episode starts anywhere in the sequence.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from policies.host_sync import host_reads_free

MemoryState = dict[str, torch.Tensor]


def check_positive(name: str, value: int, hint: str = "") -> None:
    """Raise a one-line ``ValueError`` if an integer hyperparameter is not positive."""
    if int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}{hint}")


def check_heads(d_model: int, n_heads: int) -> None:
    """Raise a one-line ``ValueError`` if attention heads cannot split the model width evenly."""
    check_positive("d_model", d_model)
    check_positive("n_heads", n_heads)
    if d_model % n_heads != 0:
        raise ValueError(
            f"d_model={d_model} is not divisible by n_heads={n_heads}: choose n_heads among the divisors "
            f"of d_model (e.g. {[h for h in (1, 2, 4, 8) if d_model % h == 0]})"
        )


def reset_where(state: MemoryState, reset: torch.Tensor, initial: MemoryState) -> MemoryState:
    """Replace the state of every batch row where ``reset`` is true by the initial state."""
    reset = reset.bool()
    if host_reads_free(reset):
        # Writing the reset rows by index costs a fraction of a broadcast torch.where on small CPU batches,
        # but finding them (nonzero) is a host synchronisation on a GPU.
        if not bool(reset.any()):
            return state
        rows = reset.nonzero().squeeze(1)
        return {
            key: value.index_put((rows,), initial[key][rows].to(value.dtype)) for key, value in state.items()
        }
    return {
        key: torch.where(reset.view(-1, *(1,) * (value.dim() - 1)), initial[key].to(value.dtype), value)
        for key, value in state.items()
    }


class Memory(nn.Module, ABC):
    """Base class of all memories.

    :param input_dim: width of the per-step feature vectors fed to the memory
    :param output_dim: width of the per-step outputs (set by subclasses)
    """

    # Constructor arguments whose default is None because the memory resolves it from others, with what it
    # resolves to in words (help texts read every other default from the constructor's signature).
    RESOLVED_DEFAULTS: ClassVar[dict[str, str]] = {}

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        check_positive("input_dim", input_dim)
        self.input_dim = int(input_dim)
        self.output_dim = int(input_dim)
        # A buffer only to know the device/dtype even for memories without parameters.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    @abstractmethod
    def initial_state(self, batch_size: int) -> MemoryState:
        """The state at the start of an episode, for ``batch_size`` independent streams."""

    @abstractmethod
    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        """One step for a batch: ``x`` is [B, input_dim]; ``episode_start`` [B] marks rows whose ``x`` is
        the first observation of a new episode (their state is reset first). Returns [B, output_dim]."""

    @abstractmethod
    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        """A whole sequence: ``x`` is [B, T, input_dim], ``episode_starts`` [B, T]. Equal to folding
        ``step`` over T, but computed in as few batched calls as the memory allows."""

    def recorded_settings(self) -> dict[str, Any]:
        """Constructor arguments a saved model records even when left at their defaults, so that a later
        change of those defaults cannot change the network its saved weights are loaded into. None here."""
        return {}

    @classmethod
    def upgrade_saved_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments that rebuild a memory saved by an earlier version of this package with
        ``kwargs`` (what ``recorded_settings`` did not record then had that version's defaults)."""
        return kwargs

    def diagnostics(self, state: MemoryState) -> dict[str, torch.Tensor]:
        """Named per-row statistics [B] of a state, for logging (e.g. tlb's latent diversity); none by
        default. MemoryPPO logs their means over each rollout as ``memory/<name>``."""
        return {}

    def fold_steps(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        """Reference implementation of ``sequence``: a Python loop of ``step`` calls over time."""
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.step(x[:, t], state, episode_starts[:, t])
            outputs.append(y)
        return torch.stack(outputs, dim=1), state


def steps_since_episode_start(episode_starts: torch.Tensor, steps_before: torch.Tensor) -> torch.Tensor:
    """For every (row, t): how many steps of the current episode precede step t.

    ``steps_before`` [B] is that count for the step just before the sequence (i.e. carried in the state);
    an episode start at step t makes the count 0 there.
    """
    batch, length = episode_starts.shape
    t = torch.arange(length, device=episode_starts.device).expand(batch, length)
    last_start = torch.where(episode_starts.bool(), t, torch.full_like(t, -1)).cummax(dim=1).values
    return torch.where(last_start >= 0, t - last_start, t + steps_before.view(-1, 1))
