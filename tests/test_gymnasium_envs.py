"""Any gymnasium env through ``envs.make_env``: third-party ids (POPGym) with and without the module prefix,
observation spaces SB3 cannot take flattened, and CartPole without velocities registered."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from envs import CARTPOLE_NO_VELOCITY_ID, make_env, make_vec_env
from envs.classic import flatten_if_needed, sb3_takes

POPGYM_IDS = sorted(env_id for env_id in gym.registry if env_id.startswith("popgym-"))


@pytest.mark.parametrize("env_id", ["popgym-RepeatPreviousEasy-v0", "popgym:popgym-RepeatPreviousEasy-v0"])
def test_third_party_ids_with_and_without_the_module_prefix(env_id: str) -> None:
    env = make_env(env_id, seed=0)  # POPGym's envs refuse a render_mode argument, even None
    assert env.observation_space == spaces.Discrete(4)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_an_unknown_module_prefix_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="cannot import module 'popgymm'"):
        make_env("popgymm:popgym-RepeatPreviousEasy-v0")


@pytest.mark.parametrize("env_id", POPGYM_IDS)
def test_every_popgym_observation_space_reaches_sb3_in_a_form_it_takes(env_id: str) -> None:
    env = make_env(env_id, seed=0)
    assert sb3_takes(env.observation_space), env.observation_space
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        assert env.observation_space.contains(
            np.asarray(obs, dtype=getattr(env.observation_space, "dtype", None))
        )
        obs, *_ = env.step(env.action_space.sample())


def test_tuple_observations_flatten_to_one_hot_float_boxes() -> None:
    env = make_env("popgym-AutoencodeEasy-v0", seed=0)
    assert env.observation_space == spaces.Box(0.0, 1.0, (6,), np.float32)  # Discrete(2) + Discrete(4)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs[:2].sum() == 1 and obs[2:].sum() == 1


def test_spaces_without_a_flat_form_are_a_one_line_error() -> None:
    class SequenceEnv(gym.Env):
        observation_space = spaces.Sequence(spaces.Discrete(2))
        action_space = spaces.Discrete(2)

    with pytest.raises(ValueError, match="cannot be flattened for Stable-Baselines3"):
        flatten_if_needed(SequenceEnv())


def test_cartpole_without_velocities_is_registered() -> None:
    env = make_vec_env(CARTPOLE_NO_VELOCITY_ID, n_envs=2, seed=0)
    assert env.observation_space.shape == (2,)
    obs = env.reset()
    full = gym.make("CartPole-v1")
    full_obs, _ = full.reset(seed=0)
    np.testing.assert_allclose(obs[0], full_obs[[0, 2]])  # position and angle, the velocities dropped
    single, limits = make_env(CARTPOLE_NO_VELOCITY_ID), []
    while hasattr(single, "env"):  # CartPole-v1's own 500-step limit sits inside the wrapper
        if isinstance(single, gym.wrappers.TimeLimit):
            limits.append(single._max_episode_steps)
        single = single.env
    assert limits == [500]


# ---------------------------------------------------------------------- runners.ppo on any gymnasium env

from pathlib import Path  # noqa: E402

from runners import ppo  # noqa: E402
from runners.cli import run_main  # noqa: E402

TINY_PPO = [
    "--total-steps", "64", "--n-envs", "2", "--n-steps", "32", "--batch-size", "64",
    "--sequence-length", "16", "--n-epochs", "1", "--eval-freq", "64", "--eval-episodes", "1",
    "--no-progress", "--features-dim", "16",
]  # fmt: skip
TINY_MEMORY = {
    "tlb": ["--d-model", "16", "--n-heads", "2", "--chunk-size", "4", "--n-latents", "2"],
    "lstm": ["--hidden-size", "16"],
    "gru": ["--hidden-size", "16"],
    "transformer": ["--d-model", "16", "--n-heads", "2", "--window", "4"],
    "none": [],
}
# One POPGym env per observation space it uses: Discrete, Tuple (flattened), MultiDiscrete, Box.
POPGYM_SPACES = [
    "popgym-RepeatPreviousEasy-v0",
    "popgym-AutoencodeEasy-v0",
    "popgym-CountRecallEasy-v0",
    "popgym-VelocityOnlyCartpoleEasy-v0",
]


@pytest.mark.parametrize("memory", list(TINY_MEMORY))
@pytest.mark.parametrize("env_id", [*POPGYM_SPACES, "CartPole-v1", "Pendulum-v1"])
def test_runners_ppo_trains_one_update_on_gymnasium_and_popgym_envs(
    env_id: str, memory: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--env", env_id, "--memory", memory, *TINY_MEMORY[memory], *TINY_PPO, "--logdir", str(tmp_path)]
    assert run_main(ppo.main, argv) == 0, capsys.readouterr().err
    assert (tmp_path / "model.zip").is_file() and (tmp_path / "final_eval.json").is_file()


def test_hyperparams_yaml_round_trips_through_runners_ppo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    import yaml

    settings = {
        "n_envs": 2, "n_steps": 32, "batch_size": 64, "sequence_length": 16, "lr": 0.002, "total_steps": 64,
        "eval_freq": 64, "eval_episodes": 1, "net_arch": {"pi": [], "vf": [32]}, "ortho_init": False,
        "normalize": True, "memory": "lstm", "hidden_size": 16,
    }  # fmt: skip
    file = tmp_path / "hyperparams.yml"
    file.write_text(yaml.safe_dump({CARTPOLE_NO_VELOCITY_ID: settings, "CartPole-v1": {"lr": 1.0}}))
    run_dir = tmp_path / "run"
    argv = ["--env", CARTPOLE_NO_VELOCITY_ID, "--hyperparams", str(file), "--lr", "0.003", "--no-progress"]
    assert run_main(ppo.main, [*argv, "--logdir", str(run_dir)]) == 0, capsys.readouterr().err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["lr"] == 0.003  # the command line wins over the file
    assert config["n_envs"] == 2 and config["memory"] == "lstm" and config["normalize"] is True
    assert config["net_arch"] == {"pi": [], "vf": [32]} and config["ortho_init"] is False
    assert "--hyperparams" not in config["argv"] and "--hyperparams" in config["command"]
    from agents import MemoryPPO

    model = MemoryPPO.load(run_dir / "model.zip")
    assert model.policy.net_arch == {"pi": [], "vf": [32]} and model.policy.ortho_init is False
    assert list((run_dir / "checkpoints").glob("vecnormalize_*_steps.pkl"))
    # The benchmark files are read the same way: their task's budget and hyperparameters for that env.
    words = ppo.expand_hyperparams(
        ["--env", "MiniGrid-MemoryS7-v0", "--hyperparams", "envs/benchmarks/memory.yaml"]
    )
    assert words[words.index("--total-steps") + 1] == "300000" and words[-2:] == [
        "--env",
        "MiniGrid-MemoryS7-v0",
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("CartPole-v1: {learnin_rate: 0.1}", "unknown setting 'learnin_rate'"),
        ("Pendulum-v1: {lr: 0.1}", "has no settings for CartPole-v1"),
        ("CartPole-v1: {lr: -1}", "argument --lr: must be a positive number"),
        ("CartPole-v1: [", "is not valid YAML"),
    ],
)
def test_bad_hyperparams_files_are_one_line_errors(
    content: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "bad.yml"
    file.write_text(content)
    argv = ["--env", "CartPole-v1", "--hyperparams", str(file), "--logdir", str(tmp_path / "run")]
    try:
        code = run_main(ppo.main, argv)
    except SystemExit as exit_:  # argparse rejects a bad value by itself
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()
