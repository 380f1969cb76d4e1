"""Pictures of a trained model at work: a GIF of episodes (``record_gif``) and, for a tlb memory, a heatmap
of how much each step reads each slow latent (``plot_attention``). ``runners.evaluate --gif / --attention``
writes them.

Both step one env with the policy's own ``predict`` (``predict_with_reads`` for the attention, the same step
plus the memory's reads of its slow latents), carrying the memory state as SB3's ``evaluate_policy`` does,
so what they show is what the evaluation measures, whatever the policy's critic memory. Files are written
atomically (``agents.atomic``).
"""

from __future__ import annotations

import textwrap
import warnings
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

from agents.atomic import atomic_write
from agents.evaluation import episode_success, protocol_name
from agents.ppo import MemoryPPO
from envs.suites import SuiteSide
from policies.policy import state_to_tensor

# A GIF frame is at most this wide (MiniGrid tiles are sized to fit, other renderings are scaled down).
GIF_WIDTH = 320
# A GIF holds at most this many frames, so a long episode cannot fill the memory.
GIF_MAX_FRAMES = 1000
GIF_FRAME_MS = 120
GIF_END_MS = 1000  # how long the last frame of an episode stays


def single_action(model: MemoryPPO, action: np.ndarray) -> Any:
    """``predict``'s action for one env as the env takes it (a plain int for a Discrete space)."""
    return int(action) if isinstance(model.action_space, spaces.Discrete) else action


def mission_of(env: gym.Env) -> str:
    return str(getattr(env.unwrapped, "mission", "") or "")


def outcome_of(info: dict[str, Any]) -> str:
    """``"success"``, ``"failure"``, or ``"end"`` for an env without a success signal."""
    success = episode_success(info)
    return "end" if success is None else "success" if success else "failure"


# ---------------------------------------------------------------------- GIF


def fit_tile_size(env: gym.Env) -> None:
    """Render MiniGrid tiles small enough for a frame about ``GIF_WIDTH`` pixels wide."""
    unwrapped = env.unwrapped
    if isinstance(unwrapped, MiniGridEnv):
        unwrapped.tile_size = int(max(8, min(32, GIF_WIDTH // max(unwrapped.width, 1))))


def annotate(frame: Any, text_lines: list[str]) -> Image.Image:
    """The frame under a black band holding ``text_lines`` (wrapped to the frame's width), as a palette
    image (a third of the memory of RGB, and what a GIF stores anyway).

    :raises ValueError: when the env does not render RGB frames
    """
    if not isinstance(frame, np.ndarray) or frame.ndim != 3:
        raise ValueError("the env does not render RGB frames (render_mode='rgb_array'): --gif needs them")
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


def rgb_frames_problem(side: SuiteSide) -> str | None:
    """Why ``side``'s env cannot draw the RGB frames a GIF is made of, or None when it can: an env whose
    constructor takes no ``render_mode`` (most of POPGym's) or that declares no ``rgb_array`` render mode."""
    try:
        with warnings.catch_warnings():  # gymnasium's warning says the same as the answer, in colour
            warnings.filterwarnings("ignore", message=".*not in the possible render_modes")
            env = replace(side, env_kwargs={**side.env_kwargs, "render_mode": "rgb_array"}).make_env()
    except TypeError as error:
        if "render_mode" not in str(error):
            raise
        return "its constructor takes no render_mode"
    try:
        modes = list(env.unwrapped.metadata.get("render_modes", []))
    finally:
        env.close()
    if "rgb_array" not in modes:
        return f"its render modes are {', '.join(modes) or 'none'}, without rgb_array"
    return None


def record_gif(
    model: MemoryPPO, side: SuiteSide, path: Path, episodes: int, deterministic: bool, seed: int
) -> str:
    """Record ``episodes`` episodes of ``side`` with ``model.predict`` carrying the memory state; returns a
    one-line summary naming the protocol (greedy or sampled actions)."""
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
                    status += f"  {outcome_of(info)}"
                frames.append(annotate(env.render(), [*header, status]))
                durations.append(GIF_FRAME_MS)
            durations[-1] = GIF_END_MS
            if not done:
                outcomes.append(f"episode {episode} cut at {GIF_MAX_FRAMES} frames")
                break
            outcomes.append(outcome_of(info))
            obs, _ = env.reset()
    finally:
        env.close()
    atomic_write(
        path,
        lambda tmp: frames[0].save(
            tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, disposal=1
        ),
    )
    return (
        f"{len(frames)} frames, {len(outcomes)} episode(s) of {side.env_id} with "
        f"{protocol_name(deterministic)} actions: {', '.join(outcomes)}"
    )


# ---------------------------------------------------------------------- attention plot


def attention_episode(
    model: MemoryPPO, side: SuiteSide, deterministic: bool, seed: int
) -> tuple[np.ndarray, dict[str, np.ndarray], str, str]:
    """Run one episode of ``side`` with ``policy.predict_with_reads``; returns the [T, N] reads of the slow
    latents (each step's cross-attention to them, averaged over heads and blocks), the memory's diagnostics
    of the state after each step ({name: [T]}, e.g. the latents' mean pairwise cosine and norm), the mission
    and the outcome (``outcome_of``).

    :raises ValueError: for a model whose memory has no slow latents
    """
    policy = model.policy
    if not policy.has_attention_reads:
        raise ValueError(f"the model's memory {policy.memory_name} has no slow latents to plot: only tlb has")
    env = side.make_env()
    reads_per_step: list[np.ndarray] = []
    diagnostics: dict[str, list[float]] = {}
    info: dict[str, Any] = {}
    try:
        obs, _ = env.reset(seed=seed)
        mission = mission_of(env)
        state, episode_start, done = None, np.ones(1, dtype=bool), False
        while not done:
            action, state, reads = policy.predict_with_reads(obs, state, episode_start, deterministic)
            reads_per_step.append(reads[0])
            with torch.no_grad():
                step_diagnostics = policy.memory_diagnostics(state_to_tensor(state, policy.device))
            for name, value in step_diagnostics.items():
                diagnostics.setdefault(name, []).append(float(value[0]))
            obs, _, terminated, truncated, info = env.step(single_action(model, action))
            episode_start, done = np.zeros(1, dtype=bool), terminated or truncated
    finally:
        env.close()
    series = {name: np.asarray(values) for name, values in diagnostics.items()}
    return np.stack(reads_per_step), series, mission, outcome_of(info)


def plot_attention(model: MemoryPPO, side: SuiteSide, path: Path, deterministic: bool, seed: int) -> str:
    """Write the attention heatmap of one episode of ``side`` to ``path`` (PNG), above a panel of the slow
    latents' diversity after each step (mean pairwise cosine, mean norm); returns a summary line."""
    reads, diagnostics, mission, outcome = attention_episode(model, side, deterministic, seed)
    steps, n_latents = reads.shape
    chunk = int(model.policy.memory.chunk_size)
    figure = Figure(figsize=(min(20.0, max(6.0, steps / 12)), 3.6 + 0.45 * n_latents), layout="constrained")
    FigureCanvasAgg(figure)
    axes, diversity_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [1.2 + 0.45 * n_latents, 1.8]}
    )
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
    axes.set_ylabel("slow latent")
    axes.set_yticks(range(n_latents))
    protocol = protocol_name(deterministic)
    title = (
        f"{side.env_id}"
        + (f': "{mission}"' if mission else "")
        + f" ({outcome} in {steps} steps, {protocol} actions)"
    )
    axes.set_title(title, fontsize=10)
    figure.colorbar(heatmap, ax=axes, label="attention weight")
    plot_latent_diversity(diversity_axes, diagnostics, steps)
    diversity_axes.set_xlabel(
        f"episode step (dashed: chunk boundaries every {chunk} steps, the slow latents update)"
    )
    # bbox_inches="tight": long titles and labels stay whole.
    atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight"))
    summary = (
        f"{steps} steps of {side.env_id} ({outcome}, {protocol} actions), {n_latents} latents, "
        f"chunk size {chunk}"
    )
    if "latent_cosine" in diagnostics:
        summary += (
            f", latents' mean pairwise cosine {diagnostics['latent_cosine'][-1]:.2f} and norm "
            f"{diagnostics['latent_norm'][-1]:.1f} at the end"
        )
    return summary


def plot_latent_diversity(axes: Any, diagnostics: dict[str, np.ndarray], steps: int) -> None:
    """The latents' mean pairwise cosine (left axis, 1: collapsed into one direction) and mean norm (right
    axis) after each step: the two signs of the collapse of the N latents into one vector."""
    step_index = np.arange(steps)
    if "latent_cosine" in diagnostics:
        axes.plot(step_index, diagnostics["latent_cosine"], color="tab:red", label="mean pairwise cosine")
        axes.set_ylim(-1.05, 1.05)
        axes.set_ylabel("cosine", color="tab:red")
    norm_axes = axes.twinx()
    norm_axes.plot(step_index, diagnostics["latent_norm"], color="tab:blue", label="mean norm")
    norm_axes.set_ylabel("norm", color="tab:blue")
    axes.set_title("slow latents after each step", fontsize=9)
