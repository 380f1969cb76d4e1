"""Wrappers that make MiniGrid/BabyAI envs fit Stable-Baselines3 (numeric observations, quiet resets and
an ``is_success`` flag at the end of each episode), and one that shows any env's agent its previous action
and reward."""

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


PREVIOUS_ACTION_KEY = "previous_action"
PREVIOUS_REWARD_KEY = "previous_reward"
OBSERVATION_KEY = "observation"


def action_encoding_space(action_space: gym.Space) -> spaces.Box:
    """The float32 Box in which ``PreviousActionRewardWrapper`` encodes an action of ``action_space``.

    Discrete: a one-hot vector of ``n``; MultiDiscrete: the one-hots of its parts, concatenated; MultiBinary:
    its 0/1 entries; Box: the action itself, flattened, within the action space's bounds.

    :raises ValueError: for other action spaces (Tuple, Dict, ...), which have no encoding here
    """
    if isinstance(action_space, spaces.Discrete):
        return spaces.Box(0.0, 1.0, shape=(int(action_space.n),), dtype=np.float32)
    if isinstance(action_space, spaces.MultiDiscrete):
        return spaces.Box(0.0, 1.0, shape=(int(np.sum(action_space.nvec)),), dtype=np.float32)
    if isinstance(action_space, spaces.MultiBinary):
        return spaces.Box(0.0, 1.0, shape=(int(np.prod(action_space.shape)),), dtype=np.float32)
    if isinstance(action_space, spaces.Box):
        low = np.asarray(action_space.low, dtype=np.float32).reshape(-1)
        high = np.asarray(action_space.high, dtype=np.float32).reshape(-1)
        return spaces.Box(low, high, dtype=np.float32)
    raise ValueError(
        f"PreviousActionRewardWrapper cannot encode actions of {action_space}: it takes Discrete, "
        "MultiDiscrete, MultiBinary and Box action spaces"
    )


class PreviousActionRewardWrapper(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Show the agent, with each observation, the action it took and the reward it got on the step before.

    Memory agents often take them as inputs (RL^2, R2D2, IMPALA's LSTM agents): a policy that sees its own
    last action and the reward it earned can tell what it did from what the env did, and learn within an
    episode. As an env wrapper, ``predict``, ``evaluate_policy`` and every runner need no change: the
    previous action and reward are simply part of the observation. Both are zero after ``reset``.

    The previous action is encoded by ``action_encoding_space`` (one-hot for Discrete, concatenated one-hots
    for MultiDiscrete, the float vector for Box, clipped to its bounds so that the observation stays inside
    its space), the previous reward is one float32 (unbounded). The observation space becomes:

    * for a Dict observation (MiniGrid/BabyAI after ``MissionTokenObsWrapper``): the same Dict with two more
      keys, ``previous_action`` and ``previous_reward`` (float32 Boxes), after its own;
    * for a 1-D Box observation: one flat float32 Box, the observation, then the action, then the reward;
    * for any other observation (an image, a Discrete, ...): ``Dict(observation, previous_action,
      previous_reward)``, the observation as it was.

    :param env: the env to wrap; its action space must be Discrete, MultiDiscrete, MultiBinary or Box
    :raises ValueError: for another action space, or a Dict observation that already has either key
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)  # so that ``env.spec.make()`` rebuilds it too
        gym.Wrapper.__init__(self, env)
        self.action_encoding = action_encoding_space(env.action_space)
        reward_space = spaces.Box(-np.inf, np.inf, shape=(1,), dtype=np.float32)
        observation_space = env.observation_space
        extra = {PREVIOUS_ACTION_KEY: self.action_encoding, PREVIOUS_REWARD_KEY: reward_space}
        if isinstance(observation_space, spaces.Dict):
            taken = sorted(set(extra) & set(observation_space.spaces))
            if taken:
                raise ValueError(
                    f"the observations already have key(s) {', '.join(taken)}: is the env wrapped twice "
                    "by PreviousActionRewardWrapper?"
                )
            self.layout = "dict"
            self.observation_space = spaces.Dict({**observation_space.spaces, **extra}, sort_keys=False)
        elif isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1:
            self.layout = "flat"
            parts = (observation_space, self.action_encoding, reward_space)
            low = np.concatenate([np.asarray(part.low, dtype=np.float32) for part in parts])
            high = np.concatenate([np.asarray(part.high, dtype=np.float32) for part in parts])
            self.observation_space = spaces.Box(low, high, dtype=np.float32)
        else:
            self.layout = "wrapped"
            self.observation_space = spaces.Dict(
                {OBSERVATION_KEY: observation_space, **extra}, sort_keys=False
            )

    def encode_action(self, action: Any) -> np.ndarray:
        """``action`` as a float32 vector of ``action_encoding`` (see ``action_encoding_space``)."""
        space = self.env.action_space
        if isinstance(space, spaces.Discrete):
            encoded = np.zeros(int(space.n), dtype=np.float32)
            encoded[int(np.asarray(action).reshape(-1)[0]) - int(space.start)] = 1.0
            return encoded
        if isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).reshape(-1)
            indices = np.asarray(action).reshape(-1) - np.asarray(space.start).reshape(-1)
            offsets = np.concatenate([[0], np.cumsum(nvec)[:-1]])
            encoded = np.zeros(int(nvec.sum()), dtype=np.float32)
            encoded[offsets + indices.astype(np.int64)] = 1.0
            return encoded
        encoded = np.asarray(action, dtype=np.float32).reshape(-1)
        return np.clip(encoded, self.action_encoding.low, self.action_encoding.high)

    def augment(self, observation: Any, action: np.ndarray, reward: float) -> Any:
        """``observation`` with the encoded previous ``action`` and ``reward``, in the wrapper's layout."""
        reward_array = np.asarray([reward], dtype=np.float32)
        if self.layout == "flat":
            return np.concatenate(
                [np.asarray(observation, dtype=np.float32).reshape(-1), action, reward_array]
            )
        base = dict(observation) if self.layout == "dict" else {OBSERVATION_KEY: observation}
        return {**base, PREVIOUS_ACTION_KEY: action, PREVIOUS_REWARD_KEY: reward_array}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        no_action = np.zeros(self.action_encoding.shape, dtype=np.float32)
        return self.augment(obs, no_action, 0.0), info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return (
            self.augment(obs, self.encode_action(action), float(reward)),
            reward,
            terminated,
            truncated,
            info,
        )
