"""Generate demonstrations with minigrid's BabyAI bot:
``python -m runners.demos --env BabyAI-GoToLocal-v0 --episodes 5000 --out demos/gotolocal.npz``.

The command line of ``agents.demo_generation``: each episode is one level solved by minigrid's BabyAI bot;
levels it fails are skipped, counted and never retried; the result does not depend on ``--workers``. An
existing ``--out`` file is appended to (never overwritten): the new seeds continue after the largest seed it
has tried, and the file is rewritten atomically. Seeds stay below ``envs.suites.HELDOUT_SEED_START`` (1e9),
where the held-out evaluation seeds begin. The file format is described in ``agents/demos.py``.
"""

from __future__ import annotations

import argparse
import sys

from agents.demo_generation import BOT_NAME, append_bot_demos
from envs.suites import HELDOUT_SEED_START
from runners.cli import UsageError, fraction, make_parser, positive_int, run_main


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        "python -m runners.demos", "Generate BabyAI demonstrations with minigrid's bot (appends to --out)."
    )
    parser.add_argument("--env", default="BabyAI-GoToLocal-v0", help="a BabyAI-* id")
    parser.add_argument("--episodes", type=positive_int, default=5000, help="successful episodes to add")
    parser.add_argument("--out", required=True, help="demos file (.npz); an existing one is appended to")
    parser.add_argument("--workers", type=positive_int, default=1, help="worker processes")
    parser.add_argument(
        "--seed", type=int, default=0, help="first seed to try (appending continues after the file's seeds)"
    )
    parser.add_argument(
        "--noise",
        type=fraction,
        default=0.0,
        help="probability of a random move at each step, the bot's action stored (DART; 0: none)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 <= args.seed < HELDOUT_SEED_START:
        raise UsageError(
            f"--seed must be in 0..{HELDOUT_SEED_START - 1} (held-out seeds start at {HELDOUT_SEED_START:,})"
        )
    path = args.out
    result, merged = append_bot_demos(
        path,
        args.env,
        args.episodes,
        args.seed,
        args.workers,
        progress=not args.no_progress,
        noise=args.noise,
    )
    new = result.demos

    rate = new.n_episodes / max(result.seconds, 1e-9)
    skipped = "".join(f", {seed} ({reason})" for seed, reason in result.failures[:5])
    more = f" and {len(result.failures) - 5} more" if len(result.failures) > 5 else ""
    print(f"\nrunners.demos summary ({args.env}, {BOT_NAME})")
    print(
        f"  added    {new.n_episodes} episodes, {new.n_steps} steps, seeds {new.seeds.min()}.."
        f"{new.seeds.max()} in {result.seconds:.1f} s ({rate:.0f} episodes/s, {args.workers} worker(s))"
    )
    print(f"  skipped  {len(result.failures)} of {result.seeds_tried} levels the bot failed{skipped}{more}")
    print(
        f"  file     {path}: {merged.n_episodes} episodes, {merged.n_steps} steps, "
        f"next seed {merged.next_seed}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
