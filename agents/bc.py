"""Behavioural cloning (BC): train a ``MemoryPPO`` model's policy to imitate demonstrations (to fine-tune
it with PPO afterwards, ``agents.loading.init_from`` loads it into another model).

The sequence scheme is exact: a minibatch is ``batch_episodes`` *whole* episodes, each row starting at its
episode's first step, from the memory's initial state, with ``episode_starts`` true at step 0 only; so every
action is predicted from exactly the context the policy has when it acts in the env (the episode so far).
Rows are padded at the tail to the longest episode of the minibatch (with that episode's last observation),
and a mask keeps the padding out of the loss. Every memory is causal, so padding after an episode's end
cannot change its outputs. Episodes are bucketed by length (shuffled, then sorted inside pools of 16
minibatches, and the minibatches shuffled again) to keep padding small.

The forward pass is the one PPO trains with: ``policy.memory_latents`` in sequence mode, i.e. the encoder on
all observations of the minibatch at once and the memory on all rows at once (one call per chunk for tlb),
then the MLP and the actor head (cross-entropy on the demonstrated actions) and, optionally, the value head
(mean squared error to the discounted return of the demonstration, which gives PPO fine-tuning a sensible
critic to start from). Going through the policy's own actor and critic paths keeps ``critic_memory``'s
meaning: the value head reads what PPO will give it (the separate critic memory, the linear critic features,
or the actor's memory output), and with ``"detached"`` the value loss never trains the actor's memory.

With ``sequence_length=L`` the padded minibatch runs as consecutive windows of L steps, carrying the memory
state from each window into the next: the forward pass stays exact, but gradients stop at window boundaries
(truncated backpropagation through time) and each window's graph is freed after its backward pass, which
bounds memory use for long episodes.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.utils import update_learning_rate
from stable_baselines3.common.vec_env import VecEnv
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from agents.demos import Demos
from agents.evaluation import EvaluationResult, evaluate_model
from agents.ppo import MemoryPPO
from agents.reporting import flatten_results
from envs.relabelling import RELABELLINGS, ObservationRelabelling, check_relabelling_space
from policies.memories import MemoryState
from policies.memories.tlb import PAPER_SETTINGS

# The memory settings behavioural cloning uses where the user sets none: for tlb, the paper's configuration
# (no input shift, latents not normalised). tlb's RL defaults memorise BabyAI's demos more often: paired
# difference -0.027 against tlb-paper over 26 seeds of plain demos and 8 of DART demos
# (docs/results/bc-benchmark.md).
IMITATION_PRESETS: dict[str, dict[str, Any]] = {"tlb": dict(PAPER_SETTINGS)}


class ImitationDefaultsWarning(UserWarning):
    """A model is behaviourally cloned with a memory's RL defaults where an imitation preset exists."""


def imitation_memory_kwargs(
    memory: str, memory_kwargs: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``memory_kwargs`` with ``memory``'s imitation preset filled in where the user set nothing.

    :return: the memory arguments to build the model with, and the part of the preset that was applied
        (empty for a memory without a preset, or when the user set every one of its settings)
    """
    preset = IMITATION_PRESETS.get(memory, {})
    applied = {key: value for key, value in preset.items() if key not in memory_kwargs}
    return {**applied, **memory_kwargs}, applied


# Minibatches are formed from pools of this many minibatches' worth of episodes sorted by length.
BUCKET_POOL = 16
LR_SCHEDULES = ("constant", "cosine")


def cosine_factor(progress: float) -> float:
    """The learning-rate factor of a half-cosine decay: 1 at progress 0, 0 at progress 1 (clipped)."""
    return 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def make_optimizer(policy: nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """Adam with SB3's ``eps``; with ``weight_decay`` > 0, AdamW decaying only the parameters of two or more
    dimensions (matrices, embeddings, kernels), as is usual for Transformers: decaying LayerNorm gains and
    biases towards 0 shrinks the signal rather than the model's capacity."""
    if weight_decay == 0:
        return torch.optim.Adam(policy.parameters(), lr=lr, eps=1e-5)
    parameters = [parameter for parameter in policy.parameters() if parameter.requires_grad]
    groups = [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, eps=1e-5)


@dataclass
class BCConfig:
    """Hyperparameters of behavioural cloning.

    :param epochs: passes over the training episodes
    :param batch_episodes: whole episodes per minibatch
    :param sequence_length: None to backpropagate through whole episodes; L for windows of L steps
    :param lr: Adam learning rate
    :param max_grad_norm: gradient clipping
    :param vf_coef: weight of the value loss (0 leaves the value head untrained)
    :param gamma: discount of the value targets (None: the model's ``gamma``)
    :param val_fraction: fraction of the episodes held out for validation
    :param eval_freq: epochs between evaluations in the env (0: only at the end)
    :param eval_episodes: episodes per evaluation and env
    :param total_minutes: stop after this much wall-clock time (None: run every epoch)
    :param seed: seed of the validation split and the minibatch order
    :param deterministic_eval: greedy actions when evaluating in the env
    :param lr_schedule: ``"constant"``, or ``"cosine"``: the learning rate decays to 0 along a half cosine
        over the budget (the epochs, or ``total_minutes`` when that ends first)
    :param ent_coef: weight of an entropy bonus on the predicted action distribution (BabyAI's imitation
        baseline uses 0.01); it keeps the policy from becoming overconfident on the demos
    :param keep_best: keep the weights of the epoch with the best validation accuracy, restored before the
        final evaluation (early stopping without ending training); needs a validation split
    :param weight_decay: decoupled weight decay (AdamW) of the weight matrices, embeddings and convolution
        kernels (not of biases and LayerNorm gains); 0 keeps plain Adam. A few thousand demos are soon
        memorised (training accuracy near 1, validation far below): decay is the usual regulariser
    :param relabel: ``"none"``, ``"colors"`` or ``"colors+types"``: show each training episode under a
        random relabelling of its colours (and of the types ball, box and key), drawn per episode and
        minibatch (``envs.relabelling``); MiniGrid/BabyAI observations only. Another regulariser against
        memorised demos; never with the held-out-pairs suite, whose test pairs it would show
    :param ema_decay: 0 for off; else validation, the evaluations and the trained model use an exponential
        moving average of the weights over the updates (``torch.optim.swa_utils``, this decay per update),
        which smooths out the last updates' noise as a cooling learning rate does, without ending training
    """

    epochs: int = 20
    batch_episodes: int = 64
    sequence_length: int | None = None
    lr: float = 1e-3
    max_grad_norm: float = 0.5
    vf_coef: float = 0.5
    gamma: float | None = None
    val_fraction: float = 0.1
    eval_freq: int = 5
    eval_episodes: int = 50
    total_minutes: float | None = None
    seed: int = 0
    deterministic_eval: bool = True
    lr_schedule: str = "constant"
    ent_coef: float = 0.0
    keep_best: bool = False
    weight_decay: float = 0.0
    relabel: str = "none"
    ema_decay: float = 0.0

    def check(self) -> None:
        """Raise a one-line ``ValueError`` for a setting that cannot work."""
        for name in ("epochs", "batch_episodes", "eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.sequence_length is not None and self.sequence_length <= 0:
            raise ValueError(f"sequence_length must be a positive integer, got {self.sequence_length}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.lr <= 0 or self.max_grad_norm <= 0 or self.vf_coef < 0 or self.eval_freq < 0:
            raise ValueError("lr and max_grad_norm must be positive, vf_coef and eval_freq non-negative")
        if self.total_minutes is not None and self.total_minutes <= 0:
            raise ValueError(f"total_minutes must be positive, got {self.total_minutes}")
        if self.gamma is not None and not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule {self.lr_schedule!r}: use one of {', '.join(LR_SCHEDULES)}")
        if self.ent_coef < 0:
            raise ValueError(f"ent_coef must be 0 or more, got {self.ent_coef}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be 0 or more, got {self.weight_decay}")
        if self.relabel not in RELABELLINGS:
            raise ValueError(f"relabel {self.relabel!r}: use one of {', '.join(RELABELLINGS)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay} (e.g. 0.999; 0 for off)")
        if self.keep_best and self.ema_decay > 0:
            raise ValueError("keep_best and ema_decay each pick the final weights: use one of them")
        if self.keep_best and self.val_fraction == 0:
            raise ValueError("keep_best picks the epoch by validation accuracy: set val_fraction above 0")


def discounted_returns(demos: Demos, gamma: float) -> np.ndarray:
    """[n_steps] the discounted return from each step to the end of its episode."""
    returns = np.zeros(demos.n_steps, dtype=np.float32)
    for offset, length in zip(demos.episode_offsets, demos.episode_lengths):
        running = 0.0
        for t in range(offset + length - 1, offset - 1, -1):
            running = float(demos.rewards[t]) + gamma * running
            returns[t] = running
    return returns


@dataclass
class EpisodeBatch:
    """A minibatch of whole episodes, padded at the tail: tensors [E, T, ...] and the validity mask."""

    observations: dict[str, torch.Tensor]
    actions: torch.Tensor
    returns: torch.Tensor
    mask: torch.Tensor

    @property
    def n_valid(self) -> int:
        return int(self.mask.sum())


class EpisodeData:
    """The demos as tensors, gathered into padded minibatches of whole episodes on demand."""

    def __init__(self, demos: Demos, gamma: float, device: torch.device) -> None:
        self.device = device
        self.observations = {key: torch.as_tensor(value) for key, value in demos.observations.items()}
        self.actions = torch.as_tensor(demos.actions, dtype=torch.long)
        self.returns = torch.as_tensor(discounted_returns(demos, gamma))
        self.offsets = torch.as_tensor(demos.episode_offsets)
        self.lengths = torch.as_tensor(demos.episode_lengths)

    def batch(
        self,
        episodes: np.ndarray,
        relabel: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
    ) -> EpisodeBatch:
        """The padded minibatch of ``episodes``; ``relabel`` maps its observations [E, T, ...] first."""
        ids = torch.as_tensor(episodes, dtype=torch.long)
        lengths = self.lengths[ids]
        t = torch.arange(int(lengths.max()))
        mask = t.unsqueeze(0) < lengths.unsqueeze(1)  # [E, T]
        # Padding repeats the episode's last observation: a valid input whose outputs the mask ignores.
        steps = self.offsets[ids].unsqueeze(1) + torch.minimum(t.unsqueeze(0), lengths.unsqueeze(1) - 1)
        observations = {key: value[steps] for key, value in self.observations.items()}
        if relabel is not None:
            observations = relabel(observations)
        return EpisodeBatch(
            observations={key: value.to(self.device) for key, value in observations.items()},
            actions=self.actions[steps].to(self.device),
            returns=self.returns[steps].to(self.device),
            mask=mask.to(self.device),
        )

    def bucketed_batches(
        self, episodes: np.ndarray, batch_episodes: int, rng: np.random.Generator
    ) -> list[np.ndarray]:
        """Minibatches of episode ids covering ``episodes`` once, of similar lengths within a minibatch."""
        shuffled = rng.permutation(episodes)
        pool = batch_episodes * BUCKET_POOL
        batches: list[np.ndarray] = []
        for start in range(0, len(shuffled), pool):
            chunk = shuffled[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk].numpy(), kind="stable")]
            batches.extend(chunk[i : i + batch_episodes] for i in range(0, len(chunk), batch_episodes))
        return [batches[i] for i in rng.permutation(len(batches))]


@dataclass
class BatchTotals:
    """Sums over the valid steps of some minibatches, turned into means by ``means``."""

    cross_entropy: float = 0.0
    correct: float = 0.0
    value_error: float = 0.0
    steps: int = 0

    def add(self, other: BatchTotals) -> None:
        self.cross_entropy += other.cross_entropy
        self.correct += other.correct
        self.value_error += other.value_error
        self.steps += other.steps

    def means(self) -> tuple[float, float, float]:
        """Mean cross-entropy, accuracy and value error per step."""
        n = max(self.steps, 1)
        return self.cross_entropy / n, self.correct / n, self.value_error / n


@dataclass
class EpochStats:
    """What one epoch gave (epoch 0: the validation of the untrained policy)."""

    epoch: int
    frames: int  # demonstration steps trained on so far
    seconds: float  # wall-clock time so far
    train_loss: float
    train_accuracy: float
    value_loss: float
    val_loss: float
    val_accuracy: float
    evaluations: dict[str, EvaluationResult] = field(default_factory=dict)


class BCTrainer:
    """Behavioural cloning of ``demos`` into ``model.policy`` (see the module docstring for the scheme).

    :param model: the MemoryPPO model to train (its policy is trained in place)
    :param demos: demonstrations of an env with the model's observation and action spaces
    :param config: the hyperparameters
    :param eval_envs: named envs to measure the success rate in, every ``config.eval_freq`` epochs and at the
        end (e.g. held-out seeds, or each side of a suite)
    :param logger: an SB3 logger (e.g. ``configure(run_dir, ["csv", "tensorboard"])``); None logs nothing
    :raises ValueError: for a non-Discrete action space, demos of other spaces, or too few episodes
    """

    def __init__(
        self,
        model: MemoryPPO,
        demos: Demos,
        config: BCConfig,
        eval_envs: dict[str, VecEnv] | None = None,
        logger: Logger | None = None,
    ) -> None:
        config.check()
        if not isinstance(model.action_space, spaces.Discrete):
            raise ValueError(
                f"behavioural cloning here imitates Discrete actions, the model has {model.action_space}"
            )
        demos.check_spaces(model.observation_space, model.action_space)
        self.model, self.policy, self.config = model, model.policy, config
        preset = IMITATION_PRESETS.get(model.policy.memory_name, {})
        settings = model.policy.memory.recorded_settings()
        if any(settings.get(key, value) != value for key, value in preset.items()):
            have = ", ".join(f"{key}={settings[key]!r}" for key in preset)
            want = ", ".join(f"{key}={value!r}" for key, value in preset.items())
            warnings.warn(
                f"behavioural cloning a {model.policy.memory_name!r} memory with {have}, which memorises "
                f"demos more often than the imitation preset {want}: build the model with the memory_kwargs "
                "of agents.bc.imitation_memory_kwargs (or memory='tlb-paper'), or ignore "
                "ImitationDefaultsWarning to keep these settings",
                ImitationDefaultsWarning,
                stacklevel=2,
            )
        self.eval_envs = dict(eval_envs or {})
        self.logger = logger if logger is not None else Logger(folder=None, output_formats=[])
        self.rng = np.random.default_rng(config.seed)

        n = demos.n_episodes
        n_val = 0 if config.val_fraction == 0 else min(max(round(n * config.val_fraction), 1), n - 1)
        if n - n_val < 1:
            raise ValueError(f"the demos hold {n} episode(s): too few to train on (and validate with)")
        order = self.rng.permutation(n)
        self.val_episodes, self.train_episodes = np.sort(order[:n_val]), np.sort(order[n_val:])
        gamma = model.gamma if config.gamma is None else config.gamma
        self.data = EpisodeData(demos, gamma, model.device)
        self.optimizer = make_optimizer(self.policy, config.lr, config.weight_decay)
        self.history: list[EpochStats] = []
        self.frames = 0
        self.train_seconds = 0.0
        # keep_best: the epoch with the best validation accuracy so far and a copy of its weights.
        self.best_epoch: int | None = None
        self.best_val_accuracy = -math.inf
        self._best_weights: dict[str, torch.Tensor] | None = None
        self.relabel: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None
        if config.relabel != "none":
            check_relabelling_space(demos.observations)
            relabelling = ObservationRelabelling(config.relabel)
            generator = torch.Generator().manual_seed(config.seed)
            self.relabel = lambda observations: relabelling(observations, generator)
        self.ema: AveragedModel | None = None
        if config.ema_decay > 0:
            self.ema = AveragedModel(self.policy, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))

    # ------------------------------------------------------------------ one minibatch

    def run_batch(self, batch: EpisodeBatch, train: bool) -> BatchTotals:
        """Losses of one minibatch; with ``train``, also backpropagate them (the caller steps)."""
        policy, config = self.policy, self.config
        n_rows, length = batch.mask.shape
        window = config.sequence_length or length
        n_valid = max(batch.n_valid, 1)
        state: MemoryState = policy.initial_state(n_rows)
        starts = torch.zeros(n_rows, length, dtype=torch.bool, device=batch.mask.device)
        starts[:, 0] = True
        totals = BatchTotals(steps=batch.n_valid)
        for t0 in range(0, length, window):
            t1 = min(t0 + window, length)
            obs = {key: value[:, t0:t1].flatten(0, 1) for key, value in batch.observations.items()}
            # The policy's own paths (PPO's evaluate_sequences): the actor's and the critic's latents as
            # critic_memory defines them, flat and sequence-major like ``obs``.
            latent_pi, latent_vf, state = policy.memory_latents(obs, state, starts[:, t0:t1])
            state = {key: value.detach() for key, value in state.items()}
            logits = policy.action_net(policy.mlp_extractor.forward_actor(latent_pi))
            mask = batch.mask[:, t0:t1].flatten().float()
            actions = batch.actions[:, t0:t1].flatten()
            cross_entropy = (F.cross_entropy(logits, actions, reduction="none") * mask).sum()
            loss = cross_entropy / n_valid
            if config.ent_coef > 0:
                log_probs = F.log_softmax(logits, dim=-1)
                entropy = (-(log_probs.exp() * log_probs).sum(dim=-1) * mask).sum()
                loss = loss - config.ent_coef * entropy / n_valid
            value_error = torch.zeros(())
            if config.vf_coef > 0:
                values = policy.value_net(policy.mlp_extractor.forward_critic(latent_vf)).squeeze(-1)
                value_error = (((values - batch.returns[:, t0:t1].flatten()) ** 2) * mask).sum()
                loss = loss + config.vf_coef * value_error / n_valid
            if train:
                loss.backward()
            totals.cross_entropy += float(cross_entropy.detach())
            totals.correct += float(((logits.argmax(dim=-1) == actions).float() * mask).sum())
            totals.value_error += float(value_error.detach())
        return totals

    # ------------------------------------------------------------------ validation and evaluation

    def validate(self, episodes: np.ndarray | None = None) -> tuple[float, float]:
        """Mean cross-entropy and accuracy on the validation episodes, or on ``episodes`` (indices into the
        demos, e.g. training ones to see how far they were memorised), as demonstrated: never relabelled.
        nan without any."""
        episodes = self.val_episodes if episodes is None else episodes
        if len(episodes) == 0:
            return math.nan, math.nan
        self.policy.set_training_mode(False)
        totals = BatchTotals()
        with torch.no_grad():
            for batch_episodes in self.data.bucketed_batches(
                episodes, 4 * self.config.batch_episodes, np.random.default_rng(0)
            ):
                totals.add(self.run_batch(self.data.batch(batch_episodes), train=False))
        loss, accuracy, _ = totals.means()
        return loss, accuracy

    def evaluate(self, n_episodes: int | None = None) -> dict[str, EvaluationResult]:
        """Success rate (and return, length) in each evaluation env."""
        n_episodes = n_episodes or self.config.eval_episodes
        return {
            name: evaluate_model(self.model, env, n_episodes, deterministic=self.config.deterministic_eval)
            for name, env in self.eval_envs.items()
        }

    # ------------------------------------------------------------------ training

    def _log(self, stats: EpochStats) -> None:
        record = self.logger.record
        record("bc/epoch", stats.epoch)
        record("bc/frames", stats.frames)
        record("bc/val_loss", stats.val_loss)
        record("bc/val_accuracy", stats.val_accuracy)
        record("train/learning_rate", self.optimizer.param_groups[0]["lr"])
        if self.best_epoch is not None:
            record("bc/best_epoch", self.best_epoch)
        if stats.epoch > 0:
            record("bc/train_loss", stats.train_loss)
            record("bc/train_accuracy", stats.train_accuracy)
            record("bc/value_loss", stats.value_loss)
            record("time/fps", int(self.frames / max(self.train_seconds, 1e-9)))
        record("time/time_elapsed", stats.seconds)
        for key, value in flatten_results(stats.evaluations).items():
            record(key, value)
        self.logger.dump(step=stats.frames)

    def train(
        self, progress: bool = True, on_epoch: Callable[[EpochStats], None] | None = None
    ) -> list[EpochStats]:
        """Run the epochs (or until ``total_minutes``), validating after each and evaluating in the env every
        ``eval_freq`` epochs and at the end. Returns (and keeps in ``history``) one ``EpochStats`` per epoch,
        preceded by epoch 0: the validation of the policy before training. When ``total_minutes`` runs out
        mid-epoch, that last epoch's training statistics cover the minibatches it did.

        :param progress: show a progress bar
        :param on_epoch: called with each epoch's statistics once they are logged (e.g. to report them)
        """
        config = self.config
        start = time.perf_counter()
        deadline = None if config.total_minutes is None else start + 60 * config.total_minutes
        val_loss, val_accuracy = self.validate()
        self.history.append(EpochStats(0, 0, 0.0, math.nan, math.nan, math.nan, val_loss, val_accuracy))
        self._log(self.history[-1])

        n_batches = math.ceil(len(self.train_episodes) / config.batch_episodes)
        total_updates, updates = config.epochs * n_batches, 0
        bar = tqdm(total=total_updates, desc="behavioural cloning", unit="batch", disable=not progress)
        out_of_time = False
        try:
            for epoch in range(1, config.epochs + 1):
                totals = BatchTotals()
                self.policy.set_training_mode(True)
                for episodes in self.data.bucketed_batches(
                    self.train_episodes, config.batch_episodes, self.rng
                ):
                    batch_start = time.perf_counter()
                    if config.lr_schedule == "cosine":
                        progress_done = self._progress(updates, total_updates, start)
                        update_learning_rate(self.optimizer, config.lr * cosine_factor(progress_done))
                    updates += 1
                    self.optimizer.zero_grad(set_to_none=True)
                    batch_totals = self.run_batch(self.data.batch(episodes, self.relabel), train=True)
                    torch.nn.utils.clip_grad_norm_(self.policy.parameters(), config.max_grad_norm)
                    self.optimizer.step()
                    if self.ema is not None:
                        self.ema.update_parameters(self.policy)
                    self.train_seconds += time.perf_counter() - batch_start
                    self.frames += batch_totals.steps
                    totals.add(batch_totals)
                    bar.update(1)
                    if deadline is not None and time.perf_counter() >= deadline:
                        out_of_time = True
                        break
                train_loss, train_accuracy, value_loss = totals.means()
                last = out_of_time or epoch == config.epochs
                evaluate = last or (config.eval_freq > 0 and epoch % config.eval_freq == 0)
                if last and self.ema is not None:
                    self.policy.load_state_dict(self.ema.module.state_dict())  # the trained model's weights
                with self._averaged_weights(self.ema is not None and not last):
                    val_loss, val_accuracy = self.validate()
                    if config.keep_best and val_accuracy > self.best_val_accuracy:
                        self.best_epoch, self.best_val_accuracy = epoch, val_accuracy
                        self._best_weights = self._weights_copy()
                    if last and self._best_weights is not None and self.best_epoch != epoch:
                        self.policy.load_state_dict(self._best_weights)  # the final evaluation scores these
                    evaluations = self.evaluate() if evaluate else {}
                stats = EpochStats(
                    epoch=epoch,
                    frames=self.frames,
                    seconds=time.perf_counter() - start,
                    train_loss=train_loss,
                    train_accuracy=train_accuracy,
                    value_loss=value_loss,
                    val_loss=val_loss,
                    val_accuracy=val_accuracy,
                    evaluations=evaluations,
                )
                self.history.append(stats)
                self._log(stats)
                if on_epoch is not None:
                    on_epoch(stats)
                bar.set_postfix(loss=f"{train_loss:.3f}", val_acc=f"{val_accuracy:.3f}")
                if out_of_time:
                    break
        finally:
            bar.close()
        return self.history

    def _weights_copy(self) -> dict[str, torch.Tensor]:
        return {key: value.detach().clone() for key, value in self.policy.state_dict().items()}

    @contextmanager
    def _averaged_weights(self, swap: bool) -> Iterator[None]:
        """With ``swap``, the policy holds the averaged weights (``ema_decay``) inside the block and its own
        after it; without, nothing changes."""
        if not swap:
            yield
            return
        assert self.ema is not None
        own = self._weights_copy()
        self.policy.load_state_dict(self.ema.module.state_dict())
        try:
            yield
        finally:
            self.policy.load_state_dict(own)

    def _progress(self, updates: int, total_updates: int, start: float) -> float:
        """How far through its budget training is, in [0, 1]: the updates done, or the time used when a
        ``total_minutes`` budget ends first."""
        progress = updates / max(total_updates, 1)
        if self.config.total_minutes is not None:
            progress = max(progress, (time.perf_counter() - start) / (60 * self.config.total_minutes))
        return progress

    @property
    def frames_per_second(self) -> float:
        """Demonstration steps trained per second of minibatch work (forward, backward, optimizer step)."""
        return self.frames / max(self.train_seconds, 1e-9)
