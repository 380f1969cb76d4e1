"""MemoryPPO: SB3's PPO with a memory policy, trained on whole sequences.

Rollout collection (``collect_rollouts``) steps the memory once per environment step and records the
memory state at the start of every training sequence. The update is SB3's own ``PPO.train``, unchanged:
the rollout buffer yields minibatches of whole sequences and the policy's ``evaluate_actions`` runs them
through ``memory.sequence`` (a loop over chunks for tlb, fused kernels for lstm/gru). So every
hyperparameter, loss, early stop and ``train/*`` log key is SB3's.
"""

from __future__ import annotations

import io
import pathlib
import time
import warnings
import zipfile
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BasePolicy
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import json_to_data, open_path
from stable_baselines3.common.type_aliases import GymEnv, Schedule
from stable_baselines3.common.utils import obs_as_tensor
from stable_baselines3.common.vec_env import VecEnv

from agents.buffers import MemoryDictRolloutBuffer, MemoryRolloutBuffer, SequenceStorage
from policies.memories import MemoryState
from policies.policy import (
    LstmMemoryActorCriticCnnPolicy,
    LstmMemoryActorCriticPolicy,
    LstmMemoryMultiInputActorCriticPolicy,
    MemoryActorCriticCnnPolicy,
    MemoryActorCriticPolicy,
    MemoryMultiInputActorCriticPolicy,
    upgrade_policy_kwargs,
)

MAX_DEFAULT_SEQUENCE_LENGTH = 32


class TrainingDiverged(RuntimeError):
    """A loss, an output or a parameter became NaN or infinite."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(
            f"training diverged at step {step}: {what}; likely cause: a learning rate or reward scale too "
            "large (lower --lr, check the rewards)"
        )


def saved_data(
    path: str | pathlib.Path | io.BufferedIOBase, custom_objects: dict[str, Any] | None
) -> dict[str, Any] | None:
    """A saved model's data (its class parameters, SB3's ``data`` entry) without loading its weights; None
    where there is none or the file is no zip archive (SB3's ``load`` then says what is wrong)."""
    file = open_path(path, "r", suffix="zip")
    try:
        with zipfile.ZipFile(file) as archive:
            if "data" not in archive.namelist():
                return None
            return json_to_data(archive.read("data").decode(), custom_objects=custom_objects)
    except zipfile.BadZipFile:
        return None
    finally:
        if isinstance(path, io.BufferedIOBase):
            path.seek(0)  # SB3's load reads the same file object again
        else:
            file.close()


class RunningMeans:
    """Means of named per-row tensors over many ``add`` calls (a rollout's memory diagnostics)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0) + value.sum()
            self.counts[name] = self.counts.get(name, 0) + value.numel()

    def means(self) -> dict[str, float]:
        return {name: float(total) / self.counts[name] for name, total in self.sums.items()}


class TimeSpent:
    """Where training's wall-clock time goes: stepping the envs (``env``), the policy's rollout steps with
    the copy of their actions to the host (``policy``), and the PPO updates (``update``); the rest is the
    rollout buffer, callbacks and logging.

    Totals since the model was built or loaded (not saved with it), and since the last ``record``, which
    logs the latter as ``time/env_s``, ``time/policy_s`` and ``time/update_s`` (the update's seconds appear
    with the next rollout's, as SB3 logs ``train/*`` keys after the update that made them)."""

    KINDS = ("env", "policy", "update")

    def __init__(self) -> None:
        self.total = dict.fromkeys(self.KINDS, 0.0)
        self.since_record = dict.fromkeys(self.KINDS, 0.0)

    def add(self, **seconds: float) -> None:
        for kind, value in seconds.items():
            self.total[kind] += value
            self.since_record[kind] += value

    def record(self, logger: Any) -> None:
        for kind, value in self.since_record.items():
            logger.record(f"time/{kind}_s", round(value, 3))
        self.since_record = dict.fromkeys(self.KINDS, 0.0)

    def summary(self, elapsed: float) -> str:
        """One line: each kind's seconds and share of ``elapsed`` (e.g. a run's wall-clock time)."""
        share = {kind: self.total[kind] / max(elapsed, 1e-9) for kind in self.KINDS}
        return ", ".join(f"{kind} {self.total[kind]:,.1f} s ({share[kind]:.0%})" for kind in self.KINDS)


# sequence_length=WHOLE_ROLLOUT trains on whole rollouts: one sequence of n_steps per env.
WHOLE_ROLLOUT = "rollout"


def default_sequence_length(n_steps: int, batch_size: int, longest: int = MAX_DEFAULT_SEQUENCE_LENGTH) -> int:
    """The largest length up to ``longest`` that divides both ``n_steps`` and ``batch_size``."""
    return max(
        length for length in range(1, longest + 1) if n_steps % length == 0 and batch_size % length == 0
    )


class MemoryPPO(PPO):
    """Proximal Policy Optimization with a memory (tlb, lstm, gru, transformer or none).

    Takes every argument of SB3's ``PPO``, so every argument of sb3-contrib's ``RecurrentPPO``, with
    RecurrentPPO's defaults ``n_steps=128`` and ``batch_size=128`` (steps per env per rollout and steps per
    minibatch), plus:

    :param sequence_length: length L of the training sequences; ``n_steps`` and ``batch_size`` must be
        multiples of it (a minibatch is ``batch_size / L`` whole sequences). ``None`` (the default) picks
        the largest length up to 32 that divides both, e.g. 32 for the defaults, 16 for ``n_steps=16``;
        the choice is printed with ``verbose >= 1``. ``"rollout"`` trains on whole rollouts (L =
        ``n_steps``, one sequence per env). Longer sequences let gradients reach further back; the memory
        state carried into each sequence comes from the rollout, so any L reproduces it, and episodes may
        start anywhere inside a sequence.

    Policies: ``"MlpPolicy"``, ``"CnnPolicy"``, ``"MultiInputPolicy"`` (any memory, ``policy_kwargs=dict(
    memory="tlb", memory_kwargs=..., critic_memory=...)``; one memory shared by actor and critic by
    default), and RecurrentPPO's ``"MlpLstmPolicy"``, ``"CnnLstmPolicy"``, ``"MultiInputLstmPolicy"`` (the
    lstm memory with RecurrentPPO's ``lstm_hidden_size``, ``n_lstm_layers``, ``enable_critic_lstm``,
    ``shared_lstm``, ``lstm_kwargs``; a separate critic LSTM by default, as there). ``predict`` carries the
    memory state like RecurrentPPO's, as a dict of arrays instead of a tuple of LSTM states.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MemoryActorCriticPolicy,
        "CnnPolicy": MemoryActorCriticCnnPolicy,
        "MultiInputPolicy": MemoryMultiInputActorCriticPolicy,
        "MlpLstmPolicy": LstmMemoryActorCriticPolicy,
        "CnnLstmPolicy": LstmMemoryActorCriticCnnPolicy,
        "MultiInputLstmPolicy": LstmMemoryMultiInputActorCriticPolicy,
    }
    policy: MemoryActorCriticPolicy
    rollout_buffer: MemoryRolloutBuffer | MemoryDictRolloutBuffer

    def __init__(
        self,
        policy: str | type[MemoryActorCriticPolicy],
        env: GymEnv | str,
        learning_rate: float | Schedule = 3e-4,
        n_steps: int = 128,
        batch_size: int = 128,
        *args: Any,
        sequence_length: int | str | None = None,
        _init_setup_model: bool = True,
        **kwargs: Any,
    ) -> None:
        for name, value in (("n_steps", n_steps), ("batch_size", batch_size)):
            if int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        chosen = sequence_length is None
        if sequence_length is None:
            sequence_length = default_sequence_length(n_steps, batch_size)
        elif sequence_length == WHOLE_ROLLOUT:
            sequence_length = n_steps
        valid = not isinstance(sequence_length, str) and int(sequence_length) == sequence_length > 0
        if not valid:
            raise ValueError(
                f"sequence_length must be a positive integer or {WHOLE_ROLLOUT!r}, got {sequence_length!r}"
            )
        sequence_length = int(sequence_length)
        for name, value in (("n_steps", n_steps), ("batch_size", batch_size)):
            if value % sequence_length != 0:
                raise ValueError(
                    f"{name}={value} is not a multiple of sequence_length={sequence_length}: training uses "
                    f"whole sequences; choose {name} = k * {sequence_length} or another sequence_length"
                )
        self.sequence_length = sequence_length
        self._last_memory_state: MemoryState | None = None
        self.time_spent = TimeSpent()
        with warnings.catch_warnings():
            # SB3's PPO warns of a "truncated mini-batch" when batch_size exceeds the rollout (RecurrentPPO's
            # n_steps=16 with its batch_size=128): the whole rollout is then one minibatch, nothing is lost.
            warnings.filterwarnings("ignore", message=r"(?s)You have specified.*after every 0 untruncated")
            super().__init__(
                policy, env, learning_rate, n_steps, batch_size, *args, _init_setup_model=False, **kwargs
            )
        if chosen and self.verbose >= 1:
            print(
                f"Using sequence_length={sequence_length}: the largest length up to "
                f"{MAX_DEFAULT_SEQUENCE_LENGTH} that divides n_steps={n_steps} and batch_size={batch_size}"
            )
        if _init_setup_model:
            self._setup_model()

    def _setup_model(self) -> None:
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = MemoryDictRolloutBuffer if dict_obs else MemoryRolloutBuffer
        if not issubclass(self.rollout_buffer_class, SequenceStorage):
            raise ValueError("MemoryPPO needs a sequence rollout buffer (agents.buffers.MemoryRolloutBuffer)")
        self.rollout_buffer_kwargs = {**self.rollout_buffer_kwargs, "sequence_length": self.sequence_length}
        super()._setup_model()
        if not isinstance(self.policy, MemoryActorCriticPolicy):
            raise ValueError(f"MemoryPPO needs a MemoryActorCriticPolicy, got {type(self.policy).__name__}")
        # Saved models record the memory settings whose defaults may change (see Memory.recorded_settings).
        recorded = self.policy.memory.recorded_settings()
        memory_kwargs = dict(self.policy_kwargs.get("memory_kwargs") or {})
        if any(key not in memory_kwargs for key in recorded):
            memory_kwargs = {**recorded, **memory_kwargs}
            self.policy_kwargs = {**self.policy_kwargs, "memory_kwargs": memory_kwargs}
            self.policy.memory_kwargs = memory_kwargs

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "time_spent"]  # this session's, not the model's

    @classmethod
    def load(  # type: ignore[override]
        cls,
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> MemoryPPO:
        """SB3's ``load``; a model saved by an earlier version gets the memory it was trained with even where
        defaults have changed since (``policies.policy.upgrade_policy_kwargs``)."""
        data = saved_data(path, custom_objects)
        if data is not None and data.get("policy_kwargs") is not None and "policy_class" in data:
            upgraded = upgrade_policy_kwargs(data["policy_class"], data["policy_kwargs"])
            if upgraded is not data["policy_kwargs"]:
                custom_objects = {**(custom_objects or {}), "policy_kwargs": upgraded}
        return super().load(  # type: ignore[return-value]
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

    def save(
        self,
        path: str | pathlib.Path | io.BufferedIOBase,
        exclude: Iterable[str] | None = None,
        include: Iterable[str] | None = None,
    ) -> None:
        """SB3's ``save``, with the memory state carried between rollouts stored on the CPU.

        SB3 pickles that state with the model's other data; a CUDA tensor pickled there cannot be unpickled
        on a machine without CUDA (SB3 then drops it with a warning), so a checkpoint written on a GPU would
        resume elsewhere without its memory. Stored on the CPU, it loads anywhere and ``learn`` moves it to
        the model's device.
        """
        state = self._last_memory_state
        if state is not None:
            self._last_memory_state = {key: value.detach().cpu() for key, value in state.items()}
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            self._last_memory_state = state

    def memory_state_lost(self) -> bool:
        """Whether the envs are mid-episode (a loaded model continuing its last rollout) but the memory state
        that goes with them did not load (a checkpoint of an older version written on another device):
        continuing would restart every env's memory in the middle of its episode."""
        return (
            self._last_memory_state is None
            and self._last_obs is not None
            and self._last_episode_starts is not None
            and not bool(np.all(self._last_episode_starts))
        )

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        if self.memory_state_lost():
            warnings.warn(
                "the memory state of the envs' current episodes did not load (a checkpoint written on "
                "another device?): the envs are reset so that no episode continues with a restarted memory",
                stacklevel=2,
            )
            self._last_obs = None  # SB3's _setup_learn resets the envs and marks every episode start
        result = super()._setup_learn(*args, **kwargs)
        # Where every env starts an episode (a fresh reset, a new env) the carried state is irrelevant.
        if self._last_memory_state is None or np.all(self._last_episode_starts):
            # Detached: a stored state must not hold on to the graph of the learned initial latents.
            state = self.policy.initial_state(self.n_envs)
            self._last_memory_state = {key: value.detach().clone() for key, value in state.items()}
        # A state loaded from a checkpoint may come from another device.
        self._last_memory_state = {
            key: value.to(self.device) for key, value in self._last_memory_state.items()
        }
        return result

    def train(self) -> None:
        """SB3's PPO update; NaN outputs (which torch.distributions refuses) become ``TrainingDiverged``."""
        begin = time.perf_counter()
        try:
            super().train()
        except ValueError as error:
            if "invalid values" not in str(error):
                raise
            raise TrainingDiverged(self.num_timesteps, "the policy's outputs are NaN or infinite") from None
        self.time_spent.add(update=time.perf_counter() - begin)

    def terminal_values(
        self, envs: list[int], infos: list[dict[str, Any]], memory_state: MemoryState
    ) -> np.ndarray:
        """The values of the final observations of the episodes of ``envs`` that a time limit cut, each read
        with its env's row of ``memory_state``: one batched call (SB3 makes one per env, each paying the
        memory's whole per-call cost)."""
        observations = [infos[idx]["terminal_observation"] for idx in envs]
        if isinstance(observations[0], dict):
            batch: Any = {key: np.stack([obs[key] for obs in observations]) for key in observations[0]}
        else:
            batch = np.stack(observations)
        rows = torch.as_tensor(envs, device=self.device)
        with torch.no_grad():
            values = self.policy.predict_values(
                self.policy.obs_to_tensor(batch)[0],
                {key: value.index_select(0, rows) for key, value in memory_state.items()},
                torch.zeros(len(envs), dtype=torch.bool, device=self.device),
            )
        return values.flatten().cpu().numpy()

    def collect_rollouts(
        self,
        env: VecEnv,
        callback: BaseCallback,
        rollout_buffer: RolloutBuffer,
        n_rollout_steps: int,
    ) -> bool:
        """SB3's rollout loop, carrying the memory state from step to step and from rollout to rollout."""
        assert self._last_obs is not None, "No previous observation was provided"
        assert isinstance(rollout_buffer, SequenceStorage)
        self.policy.set_training_mode(False)
        n_steps = 0
        rollout_buffer.reset()
        if self.use_sde:
            self.policy.reset_noise(env.num_envs)
        assert self._last_memory_state is not None, "learn() sets the memory state up"
        memory_state = self._last_memory_state

        diagnostics = RunningMeans()
        callback.on_rollout_start()
        while n_steps < n_rollout_steps:
            if self.use_sde and self.sde_sample_freq > 0 and n_steps % self.sde_sample_freq == 0:
                self.policy.reset_noise(env.num_envs)
            if n_steps % self.sequence_length == 0:
                rollout_buffer.add_sequence_state(memory_state)

            begin = time.perf_counter()
            with torch.no_grad():
                obs_tensor = obs_as_tensor(self._last_obs, self.device)  # type: ignore[arg-type]
                episode_starts = torch.as_tensor(self._last_episode_starts, device=self.device).bool()
                actions, values, log_probs, memory_state = self.policy(
                    obs_tensor, memory_state, episode_starts
                )
                diagnostics.add(self.policy.memory_diagnostics(memory_state))
            actions = actions.cpu().numpy()  # the step's one wait for the device
            after_policy = time.perf_counter()

            clipped_actions = actions
            if isinstance(self.action_space, spaces.Box):
                if self.policy.squash_output:
                    clipped_actions = self.policy.unscale_action(clipped_actions)
                else:
                    clipped_actions = np.clip(actions, self.action_space.low, self.action_space.high)

            new_obs, rewards, dones, infos = env.step(clipped_actions)
            self.time_spent.add(policy=after_policy - begin, env=time.perf_counter() - after_policy)
            # SubprocVecEnv stacks MiniGrid's Python-int rewards into an int64 array (DummyVecEnv's buffer is
            # float): the time-limit bootstrap below adds a float to it, so take rewards as floats here.
            rewards = np.asarray(rewards, dtype=np.float32)
            self.num_timesteps += env.num_envs

            callback.update_locals(locals())
            if not callback.on_step():
                return False
            self._update_info_buffer(infos, dones)
            n_steps += 1

            if isinstance(self.action_space, spaces.Discrete):
                actions = actions.reshape(-1, 1)

            # A time limit is not a real end: bootstrap with the value of the final observation, read with
            # that episode's memory (its state after this step, the episode continuing).
            truncated = [
                idx
                for idx, done in enumerate(dones)
                if done
                and infos[idx].get("terminal_observation") is not None
                and infos[idx].get("TimeLimit.truncated", False)
            ]
            if truncated:
                rewards[truncated] += self.gamma * self.terminal_values(truncated, infos, memory_state)

            rollout_buffer.add(
                self._last_obs,  # type: ignore[arg-type]
                actions,
                rewards,
                self._last_episode_starts,  # type: ignore[arg-type]
                values,
                log_probs,
            )
            self._last_obs = new_obs  # type: ignore[assignment]
            self._last_episode_starts = dones
            self._last_memory_state = memory_state  # in step with _last_obs, even if a callback stops us

        with torch.no_grad():
            values = self.policy.predict_values(
                obs_as_tensor(new_obs, self.device),  # type: ignore[arg-type]
                memory_state,
                torch.as_tensor(dones, device=self.device).bool(),
            )
        rollout_buffer.compute_returns_and_advantage(last_values=values, dones=dones)
        for name, mean in diagnostics.means().items():
            self.logger.record(f"memory/{name}", mean)
        self.time_spent.record(self.logger)

        callback.update_locals(locals())
        callback.on_rollout_end()
        return True
