"""How BC models of a study fail on unseen GoToLocal levels: the README's copycat measurement.

    PYTHONPATH=. python docs/studies/bc-shift-norm-60ep/failure_modes.py \
        runs/studies/bc-shift-norm-60ep runs/studies/bc-dart-60ep

For every trial's ``model.zip``: 120 greedy episodes on unseen levels (seeds from 1e9 + 7), the rate at which
an action repeats the previous one (the bot's rate in plain demos is 0.40), and for the failed episodes how
many end with the same action 20 times in a row, and which action that is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from agents.ppo import MemoryPPO
from envs import make_vec_env
from envs.suites import HELDOUT_SEED_START

EPISODES, ENVS, TAIL = 120, 8, 20


def failure_modes(model_path: Path) -> str:
    model = MemoryPPO.load(model_path, device="cpu")
    env = make_vec_env("BabyAI-GoToLocal-v0", n_envs=ENVS, seed=HELDOUT_SEED_START + 7)
    obs, state, starts = env.reset(), None, np.ones(ENVS, dtype=bool)
    actions: list[list[int]] = [[] for _ in range(ENVS)]
    repeats = pairs = episodes = successes = 0
    stuck_on: list[int] = []  # the repeated action of each failure whose last TAIL actions are one action
    failures = 0
    while episodes < EPISODES:
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
                if len(tail) == TAIL and len(set(tail)) == 1:
                    stuck_on.append(tail[0])
            actions[i] = []
        starts = dones
    names = ("left", "right", "forward", "pickup", "drop", "toggle", "done")
    stuck = ", ".join(f"{names[a]} {stuck_on.count(a)}" for a in sorted(set(stuck_on))) or "none"
    return (
        f"success {successes / episodes:.2f}, repeat rate {repeats / pairs:.2f}, {failures} failures, "
        f"{len(stuck_on)} ending with one action {TAIL} times ({stuck})"
    )


def main() -> None:
    torch.set_num_threads(1)
    for study in sys.argv[1:]:
        for path in sorted(Path(study).glob("trials/*/model.zip")):
            print(f"{path.parent.name}: {failure_modes(path)}")


if __name__ == "__main__":
    main()
