"""Wrappers that make MiniGrid/BabyAI envs fit Stable-Baselines3: numeric observations, quiet resets and
an ``is_success`` flag at the end of each episode."""

from __future__ import annotations

import contextlib
import io
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

from envs.vocabulary import MAX_MISSION_TOKENS, VOCAB_SIZE, tokenize_mission

# The largest code of each channel of minigrid's cell encoding (object type, color, state).
CELL_CODE_MAXIMA: tuple[int, int, int] = (
    max(OBJECT_TO_IDX.values()),
    max(COLOR_TO_IDX.values()),
    max(STATE_TO_IDX.values()),
)


class MissionTokenObsWrapper(gym.ObservationWrapper):
    """Replace the mission string of a MiniGrid/BabyAI observation by token ids, and keep resets quiet.

    The observation space becomes ``Dict(image, direction, mission)``:

    * ``image``: the agent's ``(V, V, 3)`` view as minigrid encodes it (object, color, state codes), with the
      high bound set to each channel's largest code. The tight bound matters: Stable-Baselines3 takes a
      uint8 Box bounded by 0..255 for an image, and would transpose it and divide it by 255, whereas the
      encoder embeds the raw integer codes;
    * ``direction``: the agent's direction, ``Discrete(4)``;
    * ``mission``: ``MAX_MISSION_TOKENS`` token ids from ``envs.vocabulary``, zero padded.

    BabyAI levels generate missions by rejection sampling and ``print`` every rejection
    ("Sampling rejected: ...", "Timeout during mission generation: ...") during ``reset()``; that output is
    discarded here so it does not flood the training logs.

    :param env: a MiniGrid/BabyAI env (its observation space has ``image``, ``direction`` and ``mission``)
    :param max_tokens: length of the mission token array
    """

    def __init__(self, env: gym.Env, max_tokens: int = MAX_MISSION_TOKENS) -> None:
        super().__init__(env)
        image_space = env.observation_space["image"]
        # minigrid's own image: (V, V, 3) cell codes, V the agent's view size
        shape = image_space.shape if isinstance(image_space, spaces.Box) else ()
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(
                "MissionTokenObsWrapper needs minigrid's encoded (V, V, 3) image observation, "
                f"got {image_space} (was the env wrapped by an image or fully-observable wrapper first?)"
            )
        self.max_tokens = max_tokens
        high = np.broadcast_to(np.asarray(CELL_CODE_MAXIMA, dtype=np.uint8), image_space.shape)
        self.observation_space = spaces.Dict(
            {
                "image": spaces.Box(low=0, high=high.copy(), shape=image_space.shape, dtype=np.uint8),
                "direction": spaces.Discrete(4),
                "mission": spaces.Box(low=0, high=VOCAB_SIZE - 1, shape=(max_tokens,), dtype=np.int64),
            },
            sort_keys=False,
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        with contextlib.redirect_stdout(io.StringIO()):
            obs, info = self.env.reset(seed=seed, options=options)
        return self.observation(obs), info

    def observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        return {
            "image": np.asarray(observation["image"], dtype=np.uint8),
            "direction": int(observation["direction"]),
            "mission": tokenize_mission(observation["mission"], self.max_tokens),
        }


class SuccessInfoWrapper(gym.Wrapper):
    """Add ``info["is_success"]`` at the end of each episode: true when it terminated with a positive reward.

    MiniGrid/BabyAI envs reward only success (``1 - 0.9 * steps / max_steps``) and end by termination, while
    running out of time is a truncation. Stable-Baselines3's ``Monitor`` (with ``info_keywords``),
    ``EvalCallback`` and ``evaluate_policy`` read ``is_success`` to report success rates.
    """

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            info = dict(info)
            info["is_success"] = bool(terminated and float(reward) > 0)
        return obs, reward, terminated, truncated, info
