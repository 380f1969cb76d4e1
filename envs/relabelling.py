"""Symmetry relabelling of MiniGrid/BabyAI observations: data augmentation for behavioural cloning.

Colours in MiniGrid/BabyAI are pure labels: swapping two colours everywhere (on every object of the grid and
in the mission) gives another valid level in which the bot acts exactly as before. So does swapping the
types ball, box and key in levels where they only serve as targets (the GoTo levels: no key has to unlock a
door). Each training episode can therefore be shown under a random relabelling, drawn once per episode and
applied to every one of its observations, and the demonstrated actions stay correct. A few thousand demos
then no longer fix which colour and type go together, which a memory can otherwise learn by heart.

Walls keep their colour (grey), since they are never named; ``unseen``, ``empty``, ``floor``, ``goal``,
``lava`` and the agent are left alone too. Door colours follow the colour relabelling (the mission names a
door by its colour and a key opens the door of its colour, both preserved).

Do not use it where the evaluation tests exactly what it creates: the ``held-out-pairs`` suite trains on
some colour/type pairs and tests on the others, and a relabelling shows the model every pair.
"""

from __future__ import annotations

import numpy as np
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from envs.vocabulary import MISSION_VOCABULARY, VOCAB_SIZE

RELABELLINGS = ("none", "colors", "colors+types")
COLORED_OBJECTS = ("door", "key", "ball", "box")
SWAPPABLE_TYPES = ("key", "ball", "box")


def _token(word: str) -> int:
    return MISSION_VOCABULARY.index(word) + 1


COLOR_NAMES = tuple(sorted(COLOR_TO_IDX, key=COLOR_TO_IDX.__getitem__))
# A colour's cell code and its mission token, in the same order.
COLOR_CODES = torch.tensor([COLOR_TO_IDX[name] for name in COLOR_NAMES])
COLOR_TOKENS = torch.tensor([_token(name) for name in COLOR_NAMES])
TYPE_CODES = torch.tensor([OBJECT_TO_IDX[name] for name in SWAPPABLE_TYPES])
TYPE_TOKENS = torch.tensor([_token(name) for name in SWAPPABLE_TYPES])
COLORED_CODES = torch.tensor([OBJECT_TO_IDX[name] for name in COLORED_OBJECTS])


class ObservationRelabelling:
    """Random relabelling of colours (and of the types ball, box and key) in MiniGrid/BabyAI observations.

    :param mode: ``"colors"``, or ``"colors+types"`` (only where ball, box and key are interchangeable, as in
        the GoTo levels); ``"none"`` is not a relabelling (the caller skips it)
    :raises ValueError: for an unknown mode
    """

    def __init__(self, mode: str) -> None:
        if mode not in RELABELLINGS[1:]:
            raise ValueError(f"unknown relabelling {mode!r}: use one of {', '.join(RELABELLINGS)}")
        self.swap_types = mode == "colors+types"
        self.n_codes = max(max(COLOR_TO_IDX.values()), max(OBJECT_TO_IDX.values())) + 1

    def __call__(
        self, observations: dict[str, torch.Tensor], generator: torch.Generator
    ) -> dict[str, torch.Tensor]:
        """Relabel a minibatch of episodes ``observations`` (``image`` [E, T, H, W, 3] cell codes, ``mission``
        [E, T, L] token ids, other keys untouched) with one random relabelling per episode (row E)."""
        image, mission = observations["image"], observations["mission"]
        n_episodes = image.shape[0]
        color_perm = self._permutations(n_episodes, len(COLOR_NAMES), generator)  # [E, 6]
        # Per episode, code -> code maps for colours and types, and token -> token for the mission.
        color_map = self._identity(n_episodes, self.n_codes)
        color_map[:, COLOR_CODES] = COLOR_CODES[color_perm]
        token_map = self._identity(n_episodes, VOCAB_SIZE)
        token_map[:, COLOR_TOKENS] = COLOR_TOKENS[color_perm]
        type_map = self._identity(n_episodes, self.n_codes)
        if self.swap_types:
            type_perm = self._permutations(n_episodes, len(SWAPPABLE_TYPES), generator)
            type_map[:, TYPE_CODES] = TYPE_CODES[type_perm]
            token_map[:, TYPE_TOKENS] = TYPE_TOKENS[type_perm]

        codes = image.long()
        types, colors = codes[..., 0], codes[..., 1]
        flat_types, flat_colors = types.reshape(n_episodes, -1), colors.reshape(n_episodes, -1)
        colored = torch.isin(flat_types, COLORED_CODES)
        new_colors = torch.where(colored, color_map.gather(1, flat_colors), flat_colors)
        new_types = type_map.gather(1, flat_types)
        relabelled = torch.stack(
            [new_types.view_as(types), new_colors.view_as(colors), codes[..., 2]], dim=-1
        ).to(image.dtype)
        tokens = token_map.gather(1, mission.long().reshape(n_episodes, -1)).view_as(mission)
        return {**observations, "image": relabelled, "mission": tokens.to(mission.dtype)}

    @staticmethod
    def _identity(n_rows: int, size: int) -> torch.Tensor:
        return torch.arange(size).expand(n_rows, size).clone()

    @staticmethod
    def _permutations(n_rows: int, size: int, generator: torch.Generator) -> torch.Tensor:
        return torch.rand(n_rows, size, generator=generator).argsort(dim=1)


def check_relabelling_space(keys: set[str] | dict[str, np.ndarray]) -> None:
    """Raise a one-line ``ValueError`` unless the observations have MiniGrid's ``image`` and ``mission``."""
    missing = {"image", "mission"} - set(keys)
    if missing:
        raise ValueError(
            f"relabelling colours needs MiniGrid/BabyAI observations with 'image' and 'mission' keys "
            f"(envs.make_env), these lack {sorted(missing)}: use --relabel none"
        )
