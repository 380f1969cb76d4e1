"""The colour/type relabelling of MiniGrid/BabyAI observations used to augment behavioural cloning."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX

from envs import make_env
from envs.relabelling import COLORED_CODES, ObservationRelabelling, check_relabelling_space
from envs.vocabulary import MISSION_VOCABULARY, detokenize


def episode_observations(n_episodes: int = 12, steps: int = 5) -> dict[str, torch.Tensor]:
    """[E, T, ...] observations of GoToLocal episodes (random actions), as a BC minibatch holds them."""
    env = make_env("BabyAI-GoToLocal-v0")
    rows: dict[str, list[np.ndarray]] = {"image": [], "mission": [], "direction": []}
    rng = np.random.default_rng(0)
    for episode in range(n_episodes):
        obs, _ = env.reset(seed=episode)
        frames = []
        for _ in range(steps):
            frames.append(obs)
            obs, *_ = env.step(int(rng.integers(3)))
        for key in rows:
            rows[key].append(np.stack([np.asarray(frame[key]) for frame in frames]))
    return {key: torch.as_tensor(np.stack(value)) for key, value in rows.items()}


def mission_target(tokens: torch.Tensor) -> tuple[str, str]:
    """The (colour, type) a GoToLocal mission asks for: "go to the red ball" -> ("red", "ball")."""
    words = detokenize(tokens.tolist()).split()
    return words[-2], words[-1]


def target_cells(image: torch.Tensor, target: tuple[str, str]) -> torch.Tensor:
    """[H, W] where the image shows an object of the target's colour and type."""
    color, kind = target
    return (image[..., 0] == OBJECT_TO_IDX[kind]) & (image[..., 1] == COLOR_TO_IDX[color])


@pytest.mark.parametrize("mode", ["colors", "colors+types"])
def test_relabelling_keeps_what_the_mission_asks_for_where_it_was(mode: str) -> None:
    """After the relabelling, the cells showing the mission's target are exactly those that showed it before
    (the demonstrated action stays right); walls, floor, unseen cells and object states are untouched."""
    observations = episode_observations()
    relabelled = ObservationRelabelling(mode)(observations, torch.Generator().manual_seed(0))
    assert relabelled["direction"] is observations["direction"]
    changed_missions = 0
    for episode in range(observations["image"].shape[0]):
        before, after = (
            mission_target(observations["mission"][episode, 0]),
            mission_target(relabelled["mission"][episode, 0]),
        )
        changed_missions += before != after
        if mode == "colors":
            assert before[1] == after[1]
        for t in range(observations["image"].shape[1]):
            image, new_image = observations["image"][episode, t], relabelled["image"][episode, t]
            assert torch.equal(target_cells(image, before), target_cells(new_image, after))
            structural = ~torch.isin(image[..., 0], COLORED_CODES)  # not door/key/ball/box
            assert torch.equal(image[structural], new_image[structural])
            assert torch.equal(image[..., 2], new_image[..., 2])
            if mode == "colors":
                assert torch.equal(image[..., 0], new_image[..., 0])
            assert torch.equal(relabelled["mission"][episode, t], relabelled["mission"][episode, 0])
    assert changed_missions >= 6  # a random relabelling per episode, not the identity


def test_one_relabelling_per_episode_for_every_step() -> None:
    """Every step of an episode gets the same relabelling: identical steps stay identical, while the rows of
    a minibatch get different ones."""
    single = episode_observations(n_episodes=1, steps=1)
    repeated = {key: value.expand(16, 6, *value.shape[2:]).clone() for key, value in single.items()}
    relabelled = ObservationRelabelling("colors+types")(repeated, torch.Generator().manual_seed(1))
    images = relabelled["image"]
    assert torch.equal(images, images[:, :1].expand_as(images))
    assert len({detokenize(row[0].tolist()) for row in relabelled["mission"]}) > 4
    assert relabelled["image"].dtype == single["image"].dtype
    assert relabelled["mission"].dtype == single["mission"].dtype


def test_mission_words_other_than_colours_and_types_are_kept() -> None:
    observations = episode_observations(n_episodes=4, steps=1)
    relabelled = ObservationRelabelling("colors+types")(observations, torch.Generator().manual_seed(2))
    kept = {"go", "to", "the", "a", "door", "object"}
    for old, new in zip(observations["mission"][:, 0], relabelled["mission"][:, 0]):
        old_words, new_words = detokenize(old.tolist()).split(), detokenize(new.tolist()).split()
        assert len(old_words) == len(new_words)
        for a, b in zip(old_words, new_words):
            if a in kept:
                assert a == b
            assert b in MISSION_VOCABULARY


def test_bad_relabelling_input_is_a_one_line_error() -> None:
    with pytest.raises(ValueError, match="unknown relabelling 'shapes'"):
        ObservationRelabelling("shapes")
    with pytest.raises(ValueError, match="lack \\['image', 'mission'\\].*--relabel none"):
        check_relabelling_space({"obs": np.zeros(3)})
