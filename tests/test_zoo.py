"""The RL Zoo: its hyperparameter files read by ``runners.ppo --hyperparams`` as they are, and its own command
line (``runners.zoo``) training MemoryPPO."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agents import MemoryPPO
from agents.schedules import LinearSchedule, parse_schedule
from runners import ppo
from runners.cli import UsageError, run_main

# The file of the issue, as a new user writes it.
ISSUE_FILE = """\
MiniGrid-MemoryS7-v0:
  n_envs: 2
  n_steps: 128
  batch_size: 128
  learning_rate: !!float 3e-4
  n_timesteps: !!float 1024
  policy: 'MlpPolicy'
"""

# A Zoo-style entry like ppo_lstm.yml's, keyed by the Zoo's id of this package's CartPole without velocities.
LSTM_ENTRY = """\
CartPoleNoVel-v1:
  normalize: true
  n_envs: 2
  n_timesteps: !!float 64
  policy: 'MlpLstmPolicy'
  n_steps: 32
  batch_size: 64
  gamma: 0.98
  learning_rate: lin_0.001
  clip_range: lin_0.2
  policy_kwargs: "dict(
                    ortho_init=False,
                    activation_fn=nn.ReLU,
                    lstm_hidden_size=16,
                    enable_critic_lstm=True,
                    net_arch=dict(pi=[16], vf=[16])
                  )"
"""
# The flags that say the same.
LSTM_FLAGS = [
    "--normalize", "--n-envs", "2", "--total-steps", "64", "--n-steps", "32", "--batch-size", "64",
    "--gamma", "0.98", "--lr", "lin_0.001", "--clip-range", "lin_0.2", "--memory", "lstm",
    "--hidden-size", "16", "--n-layers", "1", "--critic-memory", "separate",
    "--net-arch", "{'pi': [16], 'vf': [16]}", "--no-ortho-init",
    "--policy-kwargs", "dict(activation_fn=nn.ReLU)",
]  # fmt: skip


def settings_of(argv: list[str]) -> dict[str, object]:
    """The parsed settings of a command line, as the runner trains with them."""
    return vars(ppo.build_parser().parse_args(ppo.expand_hyperparams(argv)))


def test_the_issue_zoo_file_loads_into_the_same_settings_as_flags(tmp_path: Path) -> None:
    file = tmp_path / "zoo.yml"
    file.write_text(ISSUE_FILE)
    env = ["--env", "MiniGrid-MemoryS7-v0"]
    flags = [
        "--n-envs",
        "2",
        "--n-steps",
        "128",
        "--batch-size",
        "128",
        "--lr",
        "0.0003",
        "--total-steps",
        "1024",
    ]
    from_file = settings_of([*env, "--hyperparams", str(file)])
    assert from_file == settings_of([*env, *flags])
    assert from_file["lr"] == 3e-4 and from_file["total_steps"] == 1024 and from_file["memory"] == "tlb"


def test_a_zoo_lstm_entry_with_schedules_policy_kwargs_and_normalize_equals_its_flags(tmp_path: Path) -> None:
    file = tmp_path / "ppo_lstm.yml"
    file.write_text(LSTM_ENTRY)
    env = ["--env", "TLB-CartPoleNoVel-v1"]  # the entry is keyed by the Zoo's name of the same task
    from_file = settings_of([*env, "--hyperparams", str(file)])
    assert from_file == settings_of([*env, *LSTM_FLAGS])
    assert from_file["lr"] == LinearSchedule(0.001) and from_file["clip_range"] == LinearSchedule(0.2)
    assert from_file["normalize"] is True and from_file["critic_memory"] == "separate"


def test_memory_tlb_added_to_a_zoo_lstm_entry_gives_the_tlb_those_settings(tmp_path: Path) -> None:
    file = tmp_path / "ppo_lstm_tlb.yml"
    file.write_text(LSTM_ENTRY.replace('policy_kwargs: "dict(', "policy_kwargs: \"dict(memory='tlb', "))
    env = ["--env", "TLB-CartPoleNoVel-v1"]
    flags = [flag if flag != "lstm" else "tlb" for flag in LSTM_FLAGS]
    flags[flags.index("--hidden-size")] = "--d-model"  # lstm_hidden_size is the tlb's width
    assert settings_of([*env, "--hyperparams", str(file)]) == settings_of([*env, *flags])


def test_a_zoo_entry_trains_with_its_schedules_and_policy_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "ppo_lstm.yml"
    file.write_text(LSTM_ENTRY)
    run_dir = tmp_path / "run"
    argv = [
        "--env",
        "TLB-CartPoleNoVel-v1",
        "--hyperparams",
        str(file),
        "--eval-freq",
        "0",
        "--eval-episodes",
        "1",
    ]
    assert run_main(ppo.main, [*argv, "--no-progress", "--threads", "1", "--logdir", str(run_dir)]) == 0, (
        capsys.readouterr().err
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["lr"] == "lin_0.001" and "lin_0.2" in config["argv"]
    model = MemoryPPO.load(run_dir / "model.zip")
    assert model.lr_schedule(1.0) == pytest.approx(0.001) and model.lr_schedule(0.25) == pytest.approx(
        0.00025
    )
    assert model.clip_range(0.5) == pytest.approx(0.1)
    policy = model.policy
    assert policy.memory_name == "lstm" and policy.memory.hidden_size == 16
    assert policy.critic_memory_mode == "separate" and policy.activation_fn is torch.nn.ReLU
    assert policy.net_arch == {"pi": [16], "vf": [16]} and policy.ortho_init is False
    stats = sorted((run_dir / "checkpoints").glob("vecnormalize_*_steps.pkl"))
    from stable_baselines3.common.vec_env import VecNormalize

    from envs import make_vec_env

    assert stats and VecNormalize.load(str(stats[-1]), make_vec_env("TLB-CartPoleNoVel-v1")).gamma == 0.98
    # The run's own config.json, with its schedules and policy_kwargs expression, reads back on --resume.
    longer = ["--total-steps", str(model.num_timesteps + 64)]
    assert run_main(ppo.main, ["--resume", str(run_dir), "--no-progress", *longer]) == 0, (
        capsys.readouterr().err
    )


def test_zoo_files_with_anchors_merges_and_a_default_block(tmp_path: Path) -> None:
    file = tmp_path / "zoo.yml"
    file.write_text(
        "base: &base\n  n_envs: 4\n  learning_rate: lin_0.002\n"
        "CartPole-v1:\n  <<: *base\n  n_envs: 2\n"
        'default:\n  <<: *base\n  normalize: "dict(norm_obs=True, norm_reward=False)"\n'
    )
    merged = settings_of(["--env", "CartPole-v1", "--hyperparams", str(file)])
    assert merged["n_envs"] == 2 and merged["lr"] == LinearSchedule(0.002)
    fallback = settings_of(["--env", "Acrobot-v1", "--hyperparams", str(file)])
    assert fallback["n_envs"] == 4 and fallback["normalize"] is True
    assert fallback["normalize_kwargs"] == "dict(norm_obs=True, norm_reward=False)"


def test_the_shipped_memory_ppo_file_is_read_by_runners_ppo_too() -> None:
    settings = settings_of(["--env", "MiniGrid-MemoryS7-v0", "--hyperparams", "hyperparams/memory_ppo.yml"])
    assert settings["memory"] == "tlb" and settings["total_steps"] == 300_000 and settings["n_envs"] == 16
    assert settings["lr"] == 0.001 and settings["n_epochs"] == 8 and settings["ent_coef"] == 0.005


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{vec_env_wrapper: stable_baselines3.common.vec_env.VecMonitor}", "vec_env_wrapper is not"),
        ("{env_wrapper: gymnasium.wrappers.NoSuchWrapper}", "cannot import gymnasium.wrappers.NoSuchWrapper"),
        ("{policy: 'SomePolicy'}", "policy 'SomePolicy' is not a MemoryPPO policy"),
        ("{policy_kwargs: 'dict(net_arch=['}", "policy_kwargs 'dict(net_arch=[' does not evaluate"),
        ("{policy: MlpPolicy, policy_kwargs: 'dict(lstm_hidden_size=8)'}", "lstm_hidden_size need policy"),
        ("{learning_rate: lin_x}", "must be a positive number or a linear schedule"),
    ],
)
def test_zoo_keys_it_cannot_honour_are_one_line_errors(
    entry: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "zoo.yml"
    file.write_text(f"CartPole-v1: {entry}\n")
    argv = ["--env", "CartPole-v1", "--hyperparams", str(file), "--logdir", str(tmp_path / "run")]
    argv += ["--total-steps", "64", "--no-progress"]  # should a case ever train, briefly
    try:
        code = run_main(ppo.main, argv)
    except SystemExit as exit_:  # argparse rejects a bad value by itself
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_linear_schedules_are_the_zoos() -> None:
    schedule = parse_schedule("lin_0.001")
    assert isinstance(schedule, LinearSchedule) and str(schedule) == "lin_0.001"
    assert schedule(1.0) == 0.001 and schedule(0.0) == 0.0
    assert parse_schedule(str(schedule)) == schedule and parse_schedule("3e-4") == 3e-4
    for bad in ("lin_", "lin_-1", "0", "nan", "log_0.1"):
        with pytest.raises(ValueError, match="lin_0.001"):
            parse_schedule(bad)


def test_zoo_train_with_memory_ppo_writes_the_zoos_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("rl_zoo3")
    from runners import zoo

    monkeypatch.chdir(tmp_path)  # rl_zoo3 writes nothing outside -f, but keep the test's cwd clean anyway
    tiny = (
        "dict(memory='tlb', memory_kwargs=dict(d_model=16, n_heads=2), "
        "features_extractor_kwargs=dict(features_dim=16))"
    )
    argv = [
        "train", "--algo", "memory_ppo", "--env", "MiniGrid-MemoryS7-v0", "-n", "64", "--seed", "1",
        "--eval-freq", "-1", "--num-threads", "1", "-f", "logs", "--verbose", "0",
        "-params", "n_envs:2", "n_steps:32", "batch_size:32", "n_epochs:1", f"policy_kwargs:{tiny!r}",
    ]  # fmt: skip
    assert zoo.main(argv) == 0
    experiment = tmp_path / "logs" / "memory_ppo" / "MiniGrid-MemoryS7-v0_1"
    assert (experiment / "MiniGrid-MemoryS7-v0.zip").is_file()
    assert (experiment / "MiniGrid-MemoryS7-v0" / "config.yml").is_file()
    assert (experiment / "0.monitor.csv").is_file()
    model = MemoryPPO.load(experiment / "MiniGrid-MemoryS7-v0.zip")
    assert model.policy.memory_name == "tlb" and model.policy.memory.d_model == 16
    assert model.num_timesteps >= 64 and set(model.observation_space.spaces) == {
        "image",
        "direction",
        "mission",
    }
    # enjoy loads it back through the registered algorithm
    assert zoo.main(["enjoy", "--algo", "memory_ppo", "--env", "MiniGrid-MemoryS7-v0", "-f", "logs",
                     "-n", "20", "--no-render"]) == 0  # fmt: skip


def test_zoo_entry_point_refuses_an_unknown_script(capsys: pytest.CaptureFixture[str]) -> None:
    from runners import zoo

    assert zoo.main(["trian", "--algo", "memory_ppo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown script 'trian'" in err and len(err.splitlines()) == 1


def test_usage_error_is_the_runner_error() -> None:
    # zoo_settings raises the runners' UsageError, which run_main turns into one line and exit code 2.
    from agents.zoo_settings import zoo_settings

    with pytest.raises(UsageError, match="vec_env_wrapper"):
        zoo_settings({"vec_env_wrapper": "stable_baselines3.common.vec_env.VecMonitor"}, "test")
    assert zoo_settings({"frame_stack": 4, "learning_rate": 0.1}, "test") == {"frame_stack": 4, "lr": 0.1}


def test_zoo_env_wrapper_frame_stack_and_callback_apply_in_runners_ppo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "zoo.yml"
    file.write_text(
        "CartPole-v1:\n  n_envs: 2\n  n_steps: 32\n  batch_size: 64\n  n_timesteps: 128\n  frame_stack: 3\n"
        "  env_wrapper:\n    - envs.wrap_for_sb3\n"
        "    - gymnasium.wrappers.TimeLimit: {max_episode_steps: 7}\n"
        "  callback:\n"
        "    - stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes: {max_episodes: 10000}\n"
        "  policy_kwargs: \"dict(memory='none')\"\n"
    )
    run_dir = tmp_path / "run"
    argv = ["--env", "CartPole-v1", "--hyperparams", str(file), "--eval-freq", "0", "--eval-episodes", "2"]
    assert run_main(ppo.main, [*argv, "--no-progress", "--threads", "1", "--logdir", str(run_dir)]) == 0, (
        capsys.readouterr().err
    )
    config = json.loads((run_dir / "config.json").read_text())
    # envs.wrap_for_sb3 is what the runner's envs do already: only the TimeLimit is left to apply.
    assert json.loads(config["env_wrapper"]) == [{"gymnasium.wrappers.TimeLimit": {"max_episode_steps": 7}}]
    assert config["frame_stack"] == 3 and "StopTrainingOnMaxEpisodes" in config["callback"]
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["heldout"]["mean_length"] <= 7  # the wrapper cut the evaluation episodes too
    model = MemoryPPO.load(run_dir / "model.zip")
    assert model.observation_space.shape == (12,)  # 3 stacked CartPole observations
    # A callback that cannot be built is one line, before anything is written.
    bad = ["--callback", "stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes"]
    assert run_main(ppo.main, [*argv, *bad, "--logdir", str(tmp_path / "bad")]) == 2
    assert "max_episodes" in capsys.readouterr().err and not (tmp_path / "bad").exists()
