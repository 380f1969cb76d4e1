"""MemoryPPO: rollout/training consistency, predict/evaluate/save-load, and short learn runs."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import (
    FakeImageEnv,
    IdentityEnvBox,
    IdentityEnvMultiBinary,
    IdentityEnvMultiDiscrete,
    SimpleMultiObsEnv,
)
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnvWrapper, VecNormalize

from agents import MemoryPPO
from envs import make_env
from policies.policy import SequenceObservations

MEMORIES = ["tlb", "lstm", "gru", "transformer", "none"]
# chunk_size 5 with n_steps 24 and sequences of 8: rollouts and sequences begin mid-chunk.
TINY_MEMORY: dict[str, dict[str, Any]] = {
    "tlb": dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2),
    "lstm": dict(hidden_size=16),
    "gru": dict(hidden_size=16),
    "transformer": dict(d_model=16, n_heads=2, window=6),
    "none": dict(),
}


def tiny_model(env: Any, memory: str, policy: str = "MlpPolicy", **kwargs: Any) -> MemoryPPO:
    policy_kwargs = dict(memory=memory, memory_kwargs=TINY_MEMORY[memory], net_arch=[16])
    policy_kwargs.update(kwargs.pop("policy_kwargs", {}))
    settings: dict[str, Any] = dict(n_steps=24, batch_size=48, n_epochs=1, sequence_length=8, seed=0)
    settings.update(kwargs)
    return MemoryPPO(policy, env, policy_kwargs=policy_kwargs, **settings)


@pytest.mark.parametrize(
    "memory, critic_memory",
    [*((memory, None) for memory in MEMORIES), ("tlb", "separate"), ("lstm", "separate"), ("gru", "none")],
)
def test_training_recomputes_the_rollout_exactly(
    memory: str, critic_memory: str | None, step_path: str
) -> None:
    env = make_vec_env("CartPole-v1", n_envs=3, seed=0)  # random-policy episodes end at any step
    model = tiny_model(env, memory, batch_size=24, policy_kwargs=dict(critic_memory=critic_memory))
    model._setup_learn(total_timesteps=10_000, callback=None)
    callback = model._init_callback(None)
    for _ in range(3):  # later rollouts start with a carried state, mid-episode and mid-chunk
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        buffer = model.rollout_buffer
        assert buffer.episode_starts[1:].any(), "the test needs episodes that end inside the rollout"
        if memory != "none":
            carried = next(iter(model._last_memory_state.values()))
            assert carried.abs().sum() > 0
        with torch.no_grad():
            for batch in buffer.get(model.batch_size):
                values, log_prob, _ = model.policy.evaluate_actions(
                    batch.observations, batch.actions.long().flatten()
                )
                assert (log_prob - batch.old_log_prob).abs().max() < 1e-5
                assert (values.flatten() - batch.old_values).abs().max() < 1e-5


@pytest.mark.parametrize("memory", MEMORIES)
def test_first_update_has_zero_approx_kl(memory: str) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    model = tiny_model(env, memory, batch_size=48)  # one epoch, one minibatch: the whole rollout
    model.learn(48)
    assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
    assert model.logger.name_to_value["train/clip_fraction"] == 0.0


# Sequences far longer than CartPole's random-policy episodes (about 20 steps), so each holds many episode
# starts at any phase of tlb's chunks; "rollout" is one sequence per env. Slow: 5-20 s each here.
LONG_SEQUENCES = [
    *(
        pytest.param(memory, 256, "rollout", id=f"{memory}-rollout256", marks=pytest.mark.slow)
        for memory in MEMORIES
    ),
    *(
        pytest.param(memory, 512, 512, id=f"{memory}-512", marks=pytest.mark.slow)
        for memory in ("tlb", "lstm", "gru")
    ),
]


@pytest.mark.parametrize("memory, n_steps, sequence_length", LONG_SEQUENCES)
def test_long_sequences_replay_the_rollout_exactly(
    memory: str, n_steps: int, sequence_length: int | str
) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=2)
    model = tiny_model(env, memory, n_steps=n_steps, batch_size=2 * n_steps, sequence_length=sequence_length)
    assert model.sequence_length == n_steps
    model._setup_learn(total_timesteps=10_000, callback=None)
    callback = model._init_callback(None)
    for _ in range(2):  # the second rollout starts from a carried state, mid-episode
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        assert model.rollout_buffer.episode_starts.sum() > 8
        with torch.no_grad():
            (batch,) = list(model.rollout_buffer.get(model.batch_size))
            actions = batch.actions.long().flatten()
            values, log_prob, _ = model.policy.evaluate_actions(batch.observations, actions)
        assert (log_prob - batch.old_log_prob).abs().max() < 1e-5
        assert (values.flatten() - batch.old_values).abs().max() < 1e-5
        model.train()  # one epoch, one minibatch: its approx_kl is measured before any step on this rollout
        assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
        assert model.logger.name_to_value["train/clip_fraction"] == 0.0


TLB_OPTIONS = [
    dict(previous_chunk=True),
    dict(latent_init_std=1.0),
    dict(normalize_latents=True, latent_init_std=1.0),
    dict(input_shift=2),
    dict(input_shift=2, shift_mixing="channel"),
    dict(previous_chunk=True, gate="gru", n_layers=2),
]


def logged_rows(model: MemoryPPO, path: Path) -> list[dict[str, str]]:
    """Train ``model`` for one rollout and update with a CSV logger; the rows SB3 dumped."""
    model.set_logger(configure(str(path), ["csv"]))
    model.learn(48)
    with open(path / "progress.csv") as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("options", TLB_OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_tlb_options_keep_training_exact_and_log_latent_diversity(
    options: dict[str, Any], tmp_path: Path
) -> None:
    """Each TLB option: the update replays the rollout (approx_kl 0 on the first update, rollouts and
    sequences starting mid-chunk and mid-episode), and the latent-diversity scalars reach the logger."""
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    model = tiny_model(
        env, "tlb", batch_size=48, policy_kwargs=dict(memory_kwargs={**TINY_MEMORY["tlb"], **options})
    )
    rows = logged_rows(model, tmp_path)
    assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
    assert model.logger.name_to_value["train/clip_fraction"] == 0.0
    assert float(rows[0]["memory/latent_norm"]) > 0.0
    assert -1.0 <= float(rows[0]["memory/latent_cosine"]) <= 1.0


def test_memories_without_diagnostics_log_none(tmp_path: Path) -> None:
    model = tiny_model(make_vec_env("CartPole-v1", n_envs=2, seed=1), "lstm", batch_size=48)
    rows = logged_rows(model, tmp_path)
    assert rows and not any(key.startswith("memory/") for key in rows[0])


def critic_grad_norms(model: MemoryPPO) -> tuple[float, float]:
    """Gradient norms of the actor's memory and of the critic's memory (if any) after a value loss alone."""
    policy = model.policy
    batch = next(model.rollout_buffer.get(model.batch_size))
    policy.zero_grad()
    values, _, _ = policy.evaluate_actions(batch.observations, batch.actions.long().flatten())
    values.pow(2).mean().backward()

    def norm(module: torch.nn.Module | None) -> float:
        grads = [p.grad.norm() for p in module.parameters() if p.grad is not None] if module else []
        return float(sum(grads)) if grads else 0.0

    return norm(policy.memory), norm(policy.critic_memory)


@pytest.mark.parametrize(
    "policy_kwargs, mode",
    [
        (dict(share_features_extractor=False), "separate"),  # as in SB3: no parameter shared
        (dict(critic_memory="separate"), "separate"),
        (dict(critic_memory="detached"), "detached"),
        (dict(critic_memory="none"), "none"),
        (dict(critic_memory="none", share_features_extractor=False), "none"),
    ],
)
@pytest.mark.parametrize("memory", ["tlb", "lstm"])
def test_critic_memory_options_train_what_they_say_and_keep_the_first_update_exact(
    memory: str, policy_kwargs: dict[str, Any], mode: str
) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=2)
    model = tiny_model(env, memory, policy_kwargs=policy_kwargs)
    policy = model.policy
    assert policy.critic_memory_mode == mode
    assert policy.memory.input_dim == policy.features_dim
    assert (policy.critic_memory is not None) == (mode == "separate")
    state = policy.initial_state(3)
    critic_keys = [key for key in state if key.startswith("critic_")]
    assert bool(critic_keys) == (mode == "separate")
    actor_state, critic_state = policy.split_state(state)
    assert actor_state.keys() == policy.memory.initial_state(3).keys()
    assert bool(critic_state) == (mode == "separate")
    model.learn(48)
    assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
    actor_grad, critic_grad = critic_grad_norms(model)
    assert actor_grad == 0.0, "the value loss must not train the actor's memory"
    assert (critic_grad > 0.0) == (mode == "separate")


def test_shared_memory_is_trained_by_the_value_loss_too() -> None:
    model = tiny_model(make_vec_env("CartPole-v1", n_envs=2, seed=2), "tlb")
    assert model.policy.critic_memory_mode == "shared" and model.policy.critic_memory is None
    model.learn(48)
    actor_grad, _ = critic_grad_norms(model)
    assert actor_grad > 0.0


@pytest.mark.parametrize(
    "policy_kwargs, message",
    [
        (dict(critic_memory="shared", share_features_extractor=False), "use critic_memory='separate'"),
        (dict(critic_memory="detached", share_features_extractor=False), "use critic_memory='separate'"),
        (dict(critic_memory="both"), "unknown critic_memory 'both'"),
    ],
)
def test_impossible_critic_memory_settings_are_one_line_errors(policy_kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as error:
        tiny_model("CartPole-v1", "tlb", policy_kwargs=policy_kwargs)
    assert "\n" not in str(error.value)


def test_memory_state_follows_observations_when_a_callback_stops_early() -> None:
    model = tiny_model(make_vec_env("CartPole-v1", n_envs=1, seed=0), "tlb")

    class StopAfterFiveSteps(BaseCallback):
        def _on_step(self) -> bool:
            return self.n_calls < 5

    model.learn(48, callback=StopAfterFiveSteps())
    # SB3 keeps the fifth observation as the next one to act on: the state must be that of 4 steps.
    assert not model._last_episode_starts[0]
    assert int(model._last_memory_state["position"][0]) == 4


@pytest.mark.parametrize("memory", ["tlb", "lstm"])
def test_a_time_limit_bootstraps_with_each_envs_own_memory(memory: str) -> None:
    """At a truncation the reward gains gamma * V(final observation), V read with that env's memory row:
    the batched bootstrap equals a value computed env by env (and the envs' values differ, so reading the
    wrong row would show)."""
    env = make_vec_env("CartPole-v1", n_envs=3, seed=0, env_kwargs=dict(max_episode_steps=5))
    model = tiny_model(env, memory, n_steps=12, batch_size=36, sequence_length=4)
    expected: dict[tuple[int, int], float] = {}

    class ValuesOneByOne(BaseCallback):
        """Before the bootstrap: each truncated env's value, from its own observation and memory row."""

        def _on_step(self) -> bool:
            state, infos = self.locals["memory_state"], self.locals["infos"]
            for idx, done in enumerate(self.locals["dones"]):
                if done and infos[idx].get("TimeLimit.truncated", False):
                    obs = torch.as_tensor(
                        infos[idx]["terminal_observation"][None], dtype=torch.float32, device=model.device
                    )
                    row = {key: value[idx : idx + 1] for key, value in state.items()}
                    start = torch.zeros(1, dtype=torch.bool, device=model.device)
                    with torch.no_grad():
                        value = model.policy.predict_values(obs, row, start)
                    expected[(self.locals["n_steps"], idx)] = float(value)
            return True

    model._setup_learn(total_timesteps=10_000, callback=None)
    callback = model._init_callback(ValuesOneByOne())
    assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    assert len(expected) >= 3, "the test needs truncated episodes"
    values = list(expected.values())
    assert max(values) - min(values) > 1e-4
    for (step, idx), value in expected.items():
        # The callback runs before the step is counted and stored; the reward of a CartPole step is 1.
        assert model.rollout_buffer.rewards[step, idx] == pytest.approx(1.0 + model.gamma * value, abs=1e-5)


class IntegerRewards(VecEnvWrapper):
    """Rewards as an int64 array, as SubprocVecEnv stacks MiniGrid's Python-int rewards."""

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        return obs, rewards.astype(np.int64), dones, infos


def test_integer_rewards_from_a_vec_env_bootstrap_at_a_time_limit() -> None:
    """A VecEnv that returns integer rewards (SubprocVecEnv on MiniGrid) trains through truncations: the
    bootstrap's float is added to float rewards, not cast into an int64 array."""
    env = IntegerRewards(make_vec_env("CartPole-v1", n_envs=2, seed=0, env_kwargs=dict(max_episode_steps=5)))
    model = tiny_model(env, "tlb", n_steps=12, batch_size=24, sequence_length=4)
    model.learn(48)
    rewards = model.rollout_buffer.rewards
    # Every truncated step's reward is 1 plus a discounted value, so some stored rewards are not integers.
    assert np.any(np.abs(rewards - np.round(rewards)) > 1e-6)


def test_evaluate_actions_refuses_flat_observations() -> None:
    model = tiny_model("CartPole-v1", "tlb")
    with pytest.raises(TypeError, match="whole sequences"):
        model.policy.evaluate_actions(torch.zeros(4, 4), torch.zeros(4))


@pytest.mark.parametrize("memory", ["tlb", "lstm", "transformer"])
def test_predict_with_carried_state_equals_sequence_evaluation(memory: str) -> None:
    model = tiny_model("CartPole-v1", memory)
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=3)
    observations, actions, state, start = [], [], None, np.ones(1, dtype=bool)
    for _ in range(17):
        action, state = model.predict(obs[None], state=state, episode_start=start, deterministic=True)
        observations.append(obs)
        actions.append(int(action[0]))
        obs, _, terminated, truncated, _ = env.step(int(action[0]))
        start = np.zeros(1, dtype=bool)
        if terminated or truncated:
            break
    policy = model.policy
    length = len(actions)
    starts = torch.zeros(1, length, dtype=torch.bool, device=model.device)
    starts[0, 0] = True
    observations_tensor = torch.as_tensor(np.array(observations), device=model.device)
    batch = SequenceObservations(observations_tensor, policy.initial_state(1), starts)
    with torch.no_grad():
        inputs = policy.memory_inputs(batch.observations).view(1, length, -1)
        latent, _ = policy.memory.sequence(inputs, batch.memory_state, starts)
        logits = policy.action_net(policy.mlp_extractor.forward_actor(latent[0]))
    assert logits.argmax(dim=1).tolist() == actions


def test_evaluate_policy_eval_callback_and_save_load(tmp_path: Path) -> None:
    model = tiny_model("CartPole-v1", "tlb", batch_size=24)
    eval_env = make_vec_env("CartPole-v1", n_envs=2, seed=5)
    callback = EvalCallback(eval_env, n_eval_episodes=2, eval_freq=24, log_path=str(tmp_path), verbose=0)
    model.learn(48, callback=callback)
    assert (tmp_path / "evaluations.npz").exists()
    mean_reward, _ = evaluate_policy(model, eval_env, n_eval_episodes=4)
    assert mean_reward > 0

    model.save(tmp_path / "model.zip")
    loaded = MemoryPPO.load(tmp_path / "model.zip")
    assert loaded.policy.memory_name == "tlb" and loaded.policy.memory.chunk_size == 5
    obs = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    state_a = state_b = None
    for t in range(7):  # across a chunk boundary of the carried state
        start = np.full(3, t == 0)
        a, state_a = model.predict(obs + t, state=state_a, episode_start=start, deterministic=True)
        b, state_b = loaded.predict(obs + t, state=state_b, episode_start=start, deterministic=True)
        assert np.array_equal(a, b)
        for key in state_a:
            np.testing.assert_allclose(state_a[key], state_b[key], atol=1e-6)


ENVS = {
    "cartpole": lambda: gym.make("CartPole-v1"),
    "pendulum-box-actions": lambda: gym.make("Pendulum-v1"),
    "fake-image": lambda: FakeImageEnv(screen_height=36, screen_width=36, n_channels=1),
    "dict-obs": lambda: SimpleMultiObsEnv(random_start=True),
    "multidiscrete": lambda: IdentityEnvMultiDiscrete(dim=3, ep_length=10),
    "multibinary": lambda: IdentityEnvMultiBinary(dim=3, ep_length=10),
    "box-identity": lambda: IdentityEnvBox(ep_length=10),
    "babyai": lambda: make_env("BabyAI-GoToLocal-v0"),
}
POLICY_FOR = {"fake-image": "CnnPolicy", "dict-obs": "MultiInputPolicy", "babyai": "MultiInputPolicy"}


@pytest.mark.parametrize("memory", MEMORIES)
@pytest.mark.parametrize("env_name", list(ENVS))
def test_learn_runs_on_every_space(env_name: str, memory: str) -> None:
    env = make_vec_env(ENVS[env_name], n_envs=2, seed=0)
    kwargs: dict[str, Any] = {}
    if env_name == "fake-image":
        kwargs["policy_kwargs"] = dict(features_extractor_kwargs=dict(features_dim=16))
    if env_name == "babyai":
        encoder = dict(features_dim=16, channels=8, mission_dim=16)
        kwargs["policy_kwargs"] = dict(features_extractor_kwargs=encoder)
    model = tiny_model(env, memory, policy=POLICY_FOR.get(env_name, "MlpPolicy"), **kwargs)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(96)
    assert model.num_timesteps == 96
    assert any(not torch.equal(a, b) for a, b in zip(before, model.policy.parameters()))
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    actions, _ = model.predict(env.reset(), episode_start=np.ones(2, dtype=bool))
    assert all(env.action_space.contains(a) for a in actions)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_steps=20, sequence_length=8), "n_steps=20 is not a multiple of sequence_length=8"),
        (dict(batch_size=20, sequence_length=8), "batch_size=20 is not a multiple of sequence_length=8"),
        (dict(sequence_length=0), "sequence_length must be a positive integer"),
    ],
)
def test_bad_sequence_settings_are_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tiny_model("CartPole-v1", "tlb", **kwargs)


def test_unknown_memory_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown memory 'lstn'"):
        MemoryPPO("MlpPolicy", "CartPole-v1", policy_kwargs=dict(memory="lstn"))


def test_vec_normalize_and_set_env_work_unchanged(tmp_path: Path) -> None:
    env = VecNormalize(make_vec_env("Pendulum-v1", n_envs=2, seed=0))
    model = tiny_model(env, "tlb", batch_size=48)
    model.learn(48)
    assert model.get_vec_normalize_env() is env and env.obs_rms.count > 1
    model.save(tmp_path / "model.zip")
    env.save(str(tmp_path / "vecnormalize.pkl"))

    other = VecNormalize.load(
        str(tmp_path / "vecnormalize.pkl"), make_vec_env("Pendulum-v1", n_envs=3, seed=1)
    )
    loaded = MemoryPPO.load(tmp_path / "model.zip", env=other)
    loaded.learn(72, reset_num_timesteps=False)  # a new env with another number of envs
    assert loaded.num_timesteps == 48 + 72
    assert next(iter(loaded._last_memory_state.values())).shape[0] == 3


def test_saved_tlb_records_its_options_and_older_checkpoints_load_with_the_papers(tmp_path: Path) -> None:
    """A model saved now records tlb's input_shift / normalize_latents / previous_chunk, so later default
    changes cannot break it; one saved before they existed (no input_shift recorded) was the paper's
    configuration and loads as such, acting exactly as before."""
    from stable_baselines3.common.save_util import load_from_zip_file, save_to_zip_file

    env = make_vec_env("CartPole-v1", n_envs=2, seed=0)
    model = tiny_model(env, "tlb")
    model.save(tmp_path / "new.zip")
    data, _, _ = load_from_zip_file(tmp_path / "new.zip")
    assert data["policy_kwargs"]["memory_kwargs"] == {
        **TINY_MEMORY["tlb"],
        "input_shift": 2,
        "shift_mixing": "dense",
        "normalize_latents": True,
        "previous_chunk": False,
    }

    paper = tiny_model(
        env,
        "tlb",
        policy_kwargs=dict(
            memory_kwargs={**TINY_MEMORY["tlb"], "input_shift": 0, "normalize_latents": False}
        ),
    )
    paper.save(tmp_path / "paper.zip")
    data, params, variables = load_from_zip_file(tmp_path / "paper.zip")
    data["policy_kwargs"]["memory_kwargs"] = dict(TINY_MEMORY["tlb"])  # as an earlier version saved it
    save_to_zip_file(tmp_path / "old.zip", data=data, params=params, pytorch_variables=variables)
    loaded = MemoryPPO.load(tmp_path / "old.zip", device="cpu")
    assert (loaded.policy.memory.input_shift, loaded.policy.memory.post_norms) == (0, None)
    obs = env.reset()
    starts = np.ones(env.num_envs, dtype=bool)
    state: Any = None
    loaded_state: Any = None
    for _ in range(6):
        expected, state = paper.predict(obs, state=state, episode_start=starts, deterministic=True)
        actions, loaded_state = loaded.predict(
            obs, state=loaded_state, episode_start=starts, deterministic=True
        )
        np.testing.assert_array_equal(actions, expected)
        obs, _, starts, _ = env.step(actions)
