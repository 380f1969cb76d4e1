"""``runners.evaluate`` end to end on tiny models, and its answers to bad input: a documented JSON table,
a GIF, an attention plot, suite evaluation, and one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium.envs.classic_control.cartpole import CartPoleEnv
from PIL import Image

from agents import MemoryPPO
from agents.evaluation import evaluate_model
from agents.evaluation_table import evaluate_side
from agents.loading import load_model
from agents.training_envs import evaluation_envs
from envs import make_vec_env
from envs.suites import HELDOUT_SEEDS
from runners import evaluate
from runners.cli import run_main

ROW_FIELDS = {
    "env",
    "side",
    "protocol",
    "episodes",
    "successes",
    "success_rate",
    "success_ci95",
    "mean_return",
    "mean_length",
    "seeds",
}
TINY_POLICY: dict[str, Any] = dict(
    features_extractor_kwargs=dict(features_dim=16, channels=8, mission_dim=16), net_arch=[16]
)
TINY_TLB = dict(memory="tlb", memory_kwargs=dict(d_model=16, n_heads=2, chunk_size=4, n_latents=2))


def tiny_model(env_id: str, policy_kwargs: dict[str, Any], policy: str = "MultiInputPolicy") -> MemoryPPO:
    return MemoryPPO(
        policy,
        make_vec_env(env_id, 2, seed=0),
        n_steps=32,
        batch_size=64,
        sequence_length=16,
        n_epochs=1,
        policy_kwargs=policy_kwargs,
        seed=0,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny models: tlb trained a little on BabyAI and on MiniGrid Memory, untrained lstm and CartPole."""
    directory = tmp_path_factory.mktemp("models")
    paths = {}
    for name, env_id in (("tlb", "BabyAI-GoToLocal-v0"), ("memory", "MiniGrid-MemoryS7-v0")):
        model = tiny_model(env_id, {**TINY_POLICY, **TINY_TLB})
        model.learn(64)
        paths[name] = directory / f"{name}.zip"
        model.save(paths[name])
    lstm = dict(memory="lstm", memory_kwargs=dict(hidden_size=8))
    paths["lstm"] = directory / "lstm.zip"
    tiny_model("BabyAI-GoToLocal-v0", {**TINY_POLICY, **lstm}).save(paths["lstm"])
    paths["cartpole"] = directory / "cartpole.zip"
    tiny_model("CartPole-v1", dict(net_arch=[8], **lstm), policy="MlpPolicy").save(paths["cartpole"])
    # tlb with a separate critic memory: the policy's state holds the critic's under "critic_" keys.
    paths["tlb-critic"] = directory / "tlb-critic.zip"
    critic = {**TINY_POLICY, **TINY_TLB, "critic_memory": "separate"}
    tiny_model("BabyAI-GoToLocal-v0", critic).save(paths["tlb-critic"])
    data = paths["tlb"].read_bytes()
    paths["truncated"] = directory / "truncated.zip"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    return paths


def check_row(row: dict[str, Any], episodes: int) -> None:
    assert set(row) == ROW_FIELDS
    assert row["episodes"] == episodes
    assert 0.0 <= row["success_rate"] <= 1.0
    assert row["success_rate"] == pytest.approx(row["successes"] / row["episodes"])
    low, high = row["success_ci95"]
    assert 0.0 <= low <= row["success_rate"] <= high <= 1.0
    assert row["mean_length"] > 0 and isinstance(row["seeds"], str)


@pytest.mark.slow
def test_evaluate_env_writes_table_json_gif_and_attention(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = {name: tmp_path / name for name in ("rows.json", "episodes.gif", "attention.png")}
    argv = [
        str(models["tlb"]), "--env", "BabyAI-GoToLocal-v0", "--episodes", "6", "--n-envs", "2",
        "--json", str(out["rows.json"]), "--gif", str(out["episodes.gif"]), "--gif-episodes", "1",
        "--attention", str(out["attention.png"]),
    ]  # fmt: skip
    assert run_main(evaluate.main, argv) == 0
    stdout = capsys.readouterr().out
    assert "95% CI" in stdout and "BabyAI-GoToLocal-v0" in stdout and "Sampling rejected" not in stdout
    # BabyAI is evaluated with sampled actions by default, and every figure says so.
    assert "tlb memory, sampled actions" in stdout
    table_row = next(line for line in stdout.splitlines() if line.startswith("heldout "))
    assert " sampled " in table_row
    assert "sampled actions" in stdout.split("gif:")[1] and "sampled actions" in stdout.split("attention:")[1]
    # The attention plot reports the slow latents' diversity (their collapse into one vector shows there).
    assert "latents' mean pairwise cosine" in stdout.split("attention:")[1]

    rows = json.loads(out["rows.json"].read_text())
    assert isinstance(rows, list) and len(rows) == 1
    check_row(rows[0], episodes=6)
    assert rows[0]["protocol"] == "sampled"
    assert rows[0]["env"] == "BabyAI-GoToLocal-v0" and rows[0]["side"] == "heldout"
    assert rows[0]["seeds"].startswith("1000000000-")  # evaluation levels are never training levels

    with Image.open(out["episodes.gif"]) as gif:
        assert gif.format == "GIF" and gif.n_frames > 1
    with Image.open(out["attention.png"]) as png:
        assert png.format == "PNG" and png.width > 100 and png.height > 100
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow
def test_evaluate_suite_reports_every_side(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows_path = tmp_path / "rows.json"
    argv = [str(models["memory"]), "--suite", "memory-length", "--episodes", "2", "--n-envs", "2"]
    assert run_main(evaluate.main, [*argv, "--deterministic", "--json", str(rows_path)]) == 0
    rows = json.loads(rows_path.read_text())
    assert [row["side"] for row in rows] == ["train", "MemoryS9", "MemoryS11", "MemoryS13"]
    assert {row["protocol"] for row in rows} == {"greedy"}  # --deterministic overrides the MiniGrid default
    assert [row["env"] for row in rows][-1] == "MiniGrid-MemoryS13-v0"
    for row in rows:
        check_row(row, episodes=2)
    assert rows[0]["seeds"].startswith("0-") and rows[1]["seeds"].startswith("1000000000-")
    table = capsys.readouterr().out
    assert all(row["side"] in table for row in rows)


@pytest.mark.slow
def test_evaluate_a_recurrent_model_with_a_gif(models: dict[str, Path], tmp_path: Path) -> None:
    gif_path, rows_path = tmp_path / "lstm.gif", tmp_path / "rows.json"
    argv = [str(models["lstm"]), "--suite", "held-out-pairs", "--episodes", "3", "--n-envs", "3"]
    assert run_main(evaluate.main, [*argv, "--gif", str(gif_path), "--json", str(rows_path)]) == 0
    rows = json.loads(rows_path.read_text())
    assert [row["side"] for row in rows] == ["train", "held-out-pairs"]
    for row in rows:
        check_row(row, episodes=3)
    with Image.open(gif_path) as gif:
        assert gif.n_frames > 1


def test_cartpole_is_greedy_by_default_and_has_no_success_signal(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows_path = tmp_path / "rows.json"
    argv = [str(models["cartpole"]), "--env", "CartPole-v1", "--episodes", "2", "--n-envs", "2"]
    assert run_main(evaluate.main, [*argv, "--json", str(rows_path)]) == 0
    out = capsys.readouterr().out
    assert "lstm memory, greedy actions" in out and "no success signal" in out
    (row,) = json.loads(rows_path.read_text())  # strict JSON: no NaN
    assert row["protocol"] == "greedy" and row["successes"] is None and row["success_rate"] is None
    assert row["success_ci95"] is None and row["mean_length"] > 0
    assert run_main(evaluate.main, [*argv, "--stochastic", "--json", str(rows_path)]) == 0
    assert json.loads(rows_path.read_text())[0]["protocol"] == "sampled"


def test_runners_and_runners_evaluate_draw_the_same_explicit_heldout_levels(
    models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a plain env, the runners' held-out evaluation (``agents.training_envs.evaluation_envs``, what the
    periodic and final evaluations run) and ``runners.evaluate --env`` reset every episode with an explicit
    held-out seed, the same sequence for the same envs and seed: never the env's own generator after a first
    seeded reset (which the runners did before)."""
    model = load_model(models["cartpole"])
    n_envs, seed, episodes = 3, 2, 7
    reset_seeds: list[int | None] = []
    original_reset = CartPoleEnv.reset

    def spy(self: CartPoleEnv, *, seed: int | None = None, options: dict | None = None) -> Any:
        reset_seeds.append(seed)
        return original_reset(self, seed=seed, options=options)

    monkeypatch.setattr(CartPoleEnv, "reset", spy)
    envs, descriptions = evaluation_envs("CartPole-v1", None, n_envs, seed)
    evaluate_model(model, envs["heldout"], episodes, deterministic=True)
    envs["heldout"].close()
    by_runners, reset_seeds[:] = list(reset_seeds), []

    argv = ["model.zip", "--env", "CartPole-v1", "--n-envs", str(n_envs), "--seed", str(seed)]
    args = evaluate.build_parser().parse_args([*argv, "--episodes", str(episodes), "--deterministic"])
    (side,) = evaluate.evaluation_sides(args)
    row = evaluate_side(
        model,
        side,
        args.episodes,
        args.deterministic,
        n_envs=args.n_envs,
        seed=args.seed,
        subproc=args.subproc,
    )
    by_evaluate = list(reset_seeds)

    assert len(by_runners) >= episodes and by_runners == by_evaluate
    assert all(s is not None and s in HELDOUT_SEEDS for s in by_runners)
    # Env rank cycles through every n_envs-th held-out seed from the rank-th, starting where seed says.
    assert by_runners[:n_envs] == [HELDOUT_SEEDS[rank::n_envs][seed + rank] for rank in range(n_envs)]
    assert descriptions["heldout"] == f"CartPole-v1, seeds {row['seeds']}"


def test_attention_plot_of_a_tlb_model_with_a_separate_critic_memory(
    models: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "attention.png"
    argv = [str(models["tlb-critic"]), "--env", "BabyAI-GoToLocal-v0", "--episodes", "1", "--n-envs", "1"]
    assert run_main(evaluate.main, [*argv, "--attention", str(png), "--deterministic"]) == 0
    assert "greedy actions" in capsys.readouterr().out.split("attention:")[1]
    with Image.open(png) as image:
        assert image.format == "PNG"


def test_attention_reads_come_from_the_policy_step() -> None:
    """``predict_with_reads`` is ``predict`` plus the reads: same actions and state, rows summing to 1."""
    model = tiny_model("BabyAI-GoToLocal-v0", {**TINY_POLICY, **TINY_TLB, "critic_memory": "separate"})
    env = model.get_env()
    obs = env.reset()
    state_a = state_b = None
    starts = np.ones(env.num_envs, dtype=bool)
    for _ in range(6):
        actions_a, state_a = model.predict(obs, state=state_a, episode_start=starts, deterministic=True)
        actions_b, state_b, reads = model.policy.predict_with_reads(obs, state_b, starts, deterministic=True)
        assert np.array_equal(actions_a, actions_b) and state_a.keys() == state_b.keys()
        assert all(np.allclose(state_a[key], state_b[key]) for key in state_a)
        assert any(key.startswith("critic_") for key in state_b)
        assert reads.shape == (env.num_envs, 2) and np.allclose(reads.sum(axis=1), 1.0, atol=1e-5)
        obs, _, dones, _ = env.step(actions_a)
        starts = dones


def run_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one stderr line of a failing ``runners.evaluate ARGV`` (exit code 2)."""
    try:
        code = run_main(evaluate.main, argv)
    except SystemExit as exit_:  # argparse exits by itself on bad flags
        code = int(exit_.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("cartpole", ["--env", "BabyAI-GoToLocal-v0"], "trained on observation space Box(4 float32)"),
        ("truncated", ["--env", "BabyAI-GoToLocal-v0"], "truncated"),
        ("missing", ["--env", "BabyAI-GoToLocal-v0"], "does not exist"),
        ("tlb", ["--suite", "memory-lenght"], "unknown suite 'memory-lenght': use one of unseen-seeds"),
        ("tlb", ["--env", "BabyAI-GoToLocl-v0"], "did you mean BabyAI-GoToLocal-v0"),
        ("tlb", ["--suite", "unseen-seeds"], "pass --env"),
        ("tlb", ["--suite", "memory-length", "--env", "BabyAI-GoTo-v0"], "--env does not apply"),
        ("tlb", [], "pass --env ENV or --suite NAME"),
        ("lstm", ["--env", "BabyAI-GoToLocal-v0", "--attention", "{tmp}/a.png"], "has memory lstm"),
        ("tlb", ["--env", "BabyAI-GoToLocal-v0", "--json", "{tmp}/no/such/dir.json"], "does not exist"),
        ("tlb", ["--env", "BabyAI-GoToLocal-v0", "--deterministic", "--stochastic"], "not allowed with"),
        ("tlb", ["--env", "BabyAI-GoToLocal-v0", "--device", "cuda:7"], "--device cuda:7"),
        ("tlb", ["--env", "BabyAI-GoToLocal-v0", "--device", "gpu"], "not a torch device"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    models: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model: str,
    extra: list[str],
    message: str,
) -> None:
    path = models.get(model, tmp_path / "missing.zip")
    json_path = tmp_path / "rows.json"
    argv = [str(path), *[arg.format(tmp=tmp_path) for arg in extra], "--episodes", "2"]
    if "--json" not in extra:
        argv += ["--json", str(json_path)]
    err = run_error(argv, capsys)
    assert message in err
    assert not json_path.exists() and not (tmp_path / "a.png").exists()  # nothing written


def test_load_model_names_the_file_and_the_problem(models: dict[str, Path], tmp_path: Path) -> None:
    assert isinstance(load_model(models["tlb"]), MemoryPPO)
    assert isinstance(load_model(str(models["tlb"])[: -len(".zip")]), MemoryPPO)  # like SB3's load
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    for path, problem in (
        (models["truncated"], "truncated"),
        (garbage, "not a readable zip"),
        (tmp_path, "is a directory"),
    ):
        with pytest.raises(ValueError, match=problem) as error:
            load_model(path)
        assert str(path) in str(error.value) and "\n" not in str(error.value)
