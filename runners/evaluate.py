"""Evaluate a trained model on held-out levels: ``python -m runners.evaluate MODEL --suite memory-length``.

``--env ENV`` evaluates on one env, on levels of reset seeds from 1_000_000_000 on (never used in training);
``--suite NAME`` evaluates on a suite's training side and on each of its held-out sides (see
``envs.suites``; ``--suite unseen-seeds`` needs ``--env`` too). Each side gets ``--episodes`` episodes and
one row of an aligned plain-text table. ``--json FILE`` writes the same rows as a JSON list, each row an
object with these fields:

* ``env``: the gymnasium id evaluated;
* ``side``: ``"train"`` or the held-out side's name (``"heldout"`` with ``--env``);
* ``episodes``: episodes run; ``successes``: how many ended with ``is_success`` true;
* ``success_rate``: ``successes / episodes``; ``success_ci95``: ``[lo, hi]``, its 95% Wilson interval;
* ``mean_return``, ``mean_length``: mean episode return and length in steps;
* ``seeds``: the side's range of reset seeds, e.g. ``"1000000000-1999999999"``.

``--gif FILE`` records the first ``--gif-episodes`` episodes of the first held-out side (the ``--env`` env
with ``--env``) with the mission written above each frame. ``--attention FILE`` (tlb models) plots, for one
episode of that side, how much each step's fast stream reads each slow latent, with the chunk boundaries
(where the slow latents update) marked.

Bad input (a missing or damaged model file, an unknown env or suite, a model trained on other observations
or actions than the env's) is one line on stderr and exit code 2, before any episode runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from minigrid.minigrid_env import MiniGridEnv
from PIL import Image, ImageDraw, ImageFont
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from agents import MemoryPPO
from agents.evaluation import evaluate_model
from agents.loading import check_env_matches, load_model
from envs.make import resolve_env_spec
from envs.suites import SEED_RANGE_SIZE, SuiteSide, get_suite, list_suites, suite_takes_env
from policies.memories import TemporalLatentBottleneck
from runners.cli import UsageError, make_parser, positive_int, run_main, set_threads
from runners.ppo import EVAL_SEED_OFFSET

# A GIF frame is at most this wide (MiniGrid tiles are sized to fit, other renderings are scaled down).
GIF_WIDTH = 320
# A GIF holds at most this many frames, so a long episode cannot fill the memory.
GIF_MAX_FRAMES = 1000
GIF_FRAME_MS = 120
GIF_END_MS = 1000  # how long the last frame of an episode stays


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.evaluate",
        "Evaluate a trained MemoryPPO model on an env or on a suite's training and held-out sides.",
    )
    parser.add_argument("model", help="the model.zip a training run saved")
    parser.add_argument("--env", default=None, help="evaluate on this env id, on seeds from 1e9 on")
    parser.add_argument(
        "--suite",
        default=None,
        help=f"evaluate on a suite's train and held-out sides: {', '.join(list_suites())}",
    )
    parser.add_argument("--episodes", type=positive_int, default=200, help="episodes per env")
    actions = parser.add_mutually_exclusive_group()
    actions.add_argument(
        "--deterministic",
        dest="deterministic",
        action="store_true",
        default=True,
        help="take the likeliest action",
    )
    actions.add_argument(
        "--stochastic",
        dest="deterministic",
        action="store_false",
        default=argparse.SUPPRESS,  # the default is --deterministic's; no "(default: True)" in the help
        help="sample actions from the policy",
    )
    parser.add_argument("--n-envs", type=positive_int, default=8, help="envs evaluated in parallel")
    parser.add_argument("--subproc", action="store_true", help="run the envs in subprocesses")
    parser.add_argument(
        "--seed", type=int, default=0, help="where the envs' seed cycles start; seeds sampled actions"
    )
    parser.add_argument("--device", default="auto", help="torch device: auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (None: cores - 1)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the table as JSON rows")
    parser.add_argument(
        "--gif",
        default=None,
        metavar="FILE",
        help="record episodes (with --suite: of its first held-out side)",
    )
    parser.add_argument("--gif-episodes", type=positive_int, default=3, help="episodes in the GIF")
    parser.add_argument(
        "--attention",
        default=None,
        metavar="FILE",
        help="PNG of one episode's reads of the slow latents (tlb models; same side as --gif)",
    )
    return parser


# ---------------------------------------------------------------------- what to evaluate


def evaluation_sides(args: argparse.Namespace) -> list[SuiteSide]:
    """The sides to evaluate, the training side first; ``--env`` alone is one side on held-out seeds."""
    if args.suite is None:
        if args.env is None:
            raise UsageError("pass --env ENV or --suite NAME to say what to evaluate on")
        resolve_env_spec(args.env)  # an unknown id fails here, naming close matches
        seeds = range(EVAL_SEED_OFFSET, EVAL_SEED_OFFSET + SEED_RANGE_SIZE)
        return [SuiteSide("heldout", args.env, seeds)]
    if args.env is not None and args.suite in list_suites() and not suite_takes_env(args.suite):
        train_id = get_suite(args.suite).train.env_id
        raise UsageError(
            f"--env does not apply to --suite {args.suite}: it fixes its envs (training on {train_id})"
        )
    return list(get_suite(args.suite, args.env).sides())


def check_output_path(flag: str, value: str | None) -> Path | None:
    """The path to write ``flag``'s output to, refused when its directory is missing or it is a directory."""
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory: pass a file name")
    if not path.parent.is_dir():
        raise UsageError(f"{flag} {path}: directory {path.parent} does not exist")
    return path


def memory_name(model: MemoryPPO) -> str:
    return str(getattr(model.policy, "memory_name", type(model.policy.memory).__name__))


# ---------------------------------------------------------------------- the table


def evaluate_side(model: MemoryPPO, side: SuiteSide, args: argparse.Namespace) -> dict[str, Any]:
    """One row of the table: ``args.episodes`` episodes on ``side``."""
    n_envs = min(args.n_envs, args.episodes)
    env = side.make_vec_env(
        n_envs, seed=args.seed, vec_env_cls=SubprocVecEnv if args.subproc else DummyVecEnv
    )
    try:
        result = evaluate_model(model, env, args.episodes, deterministic=args.deterministic)
    finally:
        env.close()
    low, high = result.success_ci95
    return {
        "env": side.env_id,
        "side": side.name,
        "episodes": result.episodes,
        "successes": result.successes,
        "success_rate": result.success_rate,
        "success_ci95": [low, high],
        "mean_return": result.mean_return,
        "mean_length": result.mean_length,
        "seeds": side.describe_seeds(),
    }


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as aligned plain text: text columns left-aligned, numbers right-aligned."""
    headers = ["side", "env", "episodes", "success", "95% CI", "return", "length", "seeds"]
    numeric = {"episodes", "success", "return", "length"}
    cells = [
        [
            row["side"],
            row["env"],
            str(row["episodes"]),
            f"{row['success_rate']:.3f}",
            f"[{row['success_ci95'][0]:.3f}, {row['success_ci95'][1]:.3f}]",
            f"{row['mean_return']:.3f}",
            f"{row['mean_length']:.1f}",
            row["seeds"],
        ]
        for row in rows
    ]
    widths = [max(len(text) for text in column) for column in zip(headers, *cells)]
    lines = []
    for line in [headers, *cells]:
        parts = [
            text.rjust(width) if header in numeric else text.ljust(width)
            for header, text, width in zip(headers, line, widths)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write the rows as JSON through a temporary file, so a crash never leaves half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=2) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------- stepping one env by hand


def env_action(model: MemoryPPO, actions: torch.Tensor) -> Any:
    """The env action of the first row of a batch of policy actions, clipped or unscaled like ``predict``."""
    action = actions.cpu().numpy().reshape((-1, *model.action_space.shape))[0]
    if isinstance(model.action_space, spaces.Box):
        if model.policy.squash_output:
            return model.policy.unscale_action(action)
        return np.clip(action, model.action_space.low, model.action_space.high)
    if isinstance(model.action_space, spaces.Discrete):
        return int(action)
    return action


def single_action(model: MemoryPPO, action: np.ndarray) -> Any:
    """``predict``'s action for one env as the env takes it (a plain int for a Discrete space)."""
    return int(action) if isinstance(model.action_space, spaces.Discrete) else action


def mission_of(env: gym.Env) -> str:
    return str(getattr(env.unwrapped, "mission", "") or "")


# ---------------------------------------------------------------------- GIF


def fit_tile_size(env: gym.Env) -> None:
    """Render MiniGrid tiles small enough for a frame about ``GIF_WIDTH`` pixels wide."""
    unwrapped = env.unwrapped
    if isinstance(unwrapped, MiniGridEnv):
        unwrapped.tile_size = int(max(8, min(32, GIF_WIDTH // max(unwrapped.width, 1))))


def annotate(frame: Any, text_lines: list[str]) -> Image.Image:
    """The frame under a black band holding ``text_lines`` (wrapped to the frame's width), as a palette
    image (a third of the memory of RGB, and what a GIF stores anyway)."""
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise UsageError("the env does not render RGB frames (render_mode='rgb_array'): --gif needs them")
    image = Image.fromarray(frame.astype(np.uint8))
    if image.width > GIF_WIDTH:
        image = image.resize((GIF_WIDTH, max(1, image.height * GIF_WIDTH // image.width)))
    font = ImageFont.load_default()
    chars_per_line = max(8, image.width // 6)
    lines = [wrapped for text in text_lines for wrapped in textwrap.wrap(text, chars_per_line) or [""]]
    line_height = 13
    band = 4 + line_height * len(lines)
    canvas = Image.new("RGB", (image.width, image.height + band), (0, 0, 0))
    canvas.paste(image, (0, band))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((4, 2 + index * line_height), line, fill=(255, 255, 255), font=font)
    return canvas.quantize(colors=128, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)


def record_gif(
    model: MemoryPPO, side: SuiteSide, path: Path, episodes: int, deterministic: bool, seed: int
) -> str:
    """Record ``episodes`` episodes of ``side`` with ``model.predict`` carrying the memory state; returns a
    one-line summary."""
    env = replace(side, env_kwargs={**side.env_kwargs, "render_mode": "rgb_array"}).make_env()
    frames: list[Image.Image] = []
    durations: list[int] = []
    outcomes: list[str] = []
    try:
        fit_tile_size(env)
        obs, _ = env.reset(seed=seed)
        for episode in range(1, episodes + 1):
            mission = mission_of(env)
            header = [mission] if mission else []
            frames.append(annotate(env.render(), [*header, f"{side.env_id}  episode {episode}  step 0"]))
            durations.append(GIF_FRAME_MS)
            state, episode_start, done, step, info = None, np.ones(1, dtype=bool), False, 0, {}
            while not done and len(frames) < GIF_MAX_FRAMES:
                action, state = model.predict(
                    obs, state=state, episode_start=episode_start, deterministic=deterministic
                )
                obs, _, terminated, truncated, info = env.step(single_action(model, action))
                episode_start, done, step = np.zeros(1, dtype=bool), terminated or truncated, step + 1
                status = f"{side.env_id}  episode {episode}  step {step}"
                if done:
                    status += "  success" if info.get("is_success", False) else "  failure"
                frames.append(annotate(env.render(), [*header, status]))
                durations.append(GIF_FRAME_MS)
            durations[-1] = GIF_END_MS
            if not done:
                outcomes.append(f"episode {episode} cut at {GIF_MAX_FRAMES} frames")
                break
            outcomes.append("success" if info.get("is_success", False) else "failure")
            obs, _ = env.reset()
    finally:
        env.close()
    tmp = path.with_name(path.name + ".tmp")
    frames[0].save(
        tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=1
    )
    tmp.replace(path)
    return f"{len(frames)} frames, {len(outcomes)} episode(s) of {side.env_id}: {', '.join(outcomes)}"


# ---------------------------------------------------------------------- attention plot


def attention_episode(
    model: MemoryPPO, side: SuiteSide, deterministic: bool, seed: int
) -> tuple[np.ndarray, str, bool]:
    """Run one episode stepping the policy by hand; returns the [T, N] reads of the slow latents (each
    step's cross-attention to them, averaged over heads and blocks), the mission and whether it succeeded."""
    policy = model.policy
    memory = policy.memory
    assert isinstance(memory, TemporalLatentBottleneck)
    policy.set_training_mode(False)
    env = side.make_env()
    reads_per_step: list[np.ndarray] = []
    info: dict[str, Any] = {}
    try:
        obs, _ = env.reset(seed=seed)
        mission = mission_of(env)
        state = policy.initial_state(1)
        episode_start = torch.ones(1, dtype=torch.bool, device=policy.device)
        done = False
        while not done:
            obs_tensor, _ = policy.obs_to_tensor(obs)
            with torch.no_grad():
                reads: list[torch.Tensor] = []
                latent, state = memory.step_with_reads(
                    policy.memory_inputs(obs_tensor), state, episode_start, reads
                )
                distribution = policy._get_action_dist_from_latent(policy.mlp_extractor.forward_actor(latent))
                actions = distribution.get_actions(deterministic=deterministic)
            reads_per_step.append(reads[0][0].cpu().numpy())
            obs, _, terminated, truncated, info = env.step(env_action(model, actions))
            episode_start = torch.zeros(1, dtype=torch.bool, device=policy.device)
            done = terminated or truncated
    finally:
        env.close()
    return np.stack(reads_per_step), mission, bool(info.get("is_success", False))


def plot_attention(model: MemoryPPO, side: SuiteSide, path: Path, deterministic: bool, seed: int) -> str:
    """Write the attention heatmap of one episode of ``side`` to ``path`` (PNG); returns a summary line."""
    reads, mission, success = attention_episode(model, side, deterministic, seed)
    memory = model.policy.memory
    assert isinstance(memory, TemporalLatentBottleneck)
    steps, n_latents = reads.shape
    chunk = memory.chunk_size
    figure = Figure(figsize=(min(20.0, max(6.0, steps / 12)), 1.8 + 0.45 * n_latents), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    heatmap = axes.imshow(
        reads.T,
        aspect="auto",
        origin="lower",
        interpolation="nearest",
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        extent=(-0.5, steps - 0.5, -0.5, n_latents - 0.5),
    )
    boundaries = range(chunk, steps, chunk)
    dense = len(boundaries) > 60  # thinner lines, so long episodes keep their heatmap visible
    for boundary in boundaries:
        axes.axvline(
            boundary - 0.5,
            color="white",
            linewidth=0.4 if dense else 0.8,
            alpha=0.5 if dense else 0.9,
            linestyle="--",
        )
    axes.set_xlabel(f"episode step (dashed: chunk boundaries every {chunk} steps, the slow latents update)")
    axes.set_ylabel("slow latent")
    axes.set_yticks(range(n_latents))
    outcome = "success" if success else "failure"
    title = f"{side.env_id}" + (f': "{mission}"' if mission else "") + f" ({outcome} in {steps} steps)"
    axes.set_title(title, fontsize=10)
    figure.colorbar(heatmap, ax=axes, label="attention weight")
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight")  # long titles and labels stay whole
    tmp.replace(path)
    return f"{steps} steps of {side.env_id} ({outcome}), {n_latents} latents, chunk size {chunk}"


# ---------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    set_threads(args.threads)
    flags = {"--json": args.json, "--gif": args.gif, "--attention": args.attention}
    outputs = {flag: check_output_path(flag, value) for flag, value in flags.items()}
    sides = evaluation_sides(args)
    model = load_model(args.model, device=args.device)
    if outputs["--attention"] is not None and not isinstance(model.policy.memory, TemporalLatentBottleneck):
        raise UsageError(
            f"--attention plots the reads of a tlb memory; {args.model} has memory {memory_name(model)}"
        )
    for side in sides:  # every side is checked before the first episode runs
        probe = side.make_vec_env(1, seed=args.seed)
        try:
            check_env_matches(model, probe, side.env_id)
        finally:
            probe.close()

    set_random_seed(args.seed)
    mode = "deterministic" if args.deterministic else "stochastic"
    print(f"runners.evaluate: {args.model} ({memory_name(model)} memory, {mode} actions)")
    rows = []
    for side in sides:
        start = time.time()
        rows.append(evaluate_side(model, side, args))
        print(
            f"  {side.name}: {side.env_id}, {args.episodes} episodes in {time.time() - start:.1f} s",
            flush=True,
        )
    print()
    print(format_table(rows))
    if any(path is not None for path in outputs.values()):
        print()
    if outputs["--json"] is not None:
        write_rows(outputs["--json"], rows)
        print(f"json: {outputs['--json']}")
    recorded = sides[1] if len(sides) > 1 else sides[0]
    if outputs["--gif"] is not None:
        summary = record_gif(
            model, recorded, outputs["--gif"], args.gif_episodes, args.deterministic, args.seed
        )
        print(f"gif: {outputs['--gif']} ({summary})")
    if outputs["--attention"] is not None:
        summary = plot_attention(model, recorded, outputs["--attention"], args.deterministic, args.seed)
        print(f"attention: {outputs['--attention']} ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
