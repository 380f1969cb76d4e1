"""How BC models of a study fail on unseen GoToLocal levels: the README's copycat measurement.

    PYTHONPATH=. python docs/studies/bc-shift-norm-60ep/failure_modes.py \
        runs/studies/bc-shift-norm-60ep runs/studies/bc-dart-60ep
    PYTHONPATH=. python docs/studies/bc-shift-norm-60ep/failure_modes.py --episodes 200 \
        runs/bench/fd512/bc-tlb.zip

For every trial's ``model.zip`` of a study directory, or every model file given: greedy episodes on unseen
levels (seeds from 1e9 + 7; 120 unless ``--episodes``), the rate at which an action repeats the previous one
(the bot's rate in plain demos is 0.40), and for the failed episodes how many end with the same action 20
times in a row and which action that is, how the others end (a 2-step alternation, a cycle of 3 to 8
steps, or no cycle in their last 16 actions), and in how many the target was in the agent's view at some
step (the instruction's objects, ``agent_sees``).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from agents.ppo import MemoryPPO
from envs import make_vec_env
from envs.suites import HELDOUT_SEED_START

ENVS, TAIL, CYCLE_TAIL = 8, 20, 16


def target_in_view(env: object) -> bool:
    """Whether one of the objects the mission names is in the agent's view now."""
    objects = getattr(env.instrs.desc, "obj_set", [])  # type: ignore[attr-defined]
    return any(obj.cur_pos is not None and env.agent_sees(*obj.cur_pos) for obj in objects)  # type: ignore[attr-defined]


def loop_kind(actions: list[int]) -> str:
    """How an episode's last CYCLE_TAIL actions repeat: 'N-step cycle' (the shortest N from 2 to 8) or
    'no cycle'."""
    tail = actions[-CYCLE_TAIL:]
    for period in range(2, 9):
        if len(tail) >= 2 * period and all(tail[i] == tail[i % period] for i in range(len(tail))):
            return f"{period}-step cycle"
    return "no cycle"


def failure_modes(model_path: Path, n_episodes: int) -> str:
    model = MemoryPPO.load(model_path, device="cpu")
    env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=ENVS, seed=HELDOUT_SEED_START + 7)
    obs, state, starts = env.reset(), None, np.ones(ENVS, dtype=bool)
    actions: list[list[int]] = [[] for _ in range(ENVS)]
    repeats = pairs = episodes = successes = 0
    stuck_on: list[int] = []  # the repeated action of each failure whose last TAIL actions are one action
    loops: Counter[str] = Counter()  # how the other failures end
    seen = [False] * ENVS  # per env: the target was in view at some step of its current episode
    failures = failures_after_seeing = 0
    while episodes < n_episodes:
        for i in range(ENVS):
            seen[i] = seen[i] or target_in_view(env.envs[i].unwrapped)  # type: ignore[attr-defined]
        action, state = model.predict(obs, state=state, episode_start=starts, deterministic=True)
        for i in range(ENVS):
            if actions[i]:
                pairs += 1
                repeats += int(action[i] == actions[i][-1])
            actions[i].append(int(action[i]))
        obs, rewards, dones, _ = env.step(action)
        for i in np.flatnonzero(dones):
            episodes += 1
            if rewards[i] > 0:
                successes += 1
            else:
                failures += 1
                tail = actions[i][-TAIL:]
                failures_after_seeing += int(seen[i])
                if len(tail) == TAIL and len(set(tail)) == 1:
                    stuck_on.append(tail[0])
                else:
                    loops[loop_kind(actions[i])] += 1
            actions[i] = []
            seen[i] = False  # the next loop's check sees the new episode's first state
        starts = dones
    names = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    stuck = ", ".join(f"{names[a]} {stuck_on.count(a)}" for a in sorted(set(stuck_on))) or "none"
    return (
        f"success {successes / episodes:.2f}, repeat rate {repeats / pairs:.2f}, {failures} failures, "
        f"{len(stuck_on)} ending with one action {TAIL} times ({stuck}), the others: "
        f"{', '.join(f'{kind} {n}' for kind, n in sorted(loops.items())) or 'none'}; "
        f"the target was in view in {failures_after_seeing} of the {failures}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="study directories or model files")
    parser.add_argument("--episodes", type=int, default=120, help="greedy episodes per model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for given in map(Path, args.paths):
        models = sorted(given.glob("trials/*/model.zip")) if given.is_dir() else [given]
        for path in models:
            name = path.parent.name if given.is_dir() else str(path)
            print(f"{name}: {failure_modes(path, args.episodes)}")


if __name__ == "__main__":
    main()
