"""A rollout step reads nothing back to the host off the CPU (``policies.host_sync``).

On a GPU each host read of a tensor's value waits for the device to run dry, so MemoryPPO's rollout step
(the policy's forward with its memory step, the memory diagnostics, the recorded sequence states, the
bootstrap values at the rollout's end) must not read any: the only synchronisation per step is the
actions' copy to the envs. With CUDA present, ``torch.cuda.set_sync_debug_mode("error")`` checks exactly
that. Without it, the same steps run on the CPU along the device path under a dispatch mode that refuses
the operators which read values on the host (``.item()``, ``bool()``, ``nonzero``, ``multinomial``'s checks,
``unique``, boolean indexing), so CI checks what it can.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.utils import obs_as_tensor
from torch.utils._python_dispatch import TorchDispatchMode

from agents import MemoryPPO
from agents.ppo import RunningMeans
from envs import make_vec_env
from policies import host_sync
from policies.encoder import BabyAIFeaturesExtractor
from policies.memories.tlb import MAX_STAMPS, TemporalLatentBottleneck

MEMORIES: dict[str, dict[str, Any]] = {
    "tlb": dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2),
    "tlb-previous-chunk": dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2, previous_chunk=True),
    "tlb-two-layers": dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2, n_layers=2, gate="gru"),
    "lstm": dict(hidden_size=16),
    "gru": dict(hidden_size=16),
    "transformer": dict(d_model=16, n_heads=2, window=6),
    "none": dict(),
}
HOST_READS = {
    "aten._local_scalar_dense",  # .item(), bool(), int(), float() of a tensor
    "aten.nonzero",
    "aten.multinomial",  # checks its probabilities with .item()
    "aten._unique2",
    "aten.unique_dim",
    "aten.unique_consecutive",
    "aten.masked_select",
    "aten._pack_padded_sequence",  # lengths on the host
}


class RefuseHostReads(TorchDispatchMode):
    """Raises on every operator that reads a tensor's values on the host (a synchronisation on a GPU)."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        name = func.overloadpacket._qualified_op_name.replace("::", ".")
        boolean_index = name in ("aten.index", "aten.index_put") and any(
            isinstance(index, torch.Tensor) and index.dtype == torch.bool
            for index in args[1]
            if index is not None
        )
        if name in HOST_READS or boolean_index:
            raise AssertionError(f"host read in a rollout step: {func}")
        return func(*args, **(kwargs or {}))


def one_hot_as_on_cuda(indices: torch.Tensor, num_classes: int = -1) -> torch.Tensor:
    """``F.one_hot`` as on CUDA, where it reads no values on the host (given ``num_classes``, as SB3 does)."""
    assert num_classes > 0
    zeros = torch.zeros(*indices.shape, num_classes, dtype=torch.long, device=indices.device)
    return zeros.scatter(-1, indices.unsqueeze(-1), 1)


def build(memory: str, babyai: bool) -> MemoryPPO:
    policy_kwargs: dict[str, Any] = dict(
        memory=memory.split("-")[0], memory_kwargs=MEMORIES[memory], net_arch=[16]
    )
    if babyai:
        env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=4, seed=0)
        policy_kwargs.update(
            features_extractor_class=BabyAIFeaturesExtractor, features_extractor_kwargs=dict(features_dim=16)
        )
        return MemoryPPO(
            "MultiInputPolicy",
            env,
            n_steps=16,
            batch_size=32,
            n_epochs=1,
            seed=0,
            policy_kwargs=policy_kwargs,
        )
    env = sb3_make_vec_env("CartPole-v1", n_envs=4, seed=0)
    return MemoryPPO(
        "MlpPolicy", env, n_steps=24, batch_size=48, n_epochs=1, seed=0, policy_kwargs=policy_kwargs
    )


def prepared_steps(model: MemoryPPO, n_steps: int) -> list[tuple[Any, torch.Tensor]]:
    """Observations and episode starts of ``n_steps`` random-action steps, already on the model's device;
    one env is marked as starting an episode every few steps (the memory reads only the flags), so resets
    happen in the middle of chunks and at their ends."""
    env = model.get_env()
    assert env is not None
    obs, starts = env.reset(), np.zeros(env.num_envs, dtype=bool)
    steps = []
    for t in range(n_steps):
        starts = starts | (np.arange(env.num_envs) == t % env.num_envs) & (t % 3 == 1)
        steps.append((obs_as_tensor(obs, model.device), torch.as_tensor(starts, device=model.device)))
        obs, _, starts, _ = env.step(np.array([env.action_space.sample() for _ in range(env.num_envs)]))
    return steps


def rollout_steps(model: MemoryPPO, steps: list[tuple[Any, torch.Tensor]], guard: Callable[[], Any]) -> None:
    """What ``collect_rollouts`` runs on the device for each step, under ``guard``: the recorded sequence
    state, the policy's step, the memory diagnostics, and at the end the bootstrap values."""
    buffer = model.rollout_buffer
    buffer.reset()
    state = model._last_memory_state
    assert state is not None
    diagnostics = RunningMeans()
    with guard(), torch.no_grad():
        buffer.add_sequence_state(state)
        for obs, starts in steps:
            _, _, _, state = model.policy(obs, state, starts)
            diagnostics.add(model.policy.memory_diagnostics(state))
        model.policy.predict_values(steps[-1][0], state, steps[-1][1])
    model._last_memory_state = state  # as collect_rollouts carries it to the next rollout


def check_rollout(memory: str, babyai: bool, guard: Callable[[], Any]) -> None:
    model = build(memory, babyai)
    model.learn(model.n_steps * model.n_envs)  # one update: the weights changed since the carried state
    steps = prepared_steps(model, 12)
    rollout_steps(model, steps, guard)
    rollout_steps(model, steps, guard)  # a state carried over from the previous steps, same weights


@contextmanager
def sync_debug_error() -> Iterator[None]:
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("memory, babyai", [*((m, False) for m in MEMORIES), ("tlb", True), ("lstm", True)])
def test_a_rollout_step_reads_nothing_back_on_the_device_path(
    memory: str, babyai: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(host_sync, "HOST_READS_ON_CPU", False)
    # SB3 one-hot encodes Discrete observations; on the CPU F.one_hot checks the classes with .item(), on
    # CUDA it leaves that to scatter's device asserts. Here it runs as on CUDA.
    monkeypatch.setattr(torch.nn.functional, "one_hot", one_hot_as_on_cuda)
    check_rollout(memory, babyai, RefuseHostReads)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("memory, babyai", [*((m, False) for m in MEMORIES), ("tlb", True), ("lstm", True)])
def test_a_cuda_rollout_step_never_synchronises(
    memory: str, babyai: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    import stable_baselines3.common.base_class as sb3_base_class

    monkeypatch.setattr(sb3_base_class, "get_device", lambda device="auto": torch.device("cuda"))
    check_rollout(memory, babyai, sync_debug_error)


def test_the_guard_catches_a_host_read() -> None:
    """The CPU check is no empty ritual: the CPU path's own skip of the slow update is a host read."""
    model = build("tlb", False)
    model.learn(model.n_steps * model.n_envs)
    with pytest.raises(AssertionError, match="host read"):
        rollout_steps(model, prepared_steps(model, 12), RefuseHostReads)


def test_a_state_stays_known_while_side_steps_stamp_states_that_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollout's state is continued after side steps whose states are dropped at once (the bootstrap values
    at time limits and at the rollout's end): it must still be known as stamped, or the next step reads its
    fingerprints on the host. Dropped states' ids are reused by later tensors, so they are forgotten."""
    monkeypatch.setattr(host_sync, "HOST_READS_ON_CPU", False)
    torch.manual_seed(0)
    memory = TemporalLatentBottleneck(d_model=16, n_heads=2, input_dim=12)
    x, starts = torch.randn(2, 12), torch.zeros(2, dtype=torch.bool)
    with torch.no_grad():
        _, state = memory.step(x, memory.initial_state(2), starts)
        for _ in range(3 * MAX_STAMPS):
            memory.step(x, state, starts)  # a side step from the same state; its state is dropped
            memory.step(x, memory.initial_state(2), starts)
        with RefuseHostReads():
            memory.step(x, state, starts)
