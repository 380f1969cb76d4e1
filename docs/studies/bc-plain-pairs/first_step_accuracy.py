"""Where the plain-demo BC runs' low mode goes wrong: each saved model's validation errors, by step and view.

    python benchmarks/bc_generalization.py --memories M --suites --seed S --demo-noise 0 --save-dir runs/M-S
    PYTHONPATH=. python docs/studies/bc-plain-pairs/first_step_accuracy.py --seed S runs/*-S/bc-*.zip

For each model (trained with ``--seed S``, whose validation split it reproduces: the same ``BCTrainer`` split
of the same 5000 demos) prints one markdown row: validation accuracy; accuracy on the first 500 training
episodes as demonstrated, not relabelled (far above validation accuracy: memorised demos); accuracy at each
episode's first step and at the later steps; how often a wrong prediction equals the demo's previous action
(the copycat signature) against how often the demo itself repeats its previous action; and first-step
accuracy split by what the first view holds: a distractor of the target's type (so only the colour tells the
target apart), or none. A first step has no history: errors there come from reading the view and the
mission, not from memory.
"""

from __future__ import annotations

import argparse
import contextlib
import io

import gymnasium as gym
import numpy as np
import torch

import envs  # noqa: F401  (registers BabyAI ids)
from agents.bc import BCConfig, BCTrainer
from agents.demos import Demos, load_demos
from agents.loading import load_model

ENV_ID = "BabyAI-GoToLocal-v0"
HEADER = (
    "| model | seed | val acc | train acc | first step | later steps "
    "| wrong = previous demo action (demo repeats) "
    "| first step, a same-type distractor in view | first step, none |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def same_type_distractor_in_first_view(env: gym.Env, seed: int) -> bool:
    """Whether the first view of the level with this reset seed holds an object of the mission's type in
    another colour (GoToLocal missions read "go to the <colour> <type>")."""
    with contextlib.redirect_stdout(io.StringIO()):  # minigrid's "Sampling rejected" messages
        env.reset(seed=seed)
    level = env.unwrapped
    colour, kind = level.mission.split()[-2:]
    grid, _ = level.gen_obs_grid()
    return any(c is not None and c.type == kind and c.color != colour for c in grid.grid)


TRAIN_EPISODES = 500


def model_row(path: str, seed: int, demos: Demos, env: gym.Env) -> str:
    """One markdown row of validation statistics for the model saved at ``path``."""
    model = load_model(path)
    trainer = BCTrainer(model, demos, BCConfig(seed=seed))
    policy = model.policy
    policy.set_training_mode(False)
    _, train_accuracy = trainer.validate(trainer.train_episodes[:TRAIN_EPISODES])
    # per validation step: demo action, prediction, previous demo action, t, same-type distractor at t=0
    steps: list[tuple[int, int, int, int, bool]] = []
    with torch.no_grad():
        for episodes in trainer.data.bucketed_batches(trainer.val_episodes, 256, np.random.default_rng(0)):
            batch = trainer.data.batch(episodes)
            n_rows, length = batch.mask.shape
            starts = torch.zeros(n_rows, length, dtype=torch.bool)
            starts[:, 0] = True
            observations = {key: value.flatten(0, 1) for key, value in batch.observations.items()}
            latent_pi, _, _ = policy.memory_latents(observations, policy.initial_state(n_rows), starts)
            logits = policy.action_net(policy.mlp_extractor.forward_actor(latent_pi))
            predictions = logits.argmax(-1).view(n_rows, length)
            for row, episode in enumerate(episodes):
                distractor = same_type_distractor_in_first_view(env, int(demos.seeds[episode]))
                actions = batch.actions[row]
                for t in range(int(batch.mask[row].sum())):
                    previous = int(actions[t - 1]) if t else -1
                    steps.append((int(actions[t]), int(predictions[row, t]), previous, t, distractor))
    table = np.array(steps)
    correct = table[:, 0] == table[:, 1]
    first = table[:, 3] == 0
    wrong = ~correct
    copied = (table[wrong, 1] == table[wrong, 2]).mean()
    repeats = (table[~first, 0] == table[~first, 2]).mean()
    with_distractor = first & (table[:, 4] == 1)
    without = first & (table[:, 4] == 0)
    name = path.rsplit("/", 1)[-1].removeprefix("bc-").removesuffix(".zip")
    return (
        f"| {name} | {seed} | {correct.mean():.3f} | {train_accuracy:.3f} "
        f"| {correct[first].mean():.2f} | {correct[~first].mean():.2f} "
        f"| {copied:.2f} ({repeats:.2f}) | {correct[with_distractor].mean():.2f} of {with_distractor.sum()} "
        f"| {correct[without].mean():.2f} of {without.sum()} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="bc-<memory>.zip files saved by the benchmark's --save-dir")
    parser.add_argument("--seed", type=int, required=True, help="the benchmark's --seed of these models")
    parser.add_argument("--demos", default=f"runs/demos/{ENV_ID}.npz", help="the plain demos they imitated")
    parser.add_argument("--episodes", type=int, default=5000, help="the benchmark's --episodes")
    parser.add_argument("--header", action="store_true", help="print the table's header first")
    args = parser.parse_args()
    torch.set_num_threads(1)
    demos = load_demos(args.demos, env_id=ENV_ID)
    demos = demos.subset(np.arange(args.episodes))
    env = gym.make(ENV_ID)
    if args.header:
        print(HEADER)
    for path in args.models:
        print(model_row(path, args.seed, demos, env), flush=True)


if __name__ == "__main__":
    main()
