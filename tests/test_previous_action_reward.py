"""The previous action and reward as inputs: ``PreviousActionRewardWrapper`` on each kind of space, the BabyAI
encoder reading the extra keys, MemoryPPO training and evaluating on wrapped envs, and the runners' flag."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecNormalize

from agents import MemoryPPO
from agents.factory import policy_name
from envs import PreviousActionRewardWrapper, make_env, make_vec_env
from envs.suites import get_suite
from policies.encoder import (
    BabyAIFeaturesExtractor,
    default_features_extractor,
    is_minigrid_observation_space,
)
from runners import evaluate, ppo, study
from runners.cli import run_main

TINY_MEMORIES: dict[str, dict[str, Any]] = {
    "tlb": dict(d_model=16, n_heads=2, chunk_size=4, n_latents=2),
    "lstm": dict(hidden_size=8),
}
TINY_EXTRACTOR = dict(features_dim=16, channels=8, mission_dim=16)


def checked(env: gym.Env) -> None:
    """gymnasium's and SB3's env checkers pass (render and re-make checks left out: MiniGrid's own
    wrappers cannot be re-made from a spec)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded reward and velocities: warnings, not failures
        gymnasium_check_env(env, skip_render_check=True, skip_close_check=True)
        sb3_check_env(env)


def take_step(env: gym.Env, action: Any) -> tuple[Any, float]:
    obs, reward, terminated, truncated, _ = env.step(action)
    assert not (terminated or truncated)
    return obs, float(reward)


# ---------------------------------------------------------------------- the wrapper


def test_discrete_actions_on_a_box_env_give_one_flat_box() -> None:
    plain = make_env("CartPole-v1")
    env = make_env("CartPole-v1", seed=0, previous_action_reward=True)
    space = env.observation_space
    assert isinstance(space, spaces.Box) and space.shape == (4 + 2 + 1,) and space.dtype == np.float32
    np.testing.assert_array_equal(space.low[:4], plain.observation_space.low)
    np.testing.assert_array_equal(space.low[4:], [0.0, 0.0, -np.inf])
    np.testing.assert_array_equal(space.high[4:], [1.0, 1.0, np.inf])
    obs, _ = env.reset(seed=1)
    plain_obs, _ = plain.reset(seed=1)
    np.testing.assert_array_equal(obs[:4], plain_obs)
    np.testing.assert_array_equal(obs[4:], [0.0, 0.0, 0.0])
    obs, reward = take_step(env, 1)
    np.testing.assert_array_equal(obs[4:], [0.0, 1.0, reward])
    assert reward == 1.0 and obs in space
    obs, _ = take_step(env, 0)
    np.testing.assert_array_equal(obs[4:6], [1.0, 0.0])
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[4:], [0.0, 0.0, 0.0])
    checked(make_env("CartPole-v1", previous_action_reward=True))


def test_minigrid_dict_gets_two_keys_and_its_encoder_reads_them() -> None:
    plain = make_env("MiniGrid-MemoryS7-v0")
    env = make_env("MiniGrid-MemoryS7-v0", seed=0, previous_action_reward=True)
    space = env.observation_space
    assert list(space.spaces) == ["image", "direction", "mission", "previous_action", "previous_reward"]
    assert space["previous_action"] == spaces.Box(0.0, 1.0, shape=(7,), dtype=np.float32)
    assert space["previous_reward"] == spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
    assert all(space[key] == plain.observation_space[key] for key in ("image", "direction", "mission"))
    assert (
        is_minigrid_observation_space(space) and default_features_extractor(space) is BabyAIFeaturesExtractor
    )
    obs, _ = env.reset(seed=3)
    plain_obs, _ = plain.reset(seed=3)
    np.testing.assert_array_equal(obs["image"], plain_obs["image"])
    assert not obs["previous_action"].any() and obs["previous_reward"].tolist() == [0.0]
    obs, reward = take_step(env, 2)  # forward
    assert obs["previous_action"].tolist() == [0, 0, 1, 0, 0, 0, 0] and obs["previous_reward"][0] == reward
    assert obs in space
    checked(make_env("MiniGrid-MemoryS7-v0", previous_action_reward=True))


def test_box_actions_are_given_as_they_are() -> None:
    env = make_env("Pendulum-v1", seed=0, previous_action_reward=True)
    space = env.observation_space
    assert isinstance(space, spaces.Box) and space.shape == (3 + 1 + 1,) and space.dtype == np.float32
    np.testing.assert_array_equal(space.low[3:], [-2.0, -np.inf])
    np.testing.assert_array_equal(space.high[3:], [2.0, np.inf])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[3:], [0.0, 0.0])
    obs, reward = take_step(env, np.array([0.75], dtype=np.float32))
    assert obs[3] == np.float32(0.75) and obs[4] == np.float32(reward) and reward < 0
    checked(make_env("Pendulum-v1", previous_action_reward=True))


def test_popgym_discrete_observation_goes_under_its_own_key() -> None:
    env = make_env("popgym-RepeatPreviousEasy-v0", seed=0, previous_action_reward=True)
    space = env.observation_space
    assert list(space.spaces) == ["observation", "previous_action", "previous_reward"]
    assert space["observation"] == make_env("popgym-RepeatPreviousEasy-v0").observation_space
    obs, _ = env.reset(seed=0)
    assert not obs["previous_action"].any() and obs["previous_reward"][0] == 0.0
    obs, reward = take_step(env, 3)
    assert obs["previous_action"].tolist() == [0, 0, 0, 1] and obs["previous_reward"][0] == np.float32(reward)
    assert obs in space
    checked(make_env("popgym-RepeatPreviousEasy-v0", previous_action_reward=True))


def test_multidiscrete_actions_are_concatenated_one_hots_and_bad_cases_are_refused() -> None:
    class TwoKnobs(gym.Env):
        observation_space = spaces.Box(0.0, 1.0, shape=(2, 2), dtype=np.float32)  # not 1-D: kept under a key
        action_space = spaces.MultiDiscrete([2, 3])

        def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
            return np.zeros((2, 2), dtype=np.float32), {}

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
            return np.zeros((2, 2), dtype=np.float32), 0.5, False, False, {}

    env = PreviousActionRewardWrapper(TwoKnobs())
    assert list(env.observation_space.spaces) == ["observation", "previous_action", "previous_reward"]
    obs, *_ = env.step(np.array([1, 2]))
    assert obs["previous_action"].tolist() == [0, 1, 0, 0, 1] and obs["previous_reward"].tolist() == [0.5]
    with pytest.raises(ValueError, match="wrapped twice"):
        PreviousActionRewardWrapper(env)


def test_vec_normalize_takes_the_flat_space() -> None:
    env = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0, previous_action_reward=True))
    obs = env.reset()
    assert obs.shape == (2, 7) and np.isfinite(obs).all()
    obs, *_ = env.step(np.array([0, 1]))
    assert np.isfinite(obs).all()


def test_the_encoder_is_unchanged_without_extra_keys() -> None:
    """Saved models (a head of channels + 4 inputs) still load: no extra key, no extra parameter."""
    plain = make_env("MiniGrid-MemoryS7-v0").observation_space
    wrapped = make_env("MiniGrid-MemoryS7-v0", previous_action_reward=True).observation_space
    torch.manual_seed(0)
    encoder = BabyAIFeaturesExtractor(plain, **TINY_EXTRACTOR)
    assert encoder.extra_keys == () and encoder.head[0].in_features == 8 + 4
    torch.manual_seed(0)
    extended = BabyAIFeaturesExtractor(wrapped, **TINY_EXTRACTOR)
    assert extended.extra_keys == ("previous_action", "previous_reward")
    assert extended.head[0].in_features == 8 + 4 + 7 + 1
    assert set(encoder.state_dict()) == set(extended.state_dict())


# ---------------------------------------------------------------------- MemoryPPO on wrapped envs


@pytest.mark.parametrize("memory", ["tlb", "lstm"])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "MiniGrid-MemoryS7-v0"])
def test_memory_ppo_trains_and_evaluates_on_wrapped_envs(env_id: str, memory: str) -> None:
    policy_kwargs: dict[str, Any] = dict(memory=memory, memory_kwargs=TINY_MEMORIES[memory], net_arch=[8])
    env_kwargs: dict[str, Any] = {}
    if env_id.startswith("MiniGrid"):
        policy_kwargs["features_extractor_kwargs"] = TINY_EXTRACTOR
        env_kwargs["max_steps"] = 16  # short episodes: a quick evaluation
    env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs=env_kwargs, previous_action_reward=True)
    model = MemoryPPO(
        policy_name(env.observation_space),
        env,
        n_steps=16,
        batch_size=32,
        sequence_length=8,
        n_epochs=1,
        policy_kwargs=policy_kwargs,
        seed=0,
    )
    model.learn(32)
    assert model._n_updates == 1
    eval_env = make_vec_env(env_id, 2, seed=1, env_kwargs=env_kwargs, previous_action_reward=True)
    mean, _ = evaluate_policy(model, eval_env, 2)
    assert np.isfinite(mean)


# ---------------------------------------------------------------------- the runners


def test_ppo_flag_is_recorded_and_evaluate_adds_the_inputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = [
        "--env", "CartPole-v1", "--total-steps", "256", "--n-envs", "2", "--n-steps", "32",
        "--batch-size", "64", "--sequence-length", "16", "--n-epochs", "1", "--eval-freq", "128",
        "--eval-episodes", "2", "--checkpoint-freq", "256", "--no-progress", "--memory", "lstm",
        "--hidden-size", "8", "--net-arch", "[8]", "--previous-action-reward", "--logdir", str(run_dir),
    ]  # fmt: skip
    assert run_main(ppo.main, argv) == 0
    assert "CartPole-v1 (+ previous action and reward)" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["previous_action_reward"] is True and "--previous-action-reward" in config["argv"]
    assert (
        ppo.build_parser().parse_args(config["argv"]).previous_action_reward is True
    )  # as --resume reads it

    rows = tmp_path / "rows.json"
    model = str(run_dir / "model.zip")
    assert (
        run_main(evaluate.main, [model, "--env", "CartPole-v1", "--episodes", "2", "--json", str(rows)]) == 0
    )
    (row,) = json.loads(rows.read_text())
    assert row["env"] == "CartPole-v1" and row["episodes"] == 2 and row["mean_length"] > 0
    # A model/env mismatch stays the one-line error, naming the plain env's space.
    capsys.readouterr()
    assert run_main(evaluate.main, [model, "--env", "Pendulum-v1", "--episodes", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Box(7 float32)" in err and "Pendulum-v1 gives Box(3 float32)" in err


def test_suite_sides_and_study_and_yaml_settings_carry_the_option(tmp_path: Path) -> None:
    suite = get_suite("memory-length").with_env_kwargs(previous_action_reward=True)
    assert all(side.env_kwargs == {"previous_action_reward": True} for side in suite.sides())
    env = suite.heldout[0].make_vec_env(1, seed=0)
    assert "previous_action" in env.observation_space.spaces
    env.close()

    plan = study.plan_study(
        [
            "--env",
            "CartPole-v1",
            "--memories",
            "lstm",
            "--seeds",
            "0",
            "--grid",
            "previous_action_reward=false,true",
        ]
    )
    flags = sorted(tuple(w for w in s.argv if "previous-action-reward" in w) for s in plan.specs)
    assert flags == [("--no-previous-action-reward",), ("--previous-action-reward",)]
    (spec,) = study.plan_study(
        ["--env", "CartPole-v1", "--memories", "lstm", "--seeds", "0", "--previous-action-reward"]
    ).specs
    assert "--previous-action-reward" in spec.argv

    hyperparams = tmp_path / "hyperparams.yaml"
    hyperparams.write_text(
        "tasks:\n  Cart:\n    env: CartPole-v1\n    hyperparams:\n      previous_action_reward: true\n"
    )
    argv = ppo.expand_hyperparams(["--env", "CartPole-v1", "--hyperparams", str(hyperparams)])
    assert ppo.build_parser().parse_args(argv).previous_action_reward is True
    assert ppo.build_parser().parse_args(["--env", "CartPole-v1"]).previous_action_reward is False
