"""MemoryPPO as a drop-in for sb3-contrib's RecurrentPPO, and the rollout arithmetic against SB3's PPO.

The first part is sb3-contrib's ``tests/test_lstm.py`` (v2.9) with ``RecurrentPPO`` renamed ``MemoryPPO``,
the same settings and policy arguments; the two impossible settings it expects an ``AssertionError`` for
are one-line ``ValueError``s here. Then: the default sequence length, the lstm arguments honoured or
refused, success counted with and without a ``Monitor``, the time-limit bootstrap read with the right
env's memory, and PPO's advantages and returns reproduced exactly by ``memory="none"``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.envs.classic_control import CartPoleEnv
from gymnasium.wrappers import TimeLimit
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, EvalCallback
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import FakeImageEnv
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from agents import MemoryPPO
from agents.evaluation import evaluate_model
from agents.ppo import default_sequence_length
from policies.memories import LSTMMemory

# ---------------------------------------------------------------------- sb3-contrib's tests/test_lstm.py


class ToDictWrapper(gym.Wrapper):
    """Simple wrapper to test MultInputPolicy on Dict obs."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict({"obs": self.env.observation_space})

    def reset(self, **kwargs: Any) -> tuple[dict[str, np.ndarray], dict]:
        return {"obs": self.env.reset(**kwargs)[0]}, {}

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        obs, reward, done, truncated, infos = self.env.step(action)
        return {"obs": obs}, reward, done, truncated, infos


class CartPoleNoVelEnv(CartPoleEnv):
    """Variant of CartPoleEnv with velocity information removed. This task requires memory to solve."""

    def __init__(self) -> None:
        super().__init__()
        high = np.array([self.x_threshold * 2, self.theta_threshold_radians * 2]).astype(np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)

    @staticmethod
    def _pos_obs(full_obs: np.ndarray) -> np.ndarray:
        xpos, _xvel, thetapos, _thetavel = full_obs
        return np.array([xpos, thetapos])

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        full_obs, info = super().reset(seed=seed, options=options)
        return CartPoleNoVelEnv._pos_obs(full_obs), info

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        full_obs, rew, terminated, truncated, info = super().step(action)
        return CartPoleNoVelEnv._pos_obs(full_obs), rew, terminated, truncated, info


def test_env() -> None:
    check_env(CartPoleNoVelEnv())


LSTM_VARIANTS = [
    {},
    dict(shared_lstm=True, enable_critic_lstm=False),
    dict(enable_critic_lstm=True, lstm_hidden_size=4, lstm_kwargs=dict(dropout=0.5), n_lstm_layers=2),
    dict(enable_critic_lstm=False, lstm_hidden_size=4, lstm_kwargs=dict(dropout=0.5), n_lstm_layers=2),
]


@pytest.mark.parametrize(
    "policy_kwargs",
    [
        {},
        {"share_features_extractor": False},
        *LSTM_VARIANTS[1:],
        dict(enable_critic_lstm=False, lstm_hidden_size=4, share_features_extractor=False),
    ],
)
def test_cnn(policy_kwargs: dict[str, Any]) -> None:
    model = MemoryPPO(
        "CnnLstmPolicy",
        FakeImageEnv(screen_height=40, screen_width=40, n_channels=3),
        n_steps=16,
        seed=0,
        policy_kwargs=dict(**policy_kwargs, features_extractor_kwargs=dict(features_dim=32)),
        n_epochs=2,
    )

    model.learn(total_timesteps=32)


@pytest.mark.parametrize("policy_kwargs", LSTM_VARIANTS)
def test_policy_kwargs(policy_kwargs: dict[str, Any]) -> None:
    model = MemoryPPO(
        "MlpLstmPolicy",
        "CartPole-v1",
        n_steps=16,
        seed=0,
        policy_kwargs=policy_kwargs,
    )

    model.learn(total_timesteps=32)


def test_check() -> None:
    # RecurrentPPO asserts; MemoryPPO says what to do instead, in one line.
    policy_kwargs = dict(shared_lstm=True, enable_critic_lstm=True)
    with pytest.raises(ValueError, match="exclude each other"):
        MemoryPPO(
            "MlpLstmPolicy",
            "CartPole-v1",
            n_steps=16,
            seed=0,
            policy_kwargs=policy_kwargs,
        )

    policy_kwargs = dict(shared_lstm=True, enable_critic_lstm=False, share_features_extractor=False)
    with pytest.raises(ValueError, match="shared_lstm=True needs share_features_extractor=True"):
        MemoryPPO(
            "MlpLstmPolicy",
            "CartPole-v1",
            n_steps=16,
            seed=0,
            policy_kwargs=policy_kwargs,
        )


@pytest.mark.parametrize("env", ["Pendulum-v1", "CartPole-v1"])
def test_run(env: str) -> None:
    model = MemoryPPO(
        "MlpLstmPolicy",
        env,
        n_steps=16,
        seed=0,
    )

    model.learn(total_timesteps=32)


@pytest.mark.slow
def test_run_sde() -> None:
    model = MemoryPPO(
        "MlpLstmPolicy",
        "Pendulum-v1",
        n_steps=16,
        seed=0,
        sde_sample_freq=4,
        use_sde=True,
        clip_range_vf=0.1,
    )

    model.learn(total_timesteps=200)


@pytest.mark.parametrize("policy_kwargs", LSTM_VARIANTS)
def test_dict_obs(policy_kwargs: dict[str, Any]) -> None:
    env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ToDictWrapper)
    model = MemoryPPO("MultiInputLstmPolicy", env, n_steps=32, policy_kwargs=policy_kwargs).learn(64)
    evaluate_policy(model, env, warn=False)


@pytest.mark.skipif(
    os.environ.get("TLB_SLOW_TESTS") != "1", reason="about 3 minutes on 2 cores; set TLB_SLOW_TESTS=1"
)
def test_ppo_lstm_performance() -> None:
    def make_env() -> gym.Env:
        return TimeLimit(CartPoleNoVelEnv(), max_episode_steps=500)

    env = VecNormalize(make_vec_env(make_env, n_envs=8))

    eval_callback = EvalCallback(
        VecNormalize(make_vec_env(make_env, n_envs=4), training=False, norm_reward=False),
        n_eval_episodes=20,
        eval_freq=5000 // env.num_envs,
    )

    model = MemoryPPO(
        "MlpLstmPolicy",
        env,
        n_steps=128,
        learning_rate=0.0007,
        verbose=1,
        batch_size=256,
        seed=1,
        n_epochs=10,
        max_grad_norm=1,
        gae_lambda=0.98,
        policy_kwargs=dict(
            net_arch=dict(vf=[64], pi=[]),
            lstm_hidden_size=64,
            ortho_init=False,
            enable_critic_lstm=True,
        ),
    )

    model.learn(total_timesteps=50_000, callback=eval_callback)
    # Maximum episode reward is 500.
    # In CartPole-v1, a non-recurrent policy can easily get >= 450.
    # In CartPoleNoVelEnv, a non-recurrent policy doesn't get more than ~50.
    evaluate_policy(model, env, reward_threshold=450)


class MultiDimensionalActionSpaceEnv(gym.Env):
    def __init__(self) -> None:
        self.observation_space = spaces.Box(low=-1, high=1, shape=(10,), dtype=np.float32)
        self.action_space = spaces.Box(low=-1, high=1, shape=(2, 2), dtype=np.float32)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.observation_space.sample(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.observation_space.sample(), 1, np.random.rand() > 0.8, False, {}


def test_ppo_multi_dimensional_action_space() -> None:
    env = MultiDimensionalActionSpaceEnv()
    model = MemoryPPO("MlpLstmPolicy", env, n_steps=64, n_epochs=2).learn(64)
    evaluate_policy(model, model.get_env())


TINY_MEMORIES: dict[str, dict[str, Any]] = {
    "tlb": dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2),
    "lstm": dict(hidden_size=16),
    "gru": dict(hidden_size=16),
    "transformer": dict(d_model=16, n_heads=2, window=6),
    "none": dict(),
}


@pytest.mark.parametrize("memory", list(TINY_MEMORIES))
@pytest.mark.parametrize(
    "policy, env, n_steps",
    [
        ("MlpPolicy", "Pendulum-v1", 16),
        ("MlpPolicy", "CartPole-v1", 16),
        ("MultiInputPolicy", "dict", 32),
        ("CnnPolicy", "image", 16),
    ],
)
def test_recurrent_ppo_scenarios_run_with_every_memory(
    policy: str, env: Any, n_steps: int, memory: str
) -> None:
    """RecurrentPPO's settings (n_steps 16 or 32, its default batch size) with MemoryPPO's own policies."""
    policy_kwargs: dict[str, Any] = dict(memory=memory, memory_kwargs=TINY_MEMORIES[memory])
    if env == "dict":
        env = make_vec_env("CartPole-v1", n_envs=1, wrapper_class=ToDictWrapper)
    elif env == "image":
        env = FakeImageEnv(screen_height=40, screen_width=40, n_channels=3)
        policy_kwargs["features_extractor_kwargs"] = dict(features_dim=32)
    model = MemoryPPO(policy, env, n_steps=n_steps, n_epochs=2, seed=0, policy_kwargs=policy_kwargs)
    model.learn(total_timesteps=2 * n_steps)
    assert model.num_timesteps == 2 * n_steps


# ---------------------------------------------------------------------- the sequence length


@pytest.mark.parametrize(
    "n_steps, batch_size, expected",
    [(128, 128, 32), (16, 128, 16), (36, 128, 4), (64, 48, 16), (7, 128, 1), (2048, 64, 32)],
)
def test_default_sequence_length_is_the_largest_divisor_up_to_32(
    n_steps: int, batch_size: int, expected: int
) -> None:
    assert default_sequence_length(n_steps, batch_size) == expected


def test_defaults_follow_recurrent_ppo_and_the_choice_is_printed(capsys: pytest.CaptureFixture) -> None:
    model = MemoryPPO("MlpPolicy", "CartPole-v1", verbose=1)
    assert (model.n_steps, model.batch_size, model.sequence_length) == (128, 128, 32)
    assert "sequence_length=32" in capsys.readouterr().out
    model = MemoryPPO("MlpPolicy", "CartPole-v1", n_steps=36, verbose=1)
    assert model.sequence_length == 4
    assert "sequence_length=4" in capsys.readouterr().out
    MemoryPPO("MlpPolicy", "CartPole-v1", n_steps=36, sequence_length=12, batch_size=36, verbose=1)
    assert "sequence_length" not in capsys.readouterr().out  # the user's own choice is not announced


def test_a_batch_larger_than_the_rollout_is_not_warned_about(recwarn: pytest.WarningsRecorder) -> None:
    MemoryPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16)  # RecurrentPPO's test settings: one minibatch
    assert not [w for w in recwarn if "mini-batch" in str(w.message)]
    with pytest.warns(UserWarning, match="truncated mini-batch of size 16"):  # SB3's warning where it applies
        MemoryPPO("MlpPolicy", "CartPole-v1", n_steps=48, batch_size=32, sequence_length=16)


# ---------------------------------------------------------------------- RecurrentPPO's arguments


def test_lstm_policy_arguments_are_honoured() -> None:
    model = MemoryPPO(
        "MlpLstmPolicy",
        "CartPole-v1",
        n_steps=16,
        policy_kwargs=dict(
            lstm_hidden_size=8,
            n_lstm_layers=2,
            lstm_kwargs=dict(dropout=0.25, bias=False),
            net_arch=dict(pi=[5], vf=[7]),
            activation_fn=torch.nn.ReLU,
            ortho_init=False,
        ),
    )
    policy = model.policy
    assert policy.memory_name == "lstm" and policy.critic_memory_mode == "separate"
    for memory in (policy.memory, policy.critic_memory):
        assert isinstance(memory, LSTMMemory)
        lstm = memory.rnn
        assert (lstm.hidden_size, lstm.num_layers, lstm.dropout, lstm.bias) == (8, 2, 0.25, False)
    assert policy.action_net.in_features == 5 and policy.value_net.in_features == 7
    assert isinstance(policy.mlp_extractor.policy_net[1], torch.nn.ReLU)
    assert policy.initial_state(3)["critic_h"].shape == (3, 2, 8)


@pytest.mark.parametrize(
    "policy_kwargs, mode",
    [
        ({}, "separate"),
        (dict(enable_critic_lstm=False), "none"),
        (dict(shared_lstm=True, enable_critic_lstm=False), "detached"),
    ],
)
def test_lstm_policies_keep_the_first_update_exact(policy_kwargs: dict[str, Any], mode: str) -> None:
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    model = MemoryPPO(
        "MlpLstmPolicy", env, n_steps=24, batch_size=48, n_epochs=1, seed=0, policy_kwargs=policy_kwargs
    )
    assert model.policy.critic_memory_mode == mode
    model.learn(48)
    assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
    assert model.logger.name_to_value["train/clip_fraction"] == 0.0


def test_lstm_policy_saves_and_loads(tmp_path: Path) -> None:
    policy_kwargs = dict(lstm_hidden_size=8, enable_critic_lstm=False, lstm_kwargs=dict(bias=False))
    model = MemoryPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16, policy_kwargs=policy_kwargs)
    model.save(tmp_path / "model.zip")
    loaded = MemoryPPO.load(tmp_path / "model.zip")
    assert loaded.policy.critic_memory_mode == "none" and loaded.policy.memory.hidden_size == 8
    obs = np.zeros((2, 4), dtype=np.float32)
    starts = np.ones(2, dtype=bool)
    a, state_a = model.predict(obs, episode_start=starts, deterministic=True)
    b, state_b = loaded.predict(obs, episode_start=starts, deterministic=True)
    assert np.array_equal(a, b) and all(np.allclose(state_a[k], state_b[k]) for k in state_a)
    model.policy.save(tmp_path / "policy.pt")  # SB3's policy-only save rebuilds from its constructor args
    assert type(model.policy).load(tmp_path / "policy.pt").lstm_hidden_size == 8


@pytest.mark.parametrize(
    "policy, policy_kwargs, message",
    [
        ("MlpLstmPolicy", dict(lstm_kwargs=dict(bidirectional=True)), "'bidirectional' is not supported"),
        ("MlpLstmPolicy", dict(lstm_kwargs=dict(batch_first=False)), "'batch_first' is not supported"),
        ("MlpLstmPolicy", dict(lstm_kwargs=dict(proj_size=2)), "use hidden_size"),
        ("MlpLstmPolicy", dict(memory="tlb", lstm_kwargs=dict(dropout=0.1)), "apply to the lstm and gru"),
        ("MlpLstmPolicy", dict(critic_memory="shared"), "shared_lstm"),
        ("MlpPolicy", dict(lstm_hidden_size=8), "unexpected keyword argument 'lstm_hidden_size'"),
    ],
)
def test_arguments_that_cannot_be_honoured_are_one_line_errors(
    policy: str, policy_kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message) as error:
        MemoryPPO(policy, "CartPole-v1", n_steps=16, policy_kwargs=policy_kwargs)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------- success without a Monitor


class ScriptedOutcomeEnv(gym.Env):
    """Episodes of ``length`` steps; this env's k-th episode succeeds when k % 3 == 0, reported under
    ``key`` in the last step's info (``key=None``: no success signal at all)."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self, key: str | None = "is_success", length: int = 3) -> None:
        self.key, self.length = key, length
        self.episode, self.t = 0, 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(3, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        done = self.t >= self.length
        info: dict[str, Any] = {}
        if done:
            if self.key is not None:
                info[self.key] = self.episode % 3 == 0
            self.episode += 1
        return np.full(3, self.t / self.length, dtype=np.float32), 1.0, done, False, info


def scripted_env(n_envs: int, monitor: bool, key: str | None) -> DummyVecEnv:
    def make() -> gym.Env:
        env: gym.Env = ScriptedOutcomeEnv(key)
        if monitor:
            env = Monitor(env, info_keywords=(key,) if key else ())
        return env

    return DummyVecEnv([make] * n_envs)


@pytest.mark.parametrize("key", ["is_success", "success"])
@pytest.mark.parametrize("monitor", [True, False])
@pytest.mark.parametrize("n_envs", [1, 2])
def test_success_is_counted_with_and_without_monitor(n_envs: int, monitor: bool, key: str) -> None:
    model = MemoryPPO("MlpPolicy", ScriptedOutcomeEnv(), n_steps=8, policy_kwargs=dict(memory="none"))
    result = evaluate_model(model, scripted_env(n_envs, monitor, key), n_episodes=6)
    # 6 episodes split over the envs: episodes 0 and 3 of a single env, or episode 0 of each of two envs.
    assert (result.episodes, result.successes) == (6, 2)
    assert result.success_rate == pytest.approx(2 / 6)
    assert result.has_success_signal
    low, high = result.success_ci95
    assert 0.0 < low < 2 / 6 < high < 1.0
    assert result.success_summary().startswith("0.333 [95% CI")
    assert (result.mean_return, result.mean_length) == (3.0, 3.0)


@pytest.mark.parametrize("monitor", [True, False])
def test_an_env_without_success_signal_is_reported_as_such_not_as_zero(monitor: bool) -> None:
    model = MemoryPPO("MlpPolicy", ScriptedOutcomeEnv(), n_steps=8, policy_kwargs=dict(memory="none"))
    result = evaluate_model(model, scripted_env(2, monitor, None), n_episodes=4)
    assert result.episodes == 4 and result.successes is None and not result.has_success_signal
    assert math.isnan(result.success_rate) and all(math.isnan(x) for x in result.success_ci95)
    assert result.success_summary() == "no success signal"
    assert result.as_dict()["successes"] is None


# ---------------------------------------------------------------------- the time-limit bootstrap


class NoiseEnv(gym.Env):
    """Random observations, reward 1, never terminates: every episode end is a time-limit truncation."""

    observation_space = spaces.Box(-5.0, 5.0, shape=(3,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.np_random.normal(size=3).astype(np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.np_random.normal(size=3).astype(np.float32), 1.0, False, False, {}


class RecordSteps(BaseCallback):
    """Keeps each rollout step's observations, raw rewards (before the bootstrap is added), dones, infos."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[dict[str, Any]] = []

    def _on_step(self) -> bool:
        self.steps.append(
            dict(
                obs=self.locals["obs_tensor"].clone(),
                rewards=np.array(self.locals["rewards"], copy=True),
                dones=np.array(self.locals["dones"], copy=True),
                infos=[dict(info) for info in self.locals["infos"]],
            )
        )
        return True


@pytest.mark.parametrize(
    "policy, policy_kwargs",
    [
        (
            "MlpPolicy",
            dict(memory="tlb", memory_kwargs=dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2)),
        ),
        (
            "MlpPolicy",
            dict(
                memory="tlb",
                memory_kwargs=dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2),
                critic_memory="separate",
            ),
        ),
        ("MlpLstmPolicy", dict(lstm_hidden_size=8)),
    ],
)
def test_truncation_bootstraps_with_the_final_observation_and_that_envs_memory(
    policy: str, policy_kwargs: dict[str, Any]
) -> None:
    # Env 0 is truncated after 9 steps (episode steps 0..8), in the second rollout of 8 steps: with chunks of
    # 5 its memory then holds a chunk (steps 5..9) begun in the first rollout. Env 1 runs on.
    env = DummyVecEnv([lambda: TimeLimit(NoiseEnv(), 9), lambda: TimeLimit(NoiseEnv(), 100)])
    model = MemoryPPO(
        policy, env, n_steps=8, batch_size=16, seed=0, policy_kwargs=dict(net_arch=[8], **policy_kwargs)
    )
    model._setup_learn(total_timesteps=10_000, callback=None)
    recorder = RecordSteps()
    callback = model._init_callback(recorder)
    for _ in range(2):
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
    if policy_kwargs.get("memory") == "tlb":
        assert int(model.rollout_buffer.memory_states["position"][0, 0]) % 5 == 3  # carried in mid-chunk

    end = 8  # the truncated step (global index): the first step of the second rollout
    step = recorder.steps[end]
    assert step["dones"].tolist() == [True, False] and step["infos"][0]["TimeLimit.truncated"]
    terminal = torch.as_tensor(step["infos"][0]["terminal_observation"], device=model.device)[None]

    # V(final obs) in sequence mode, from the episode's first observation: independent of the rollout's
    # per-step state bookkeeping.
    policy_ = model.policy
    episode = torch.cat([recorder.steps[t]["obs"][0:1] for t in range(end + 1)] + [terminal])
    starts = torch.zeros(1, len(episode), dtype=torch.bool, device=model.device)
    starts[0, 0] = True
    no_actions = torch.zeros(len(episode), device=model.device)
    with torch.no_grad():
        values, _, _ = policy_.evaluate_sequences(episode, no_actions, policy_.initial_state(1), starts)
        # The same observation read with the other env's memory, or with none, would give other values.
        other = torch.cat([recorder.steps[t]["obs"][1:2] for t in range(end + 1)] + [terminal])
        values_other, _, _ = policy_.evaluate_sequences(
            other, no_actions, policy_.initial_state(1), torch.zeros_like(starts)
        )
        start = torch.ones(1, dtype=torch.bool, device=model.device)
        fresh = policy_.predict_values(terminal, policy_.initial_state(1), start)
    value_final = float(values[-1])
    assert abs(value_final - float(values_other[-1])) > 1e-4
    assert abs(value_final - float(fresh)) > 1e-4

    rewards = model.rollout_buffer.rewards[end - model.n_steps]  # the second rollout's buffer
    assert rewards[0] == pytest.approx(step["rewards"][0] + model.gamma * value_final, abs=1e-5)
    assert rewards[1] == step["rewards"][1]  # no bootstrap where the episode goes on


# ---------------------------------------------------------------------- memory="none" is SB3's PPO


def test_memoryless_advantages_and_returns_equal_sb3_ppo() -> None:
    def env() -> DummyVecEnv:  # episodes end by termination and by a short time limit
        return make_vec_env(lambda: gym.make("CartPole-v1", max_episode_steps=12), n_envs=2, seed=3)

    settings: dict[str, Any] = dict(n_steps=32, batch_size=64, gamma=0.97, gae_lambda=0.9, seed=0)
    ppo = PPO("MlpPolicy", env(), policy_kwargs=dict(net_arch=[16]), **settings)
    ours = MemoryPPO(
        "MlpPolicy", env(), policy_kwargs=dict(net_arch=[16], memory="none"), sequence_length=8, **settings
    )
    ours.policy.load_state_dict(ppo.policy.state_dict())
    for model in (ppo, ours):
        model._setup_learn(total_timesteps=10_000, callback=None)
    truncations = 0
    for _ in range(2):  # the second rollout starts mid-episode
        buffers = []
        for model in (ppo, ours):
            torch.manual_seed(7)  # the same sampled actions
            recorder = RecordSteps()
            assert model.collect_rollouts(model.env, model._init_callback(recorder), model.rollout_buffer, 32)
            buffers.append(model.rollout_buffer)
            truncations += sum(
                bool(info.get("TimeLimit.truncated")) for step in recorder.steps for info in step["infos"]
            )
        theirs, mine = buffers
        for name in ("observations", "actions", "episode_starts", "rewards", "values", "log_probs"):
            np.testing.assert_allclose(getattr(mine, name), getattr(theirs, name), atol=1e-6, err_msg=name)
        np.testing.assert_allclose(mine.advantages, theirs.advantages, atol=1e-5)
        np.testing.assert_allclose(mine.returns, theirs.returns, atol=1e-5)
        assert mine.episode_starts[1:].any()
    assert truncations >= 2, "the test needs time-limit truncations (bootstrapped rewards)"


def test_lstm_policies_take_any_memory_with_recurrent_ppo_arguments(tmp_path: Path) -> None:
    """An RL Zoo entry for RecurrentPPO with ``memory='tlb'`` added: lstm_hidden_size is the tlb's width,
    enable_critic_lstm its separate critic memory, and the model saves and loads as it was built."""
    policy_kwargs = dict(
        memory="tlb", lstm_hidden_size=16, enable_critic_lstm=True, memory_kwargs=dict(n_heads=2)
    )
    model = MemoryPPO("MlpLstmPolicy", "CartPole-v1", n_steps=16, batch_size=16, policy_kwargs=policy_kwargs)
    policy = model.policy
    assert policy.memory_name == "tlb" and policy.memory.d_model == 16
    assert policy.memory_kwargs["n_heads"] == 2
    assert policy.critic_memory_mode == "separate" and policy.critic_memory is not None
    model.save(tmp_path / "model.zip")
    loaded = MemoryPPO.load(tmp_path / "model.zip")
    assert loaded.policy.memory.d_model == 16
    assert loaded.policy.memory.input_shift == policy.memory.input_shift
    for key, value in model.policy.state_dict().items():
        assert torch.equal(value, loaded.policy.state_dict()[key])
