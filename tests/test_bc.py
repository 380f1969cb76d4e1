"""Demonstrations from the BabyAI bot and behavioural cloning: the demos file, replay, the BC trainer and
its runner, and loading a BC policy to fine-tune it (``init_from``). Tiny networks, a handful of demos."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

from agents import MemoryPPO, demo_generation
from agents.bc import (
    BCConfig,
    BCTrainer,
    ImitationDefaultsWarning,
    discounted_returns,
    imitation_memory_kwargs,
)
from agents.demos import Demos, load_demos, replay_episode, save_demos
from agents.evaluation import evaluate_model
from agents.factory import build_model
from agents.loading import init_from
from envs import make_env, make_vec_env
from envs.suites import HELDOUT_SEED_START
from policies.memories.tlb import PAPER_SETTINGS
from runners import bc, demos, evaluate
from runners.cli import parser_options, run_main

ENV_ID = "BabyAI-GoToLocal-v0"
TINY_MEMORY = [
    "--memory",
    "tlb",
    "--d-model",
    "16",
    "--n-heads",
    "2",
    "--chunk-size",
    "4",
    "--n-latents",
    "2",
]
TINY_MEMORY_KWARGS = dict(d_model=16, n_heads=2, chunk_size=4, n_latents=2)


def exit_code(main: object, argv: list[str]) -> int:
    """The exit code of a runner's ``main`` (argparse exits by itself on bad flags)."""
    try:
        return run_main(main, argv)  # type: ignore[arg-type]
    except SystemExit as exit_:
        return int(exit_.code or 0)


def generate(path: Path, episodes: int, *extra: str) -> None:
    argv = ["--env", ENV_ID, "--episodes", str(episodes), "--out", str(path), "--no-progress", *extra]
    assert run_main(demos.main, argv) == 0


@pytest.fixture(scope="module")
def demos_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 bot episodes of GoToLocal (two workers): enough for a validation split and a falling loss."""
    path = tmp_path_factory.mktemp("demos") / "gotolocal.npz"
    generate(path, 30, "--workers", "2")
    return path


def tiny_model(
    env_id: str = ENV_ID,
    memory_kwargs: dict | None = None,
    encoder_channels: int | None = None,
    policy_kwargs: dict | None = None,
) -> MemoryPPO:
    env = make_vec_env(env_id, n_envs=2, seed=0)
    return build_model(
        env,
        "tlb",
        memory_kwargs or TINY_MEMORY_KWARGS,
        features_dim=16,
        encoder_channels=encoder_channels,
        policy_kwargs=policy_kwargs,
    )


# ---------------------------------------------------------------------- the demos file


def test_demos_file_round_trip(demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stored = load_demos(demos_file, env_id=ENV_ID)
    assert stored.env_id == ENV_ID and stored.n_episodes == 30
    seeds = stored.seeds.tolist()
    assert seeds == sorted(set(seeds)) and max(seeds) < HELDOUT_SEED_START
    assert stored.observations["image"].dtype == np.uint8 and stored.observations["image"].shape[1:] == (
        7,
        7,
        3,
    )
    assert stored.observations["mission"].shape == (stored.n_steps, 72)
    env = make_env(ENV_ID)
    stored.check_spaces(env.observation_space, env.action_space)
    assert stored.metadata["generator"] == demo_generation.BOT_NAME

    copy = tmp_path / "copy.npz"
    save_demos(stored, copy)
    again = load_demos(copy)
    for name in ("actions", "rewards", "episode_lengths", "seeds", "skipped_seeds"):
        assert np.array_equal(getattr(again, name), getattr(stored, name)), name
    for key, value in stored.observations.items():
        assert np.array_equal(again.observations[key], value) and again.observations[key].dtype == value.dtype
    assert again.observation_space == stored.observation_space and again.metadata == stored.metadata
    assert not list(tmp_path.glob(".*tmp*")), "the temporary file of the atomic write is left behind"


def test_appending_keeps_old_episodes_and_continues_the_seeds(demos_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "demos.npz"
    path.write_bytes(demos_file.read_bytes())
    old = load_demos(path)
    generate(path, 5, "--seed", "0")  # --seed 0 is below the stored seeds: appending continues after them
    new = load_demos(path)
    assert new.n_episodes == old.n_episodes + 5
    first = new.subset(np.arange(old.n_episodes))
    for key, value in old.observations.items():
        assert np.array_equal(first.observations[key], value)
    assert np.array_equal(first.actions, old.actions) and np.array_equal(first.seeds, old.seeds)
    added = new.seeds[old.n_episodes :]
    assert added.min() > max(old.seeds.max(), old.skipped_seeds.max(initial=-1))
    assert len(set(new.seeds.tolist())) == new.n_episodes


def test_every_stored_episode_replays_to_success(demos_file: Path) -> None:
    stored = load_demos(demos_file)
    env = make_env(ENV_ID)
    for index in range(stored.n_episodes):
        result = replay_episode(stored, index, env)
        assert result.observations_match, f"episode {index}: observation {result.first_mismatch} differs"
        assert result.success and result.length == stored.episode_lengths[index], f"episode {index}"
        assert stored.rewards[stored.episode_slice(index)][-1] > 0


def test_noisy_demos_store_the_bots_actions_and_replay_to_success(tmp_path: Path) -> None:
    """DART: random moves are executed but the bot's actions stored; replay redraws the same moves, so every
    episode still replays to success, and the bot recovered from moves it did not choose."""
    clean, noisy = tmp_path / "clean.npz", tmp_path / "noisy.npz"
    generate(clean, 8)
    generate(noisy, 8, "--noise", "0.3")
    plain, stored = load_demos(clean), load_demos(noisy)
    assert stored.metadata["noise"] == 0.3 and plain.metadata["noise"] == 0.0
    env = make_env(ENV_ID)
    for index in range(stored.n_episodes):
        result = replay_episode(stored, index, env)
        assert result.observations_match and result.success, f"episode {index}"
    # Some moves were replaced: the bot needed more steps than on the same levels without noise.
    same = np.intersect1d(plain.seeds, stored.seeds)
    assert len(same) >= 6
    lengths = dict(zip(stored.seeds.tolist(), stored.episode_lengths.tolist()))
    plain_lengths = dict(zip(plain.seeds.tolist(), plain.episode_lengths.tolist()))
    assert sum(lengths[s] for s in same) > sum(plain_lengths[s] for s in same)
    # Replaying the stored (bot) actions without the noise's moves does not reproduce the episodes.
    unnoised = Demos(**{**vars(stored), "metadata": {**stored.metadata, "noise": 0.0}})
    assert not all(replay_episode(unnoised, i, env).observations_match for i in range(stored.n_episodes))


def test_appending_with_another_noise_is_a_one_line_error(
    demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demos.npz"
    path.write_bytes(demos_file.read_bytes())
    argv = ["--env", ENV_ID, "--episodes", "2", "--out", str(path), "--no-progress", "--noise", "0.2"]
    assert exit_code(demos.main, argv) == 2
    err = capsys.readouterr().err
    assert "generated with noise 0.0, not 0.2" in err and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == demos_file.read_bytes()


def test_demos_of_another_env_is_a_one_line_error(
    demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = demos_file.read_bytes()
    argv = ["--env", "BabyAI-GoToObj-v0", "--episodes", "2", "--out", str(demos_file), "--no-progress"]
    assert exit_code(demos.main, argv) == 2
    err = capsys.readouterr().err
    assert f"holds demonstrations of {ENV_ID}, not BabyAI-GoToObj-v0" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert demos_file.read_bytes() == before

    run_dir = tmp_path / "run"
    argv = ["--demos", str(demos_file), "--env", "BabyAI-GoToObj-v0", "--logdir", str(run_dir), *TINY_MEMORY]
    assert exit_code(bc.main, argv) == 2
    err = capsys.readouterr().err
    assert "holds demonstrations of" in err and len(err.strip().splitlines()) == 1
    assert not run_dir.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env", "MiniGrid-Empty-5x5-v0"], "is not a BabyAI level"),
        (["--episodes", "0"], "--episodes: must be a positive integer, got 0"),
        (["--seed", str(HELDOUT_SEED_START)], "held-out seeds start at"),
        (["--noise", "1.5"], "--noise: must be in [0, 1), got 1.5"),
    ],
)
def test_demos_cli_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    path = tmp_path / "demos.npz"
    assert exit_code(demos.main, ["--episodes", "2", "--out", str(path), "--no-progress", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not path.exists()


# ---------------------------------------------------------------------- the BC trainer


def test_windows_and_padding_do_not_change_the_forward_pass(demos_file: Path) -> None:
    """The scheme is exact: a batch padded to its longest episode gives each episode the losses it gets
    alone, and windows of 2 steps with the state carried give the losses of whole episodes."""
    stored = load_demos(demos_file)
    model = tiny_model()
    longest = int(np.argmax(stored.episode_lengths))
    shortest = int(np.argmin(stored.episode_lengths))
    episodes = np.array([longest, shortest])
    trainer = BCTrainer(model, stored, BCConfig(val_fraction=0.0))
    with torch.no_grad():
        together = trainer.run_batch(trainer.data.batch(episodes), train=False)
        alone = [trainer.run_batch(trainer.data.batch(episodes[i : i + 1]), train=False) for i in range(2)]
        trainer.config.sequence_length = 2
        windows = trainer.run_batch(trainer.data.batch(episodes), train=False)
    assert together.steps == stored.episode_lengths[episodes].sum()
    assert together.cross_entropy == pytest.approx(sum(t.cross_entropy for t in alone), rel=1e-5)
    assert together.value_error == pytest.approx(sum(t.value_error for t in alone), rel=1e-5)
    assert windows.cross_entropy == pytest.approx(together.cross_entropy, rel=1e-5)
    assert windows.correct == together.correct


CRITIC_MEMORY_MODES = ["shared", "separate", "detached", "none"]


@pytest.mark.parametrize("critic_memory", CRITIC_MEMORY_MODES)
def test_the_value_head_is_trained_on_the_input_ppo_gives_it(demos_file: Path, critic_memory: str) -> None:
    """For every critic_memory, the value head's input in BC is, step for step, the one ``predict_values``
    gives it in the env (the separate critic memory, the linear critic features, the actor's output), not
    the actor memory's output whatever the mode."""
    stored = load_demos(demos_file)
    model = tiny_model(policy_kwargs=dict(critic_memory=critic_memory))
    policy = model.policy
    policy.set_training_mode(False)
    trainer = BCTrainer(model, stored, BCConfig(val_fraction=0.0))
    batch = trainer.data.batch(np.array([0, 1, 2]))
    n_rows, length = batch.mask.shape
    seen: list[torch.Tensor] = []
    hook = policy.value_net.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    try:
        with torch.no_grad():
            trainer.run_batch(batch, train=False)
            trained = seen.pop().view(n_rows, length, -1)
            state = policy.initial_state(n_rows)
            for t in range(length):
                obs = {key: value[:, t] for key, value in batch.observations.items()}
                starts = torch.full((n_rows,), t == 0)
                policy.predict_values(obs, state, starts)
                _, _, state = policy.memory_latents(obs, state, starts)
    finally:
        hook.remove()
    stepped = torch.stack(seen, dim=1)  # [n_rows, length, width]
    assert stepped.shape == trained.shape
    mask = batch.mask
    torch.testing.assert_close(trained[mask], stepped[mask], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("critic_memory", CRITIC_MEMORY_MODES)
def test_the_value_loss_trains_only_what_critic_memory_lets_it(demos_file: Path, critic_memory: str) -> None:
    """The value loss's gradient (that of vf_coef=1 less that of vf_coef=0, same batch) reaches the actor's
    memory and the shared encoder only with "shared"; with "detached" it reaches neither, with "separate"
    only the critic memory (and the encoder both read), with "none" only the critic's linear features."""
    stored = load_demos(demos_file)
    model = tiny_model(policy_kwargs=dict(critic_memory=critic_memory))
    policy = model.policy
    policy.set_training_mode(False)  # same forward pass in both runs
    trainer = BCTrainer(model, stored, BCConfig(val_fraction=0.0))
    batch = trainer.data.batch(np.array([0, 1, 2]))

    def gradients(vf_coef: float) -> dict[str, torch.Tensor]:
        trainer.config.vf_coef = vf_coef
        policy.zero_grad(set_to_none=True)
        trainer.run_batch(batch, train=True)
        return {
            name: torch.zeros_like(p) if p.grad is None else p.grad.clone()
            for name, p in policy.named_parameters()
        }

    without, with_value = gradients(0.0), gradients(1.0)

    def value_gradient(prefix: str) -> float:
        names = [name for name in with_value if name.startswith(prefix)]
        assert names, prefix
        return sum(float((with_value[name] - without[name]).abs().sum()) for name in names)

    assert value_gradient("value_net.") > 0
    trains_actor_memory = critic_memory == "shared"
    assert (value_gradient("memory.") > 0) == trains_actor_memory
    assert (value_gradient("features_extractor.") > 0) == (critic_memory != "detached")
    if critic_memory == "separate":
        assert value_gradient("critic_memory.") > 0
    if critic_memory == "none":
        assert value_gradient("critic_features.") > 0


def test_value_targets_are_discounted_demo_returns(demos_file: Path) -> None:
    stored = load_demos(demos_file)
    returns = discounted_returns(stored, gamma=0.5)
    steps = stored.episode_slice(0)
    final = stored.rewards[steps.stop - 1]
    assert returns[steps.stop - 1] == pytest.approx(final)
    assert returns[steps.start] == pytest.approx(final * 0.5 ** (steps.stop - 1 - steps.start))


@pytest.mark.slow
def test_bc_runner_lowers_validation_loss_and_saves_a_memory_ppo_model(
    demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "bc"
    argv = [
        "--demos", str(demos_file), "--env", ENV_ID, *TINY_MEMORY, "--features-dim", "16", "--epochs", "6",
        "--encoder-channels", "8", "--batch-episodes", "8", "--lr", "3e-3", "--val-fraction", "0.2",
        "--eval-freq", "3", "--eval-episodes", "2", "--threads", "1", "--no-progress",
        "--logdir", str(run_dir),
    ]  # fmt: skip
    assert run_main(bc.main, argv) == 0
    out = capsys.readouterr().out
    assert "runners.bc summary" in out and "frames/s" in out
    # The fine-tuning command builds the same encoder, so its --init-from fits.
    assert "--features-dim 16 --encoder-channels 8 --init-from" in out
    # The run directory and tensorboard command come first; BabyAI is evaluated with sampled actions.
    assert out.index(f"run directory {run_dir}") < out.index("runners.bc summary")
    assert f"watch it with: tensorboard --logdir {run_dir}" in out
    success = next(
        line for line in out.split("runners.bc summary")[1].splitlines() if "success heldout" in line
    )
    assert "episodes (sampled actions), length" in success

    rows = [line.split(",") for line in (run_dir / "progress.csv").read_text().splitlines()]
    header, values = rows[0], rows[1:]
    val_loss = [float(row[header.index("bc/val_loss")]) for row in values]
    assert len(val_loss) == 7 and val_loss[-1] < val_loss[0]
    assert any(row[header.index("eval/heldout/success_rate")] for row in values)
    assert list(run_dir.glob("events.out.tfevents.*"))
    config = json.loads((run_dir / "config.json").read_text())
    # --memory tlb takes the imitation preset (tlb-paper's settings) where no flag says otherwise.
    assert config["memory_kwargs"] == {**TINY_MEMORY_KWARGS, **PAPER_SETTINGS} and config["val_episodes"] == 6
    assert config["imitation_preset"] == PAPER_SETTINGS
    assert "with the imitation preset --input-shift 0 --no-normalize-latents" in out
    final = json.loads((run_dir / "final_eval.json").read_text())
    assert final["heldout"]["episodes"] == 2
    assert config["stochastic_eval"] is True and final["heldout"]["protocol"] == "sampled"

    model = MemoryPPO.load(run_dir / "model.zip")
    assert model.policy.memory_name == "tlb"
    assert model.policy.features_extractor.cell_embedding.embedding_dim == 8
    # The saved model records the tlb options left at their defaults too (Memory.recorded_settings).
    assert model.policy.memory_kwargs == {
        **TINY_MEMORY_KWARGS,
        **PAPER_SETTINGS,
        **model.policy.memory.recorded_settings(),
    }
    assert model.policy.memory.input_shift == 0
    result = evaluate_model(model, make_vec_env(ENV_ID, n_envs=2, seed=HELDOUT_SEED_START), n_episodes=2)
    assert result.episodes == 2
    table = tmp_path / "eval.json"
    evaluate_argv = [str(run_dir / "model.zip"), "--env", ENV_ID, "--episodes", "2", "--n-envs", "2"]
    assert run_main(evaluate.main, [*evaluate_argv, "--json", str(table)]) == 0
    assert json.loads(table.read_text())[0]["episodes"] == 2

    # The BC model initialises a PPO model of the same settings (the summary's fine-tune command names them):
    # init_from copies every weight.
    fine_tune = next(line for line in out.splitlines() if "fine-tune" in line)
    assert "--memory tlb --input-shift 0 --no-normalize-latents --d-model 16" in fine_tune
    fresh = tiny_model(memory_kwargs={**TINY_MEMORY_KWARGS, **PAPER_SETTINGS}, encoder_channels=8)
    init_from(fresh, run_dir / "model.zip")
    for key, value in model.policy.state_dict().items():
        assert torch.equal(fresh.policy.state_dict()[key], value), key


def test_keep_best_ends_with_the_weights_of_the_best_validation_epoch(demos_file: Path) -> None:
    """Early stopping without stopping: validation accuracies scripted to peak at epoch 2 of 4, the trainer
    ends (and evaluates) with epoch 2's weights; without keep_best it ends with epoch 4's."""
    scripted = iter([(2.0, 0.1), (1.0, 0.5), (0.5, 0.9), (0.4, 0.3), (0.3, 0.2)])  # epoch 0 first
    config = BCConfig(epochs=4, batch_episodes=8, lr=3e-3, val_fraction=0.2, eval_freq=0, keep_best=True)
    trainer = BCTrainer(tiny_model(), load_demos(demos_file), config)
    trainer.validate = lambda: next(scripted)  # type: ignore[method-assign]
    weights: dict[int, dict[str, torch.Tensor]] = {}

    def snapshot(stats) -> None:  # noqa: ANN001
        weights[stats.epoch] = {k: v.clone() for k, v in trainer.policy.state_dict().items()}

    trainer.train(progress=False, on_epoch=snapshot)
    assert trainer.best_epoch == 2 and trainer.best_val_accuracy == 0.9
    final = trainer.policy.state_dict()
    assert all(torch.equal(final[k], v) for k, v in weights[2].items())
    assert not all(torch.equal(weights[3][k], v) for k, v in weights[2].items())  # training went on

    with pytest.raises(ValueError, match="keep_best picks the epoch by validation accuracy"):
        BCConfig(keep_best=True, val_fraction=0.0).check()


def test_cosine_schedule_decays_the_learning_rate_to_zero_over_the_epochs(demos_file: Path) -> None:
    config = BCConfig(
        epochs=3, batch_episodes=8, lr=1e-3, val_fraction=0.2, eval_freq=0, lr_schedule="cosine"
    )
    trainer = BCTrainer(tiny_model(), load_demos(demos_file), config)
    used: list[float] = []
    step = trainer.optimizer.step
    trainer.optimizer.step = lambda: (used.append(trainer.optimizer.param_groups[0]["lr"]), step())  # type: ignore[method-assign]
    trainer.train(progress=False)
    n_updates = 3 * int(np.ceil(len(trainer.train_episodes) / 8))
    assert len(used) == n_updates and used[0] == pytest.approx(1e-3)
    assert all(later < earlier for earlier, later in zip(used, used[1:]))
    assert used[-1] < 0.05e-3  # the last update's factor: 0.5 (1 + cos(pi (n - 1) / n))


def test_an_entropy_bonus_keeps_the_policy_less_certain(demos_file: Path) -> None:
    """The bonus has the right sign: after the same updates a large ent_coef leaves a higher entropy."""
    stored = load_demos(demos_file)

    def entropy_after(ent_coef: float) -> float:
        torch.manual_seed(0)
        config = BCConfig(
            epochs=3, batch_episodes=8, lr=3e-3, val_fraction=0.2, eval_freq=0, ent_coef=ent_coef
        )
        trainer = BCTrainer(tiny_model(), stored, config)
        trainer.train(progress=False)
        batch = trainer.data.batch(trainer.val_episodes)
        policy = trainer.policy
        with torch.no_grad():
            obs = {key: value.flatten(0, 1) for key, value in batch.observations.items()}
            n_rows, length = batch.mask.shape
            starts = torch.zeros(n_rows, length, dtype=torch.bool, device=policy.device)
            starts[:, 0] = True
            inputs = policy.memory_inputs(obs).view(n_rows, length, -1)
            latent, _ = policy.memory.sequence(inputs, policy.initial_state(n_rows), starts)
            logits = policy.action_net(policy.mlp_extractor(latent.flatten(0, 1))[0])
            entropy = torch.distributions.Categorical(logits=logits).entropy()
        return float((entropy * batch.mask.flatten()).sum() / batch.mask.sum())

    assert entropy_after(1.0) > entropy_after(0.0) + 0.1


def test_weight_decay_shrinks_the_weight_matrices_only(demos_file: Path) -> None:
    """AdamW's decay reaches the matrices (smaller after the same updates), never biases or LayerNorm gains
    (their decay group is 0); without it the optimizer stays plain Adam."""
    stored = load_demos(demos_file)

    def trained(weight_decay: float) -> BCTrainer:
        torch.manual_seed(0)
        config = BCConfig(
            epochs=2, batch_episodes=8, val_fraction=0.2, eval_freq=0, weight_decay=weight_decay
        )
        trainer = BCTrainer(tiny_model(), stored, config)
        trainer.train(progress=False)
        return trainer

    plain, decayed = trained(0.0), trained(50.0)
    assert type(plain.optimizer) is torch.optim.Adam and type(decayed.optimizer) is torch.optim.AdamW
    matrices, vectors = decayed.optimizer.param_groups
    assert all(p.dim() >= 2 for p in matrices["params"]) and matrices["weight_decay"] == 50.0
    assert all(p.dim() < 2 for p in vectors["params"]) and vectors["weight_decay"] == 0.0
    assert len(matrices["params"]) + len(vectors["params"]) == len(list(decayed.policy.parameters()))

    def matrix_norm(trainer: BCTrainer) -> float:
        return sum(float(p.norm()) for p in trainer.policy.parameters() if p.dim() >= 2)

    assert matrix_norm(decayed) < 0.9 * matrix_norm(plain)


def test_relabelling_changes_training_batches_only(demos_file: Path) -> None:
    """With ``relabel`` the trainer's training minibatches show other colours than the demos (the mission's
    words change with them), while validation reads the demos as they are; training still lowers the loss."""
    stored = load_demos(demos_file)
    torch.manual_seed(0)
    config = BCConfig(epochs=3, batch_episodes=8, val_fraction=0.2, eval_freq=0, relabel="colors")
    trainer = BCTrainer(tiny_model(), stored, config)
    episodes = trainer.train_episodes[:8]
    plain = trainer.data.batch(episodes)
    relabelled = trainer.data.batch(episodes, trainer.relabel)
    assert not torch.equal(plain.observations["mission"], relabelled.observations["mission"])
    assert torch.equal(plain.actions, relabelled.actions) and torch.equal(plain.mask, relabelled.mask)
    assert torch.equal(plain.observations["image"][..., 0], relabelled.observations["image"][..., 0])
    history = trainer.train(progress=False)
    assert history[-1].train_loss < history[1].train_loss
    with pytest.raises(ValueError, match="relabel 'sizes'"):
        BCConfig(relabel="sizes").check()


def test_weight_averaging_scores_and_keeps_the_average_without_changing_training(demos_file: Path) -> None:
    """With ``ema_decay`` the updates are those of plain training (the averaged weights are swapped in for
    validation only, then back), and the trained policy ends with the averaged weights."""
    stored = load_demos(demos_file)

    def trained(ema_decay: float) -> tuple[BCTrainer, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        config = BCConfig(epochs=2, batch_episodes=8, val_fraction=0.2, eval_freq=0, ema_decay=ema_decay)
        trainer = BCTrainer(tiny_model(), stored, config)
        after_first: dict[str, torch.Tensor] = {}

        def keep(stats: object) -> None:
            if not after_first:
                after_first.update({k: v.clone() for k, v in trainer.policy.state_dict().items()})

        trainer.train(progress=False, on_epoch=keep)
        return trainer, after_first

    plain, plain_first = trained(0.0)
    averaged, averaged_first = trained(0.9)
    assert all(torch.equal(plain_first[key], averaged_first[key]) for key in plain_first)
    final = averaged.policy.state_dict()
    ema = averaged.ema.module.state_dict()
    assert all(torch.equal(final[key], ema[key]) for key in final)
    plain_final = plain.policy.state_dict()
    assert any(not torch.equal(final[key], plain_final[key]) for key in final)
    # The validation of the last epoch scored the weights the policy ends with.
    assert averaged.validate()[1] == averaged.history[-1].val_accuracy
    for bad, message in ((1.0, "ema_decay must be in"), (-0.1, "ema_decay must be in")):
        with pytest.raises(ValueError, match=message):
            BCConfig(ema_decay=bad).check()
    with pytest.raises(ValueError, match="use one of them"):
        BCConfig(ema_decay=0.9, keep_best=True).check()


def test_the_imitation_preset_fills_only_what_the_user_left_unset() -> None:
    assert imitation_memory_kwargs("tlb", {"d_model": 16}) == (
        {"d_model": 16, **PAPER_SETTINGS},
        PAPER_SETTINGS,
    )
    kwargs, applied = imitation_memory_kwargs("tlb", {"input_shift": 2})
    assert kwargs == {"input_shift": 2, "normalize_latents": False} and applied == {
        "normalize_latents": False
    }
    assert imitation_memory_kwargs("tlb", dict(PAPER_SETTINGS))[1] == {}
    assert imitation_memory_kwargs("gru", {"hidden_size": 8}) == ({"hidden_size": 8}, {})
    assert imitation_memory_kwargs("tlb-paper", {}) == ({}, {})


def test_the_trainer_warns_when_tlb_keeps_its_rl_defaults(demos_file: Path) -> None:
    demos = load_demos(demos_file)
    with pytest.warns(ImitationDefaultsWarning, match="input_shift=2, normalize_latents=True, which"):
        BCTrainer(tiny_model(), demos, BCConfig(epochs=1))
    with pytest.warns(ImitationDefaultsWarning, match="preset input_shift=0, normalize_latents=False"):
        BCTrainer(
            tiny_model(memory_kwargs={**TINY_MEMORY_KWARGS, "input_shift": 1}), demos, BCConfig(epochs=1)
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImitationDefaultsWarning)
        BCTrainer(
            tiny_model(memory_kwargs={**TINY_MEMORY_KWARGS, **PAPER_SETTINGS}), demos, BCConfig(epochs=1)
        )
        paper = build_model(make_vec_env(ENV_ID, n_envs=2, seed=0), "tlb-paper", TINY_MEMORY_KWARGS, 16)
        BCTrainer(paper, demos, BCConfig(epochs=1))


def test_bc_runner_trains_tlb_as_tlb_paper_unless_a_flag_says_otherwise(
    demos_file: Path, tmp_path: Path
) -> None:
    def train(memory: str, *extra: str) -> tuple[dict, dict[str, torch.Tensor]]:
        run_dir = tmp_path / f"{memory}{''.join(extra)}"
        argv = [
            "--demos", str(demos_file), "--env", ENV_ID, "--memory", memory, *TINY_MEMORY[2:], *extra,
            "--features-dim", "16", "--epochs", "2", "--batch-episodes", "8", "--eval-freq", "0",
            "--eval-episodes", "2", "--threads", "1", "--no-progress", "--seed", "3",
            "--logdir", str(run_dir),
        ]  # fmt: skip
        assert run_main(bc.main, argv) == 0
        config = json.loads((run_dir / "config.json").read_text())
        return config, MemoryPPO.load(run_dir / "model.zip").policy.state_dict()

    tlb_config, tlb_weights = train("tlb")
    paper_config, paper_weights = train("tlb-paper")
    # The default path trains exactly what --memory tlb-paper trains: the same weights after training.
    assert tlb_config["imitation_preset"] == PAPER_SETTINGS and paper_config["imitation_preset"] == {}
    assert tlb_weights.keys() == paper_weights.keys()
    for key, value in tlb_weights.items():
        assert torch.equal(value, paper_weights[key]), key
    shifted_config, shifted_weights = train("tlb", "--input-shift", "2")
    assert shifted_config["memory_kwargs"]["input_shift"] == 2
    assert shifted_config["imitation_preset"] == {"normalize_latents": False}
    assert any("shift" in key for key in shifted_weights)


def test_bc_flags_are_bc_config_fields_with_its_defaults() -> None:
    """BCConfig declares the settings once: each field but the protocol has the flag of its name, defaulting
    to the field's default (the value-target discount to the model's when BCConfig leaves it to the model),
    and the command line's BCConfig is built from those flags."""
    parser = bc.build_parser()
    options = parser_options(parser)
    for field in dataclasses.fields(BCConfig):
        assert (field.name in options) == (field.name not in bc.NOT_FLAGS), field.name
    defaults = bc.bc_config(parser.parse_args(["--demos", "demos.npz"]))
    gamma = BCConfig().gamma
    assert defaults == dataclasses.replace(BCConfig(), gamma=tiny_model().gamma if gamma is None else gamma)
    changed = bc.bc_config(parser.parse_args(["--demos", "d.npz", "--epochs", "3", "--relabel", "colors"]))
    assert (changed.epochs, changed.relabel) == (3, "colors")


def test_bc_runner_bad_input(demos_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    for extra, message in (
        (["--demos", str(tmp_path / "none.npz")], "does not exist"),
        (["--demos", str(demos_file), "--val-fraction", "1.5"], "--val-fraction: must be in [0, 1), got 1.5"),
        (["--demos", str(demos_file), "--gamma", "1.5"], "--gamma: must be in [0, 1], got 1.5"),
        (["--demos", str(demos_file), "--vf-coef", "-1"], "--vf-coef: must be 0 or more"),
        (["--demos", str(demos_file), "--device", "cuda:99"], "--device cuda:99: this machine has"),
        (["--demos", str(demos_file), "--suite", "memory-length"], "trains on MiniGrid-MemoryS7-v0"),
        (["--demos", str(demos_file), "--keep-best", "--val-fraction", "0"], "set val_fraction above 0"),
        (["--demos", str(demos_file), "--weight-decay", "-1"], "--weight-decay: must be 0 or more"),
        (
            ["--demos", str(demos_file), "--relabel", "colors", "--suite", "held-out-pairs"],
            "use --relabel none",
        ),
    ):
        assert exit_code(bc.main, [*extra, *TINY_MEMORY, "--logdir", str(run_dir)]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not run_dir.exists()


# ---------------------------------------------------------------------- init_from


def test_init_from_refuses_a_model_of_another_observation_space(tmp_path: Path) -> None:
    other = MemoryPPO(
        "MlpPolicy",
        sb3_make_vec_env("CartPole-v1", n_envs=2),
        n_steps=16,
        batch_size=16,
        sequence_length=8,
        policy_kwargs=dict(memory="tlb", memory_kwargs=dict(d_model=16, n_heads=2, chunk_size=4)),
    )
    path = tmp_path / "cartpole.zip"
    other.save(path)
    with pytest.raises(
        ValueError, match=r"was trained on observation space Box\(.*but this env gives Dict\("
    ):
        init_from(tiny_model(), path)


def test_init_from_refuses_another_encoder_width(tmp_path: Path) -> None:
    narrow = tiny_model(encoder_channels=8)
    assert narrow.policy.features_extractor.image_conv[0].out_channels == 8
    path = tmp_path / "narrow.zip"
    narrow.save(path)
    with pytest.raises(ValueError, match=r"8\) there and \(\d+, 32\) here \(check --features-dim, --enc"):
        init_from(tiny_model(), path)


def test_init_from_refuses_other_memory_settings(demos_file: Path, tmp_path: Path) -> None:
    model = tiny_model()
    path = tmp_path / "model.zip"
    model.save(path)
    with pytest.raises(ValueError, match="chunk_size=4 but this model has chunk_size=8"):
        init_from(tiny_model(memory_kwargs={**TINY_MEMORY_KWARGS, "chunk_size": 8}), path)
    with pytest.raises(ValueError, match="does not exist"):
        init_from(model, tmp_path / "missing.zip")


def test_trainer_refuses_demos_of_other_spaces(demos_file: Path) -> None:
    stored = load_demos(demos_file)
    changed = Demos(**{**stored.__dict__, "action_space": {"type": "Discrete", "n": 3, "start": 0}})
    with pytest.raises(ValueError, match="recorded with action space Discrete\\(3\\)"):
        BCTrainer(tiny_model(), changed, BCConfig())


def test_generation_does_not_depend_on_the_number_of_workers(demos_file: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.npz"
    generate(one, 30, "--workers", "1")
    first, second = load_demos(one), load_demos(demos_file)  # the fixture used two workers
    assert np.array_equal(first.seeds, second.seeds) and np.array_equal(first.actions, second.actions)
    assert np.array_equal(first.observations["image"], second.observations["image"])


def test_levels_the_bot_fails_are_skipped_counted_and_never_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    solve = demo_generation.bot_episode

    def fail_every_third(env: object, seed: int, noise: float = 0.0) -> tuple[object, str]:
        return (None, "forced failure") if seed % 3 == 0 else solve(env, seed, noise)  # type: ignore[arg-type]

    monkeypatch.setattr(demo_generation, "bot_episode", fail_every_third)
    path = tmp_path / "demos.npz"
    generate(path, 4)
    out = capsys.readouterr().out
    assert "skipped  2 of 6 levels the bot failed, 0 (forced failure), 3 (forced failure)" in out
    stored = load_demos(path)
    assert stored.seeds.tolist() == [1, 2, 4, 5] and stored.skipped_seeds.tolist() == [0, 3]
    generate(path, 2)  # seed 6 fails: the new episodes are seeds 7 and 8
    stored = load_demos(path)
    assert stored.seeds.tolist() == [1, 2, 4, 5, 7, 8] and stored.skipped_seeds.tolist() == [0, 3, 6]


def test_a_level_family_the_bot_cannot_play_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "demos.npz"
    argv = ["--env", "BabyAI-KeyInBox-v0", "--episodes", "3", "--out", str(path), "--no-progress"]
    assert exit_code(demos.main, argv) == 2
    err = capsys.readouterr().err
    assert "the bot solved none of" in err and len(err.strip().splitlines()) == 1
    assert not path.exists()


def test_validate_scores_the_validation_split_or_the_episodes_given(demos_file: Path) -> None:
    trainer = BCTrainer(tiny_model(), load_demos(demos_file), BCConfig(epochs=1, val_fraction=0.2))
    assert trainer.validate(trainer.val_episodes) == trainer.validate()
    trainer.train(progress=False)
    _, train_accuracy = trainer.validate(trainer.train_episodes)
    assert train_accuracy == trainer.validate(np.sort(trainer.train_episodes[::-1]))[1]
    assert 0.0 <= train_accuracy <= 1.0
    assert trainer.validate(trainer.train_episodes) != trainer.validate()
    assert all(math.isnan(value) for value in trainer.validate(np.array([], dtype=np.int64)))


@pytest.mark.slow
def test_bc_benchmark_saves_each_model_with_its_per_epoch_log(
    demos_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``benchmarks/bc_generalization.py --save-dir``: the model and a progress.csv with one validation row
    per epoch (epoch 0 is the untrained policy), ending at the epoch count the table prints."""
    spec = importlib.util.spec_from_file_location(
        "bc_generalization", Path(__file__).parents[1] / "benchmarks" / "bc_generalization.py"
    )
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    argv = ["--demos", str(demos_file), "--demo-noise", "0", "--episodes", "30", "--minutes", "0.02"]
    argv += ["--eval-episodes", "2", "--suites", "--memories", "tlb", *TINY_MEMORY[2:]]
    argv += ["--features-dim", "16"]
    monkeypatch.setattr(sys, "argv", ["bc_generalization.py", *argv, "--save-dir", str(tmp_path)])
    benchmark.main()
    printed = capsys.readouterr().out
    epochs = int(printed.split("tlb: ")[1].split(" epochs")[0])
    assert (tmp_path / "bc-tlb.zip").exists()
    with open(tmp_path / "bc-tlb-log" / "progress.csv") as log:
        rows = list(csv.DictReader(log))
    assert [int(row["bc/epoch"]) for row in rows] == list(range(epochs + 1))
    accuracies = [float(row["bc/val_accuracy"]) for row in rows]
    assert all(0.0 <= accuracy <= 1.0 for accuracy in accuracies)
    assert f"{accuracies[-1]:.3f}" in printed.split("tlb: ")[1].splitlines()[0]
