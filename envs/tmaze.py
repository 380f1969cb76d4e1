"""The Passive T-Maze of Ni et al. (2023), a task whose memory length is set by one number.

Ni, Ma, Eysenbach and Bacon, "When Do Transformers Shine in RL? Decoupling Memory from Credit Assignment"
(NeurIPS 2023); the definition followed here is their ``TMazeClassicPassive`` with the penalty of their
``tmaze_passive`` configuration (twni2016/Memory-RL: ``envs/tmaze.py``, ``configs/envs/tmaze_passive.py``)::

                         up goal    (L, +1)
    start (0, 0) ------- junction   (L, 0)
                         down goal  (L, -1)

- The agent starts at the west end of a corridor of length ``L``. Only the first observation shows the cue:
  which of the two goals north and south of the junction is the right one.
- Observations are two numbers (the ambiguous-position encoding of the paper): ``[0, cue]`` at the first
  step, ``[0, 0]`` anywhere along the corridor, ``[1, y]`` at the junction (y = 0) and at the goals.
- Actions: 0 east, 1 north, 2 west, 3 south. A move into a wall leaves the agent where it is.
- An episode lasts exactly ``L + 1`` steps, the fewest that reach a goal: ``L`` steps east, then one north
  or south. It terminates after step ``L + 1`` wherever the agent is.
- Reward: 1 at the last step if the agent stands on the cued goal, else 0 there. Before that, a penalty of
  ``-1 / L`` for each step that ends behind the schedule of one cell east per step, so the penalties of an
  episode add up to at least -1 and an agent that walks east at once gets none. The memory length is
  ``L``: the cue must be kept from the first step to the last; the credit-assignment length is 1 (the
  reward follows the action that earns it).

A policy without memory can do no better than a return of 0.5 on average (walk east, guess); the optimal
return is 1. ``info["is_success"]`` is true at the end of an episode that reached the cued goal.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

PASSIVE_TMAZE_ID = "TLB-PassiveTMaze-v0"
# Corridor lengths registered under their own ids (``TLB-PassiveTMaze-L100-v0``); any other length is
# ``gymnasium.make(PASSIVE_TMAZE_ID, corridor_length=L)``. Ni et al. evaluate 1 to 1000.
PASSIVE_TMAZE_LENGTHS = (10, 20, 30, 50, 60, 100, 120, 200, 300, 500, 1000)

EAST, NORTH, WEST, SOUTH = 0, 1, 2, 3
MOVES = {EAST: (1, 0), NORTH: (0, 1), WEST: (-1, 0), SOUTH: (0, -1)}


def passive_tmaze_id(corridor_length: int) -> str:
    """The id of the Passive T-Maze with this corridor length, e.g. ``TLB-PassiveTMaze-L100-v0``."""
    return f"TLB-PassiveTMaze-L{corridor_length}-v0"


class PassiveTMaze(gym.Env):
    """The Passive T-Maze (see the module docstring): a cue at the first step, a choice after ``L`` more.

    :param corridor_length: ``L``, the number of steps east from the start to the junction (at least 1);
        it is the task's memory length, and an episode lasts ``L + 1`` steps
    :param penalty: the reward of a step that ends behind schedule; None for Ni et al.'s ``-1 / L``
    """

    metadata = {"render_modes": []}

    def __init__(self, corridor_length: int = 10, penalty: float | None = None) -> None:
        super().__init__()
        if int(corridor_length) != corridor_length or corridor_length < 1:
            raise ValueError(f"corridor_length must be a positive integer, got {corridor_length!r}")
        self.corridor_length = int(corridor_length)
        self.penalty = -1.0 / self.corridor_length if penalty is None else float(penalty)
        if self.penalty > 0:
            raise ValueError(f"penalty must be 0 or negative, got {penalty!r}")
        self.episode_length = self.corridor_length + 1
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.x, self.y, self.goal_y, self.time_step = 0, 0, 1, 0

    def _free(self, x: int, y: int) -> bool:
        """Whether (x, y) is a cell of the maze: the corridor, or one of the two goals beside the junction."""
        if y == 0:
            return 0 <= x <= self.corridor_length
        return x == self.corridor_length and y in (-1, 1)

    def _observation(self) -> np.ndarray:
        if self.time_step == 0:
            return np.array([0.0, self.goal_y], dtype=np.float32)
        if self.x < self.corridor_length:
            return np.zeros(2, dtype=np.float32)
        return np.array([1.0, self.y], dtype=np.float32)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x, self.y, self.time_step = 0, 0, 0
        self.goal_y = int(self.np_random.choice((-1, 1)))
        return self._observation(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if not self.action_space.contains(action):
            raise ValueError(
                f"action must be one of 0 (east), 1 (north), 2 (west), 3 (south), got {action!r}"
            )
        self.time_step += 1
        move_x, move_y = MOVES[int(action)]
        if self._free(self.x + move_x, self.y + move_y):
            self.x, self.y = self.x + move_x, self.y + move_y
        terminated = self.time_step >= self.episode_length
        info: dict[str, Any] = {}
        if terminated:
            success = self.y == self.goal_y
            reward = 1.0 if success else 0.0
            info["is_success"] = success
        else:
            reward = self.penalty if self.x < self.time_step else 0.0
        return self._observation(), reward, terminated, False, info


def register_tmaze_envs() -> None:
    """Register ``TLB-PassiveTMaze-v0`` (corridor length as a keyword) and one id per length of
    ``PASSIVE_TMAZE_LENGTHS``. The episode limit is the maze's own: it ends itself after ``L + 1`` steps."""
    entry_point = f"{__name__}:PassiveTMaze"
    if PASSIVE_TMAZE_ID not in gym.registry:
        gym.register(PASSIVE_TMAZE_ID, entry_point=entry_point)
    for length in PASSIVE_TMAZE_LENGTHS:
        if passive_tmaze_id(length) not in gym.registry:
            gym.register(
                passive_tmaze_id(length), entry_point=entry_point, kwargs={"corridor_length": length}
            )
