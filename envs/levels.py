"""Custom BabyAI levels for generalization splits, registered as gymnasium ids on import of ``envs``.

``GoToLocalHeldOutPairs`` is BabyAI's ``GoToLocal`` (one 8x8 room, 8 objects, "go to the {color} {type}")
with the instruction's color/type pairs split in two:

* the **train** split never asks for a held-out pair (``HELD_OUT_PAIRS``), although such objects still appear
  in the room as distractors, so the agent sees them without ever being told to go to them;
* the **test** split asks only for held-out pairs.

Each held-out pair combines a color and a type that both appear in training instructions with other
partners (every color is held out with exactly one type), so the test measures whether the agent composes
a known color and a known type in a combination never instructed, as in BabyAI's systematic generalization
studies. A level whose objects allow no target of the split is discarded by minigrid's own rejection
sampling (``RejectSampling``), so both splits keep GoToLocal's layout distribution.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from minigrid.envs.babyai.core.roomgrid_level import RejectSampling
from minigrid.envs.babyai.core.verifier import GoToInstr, ObjDesc
from minigrid.envs.babyai.goto import GoToLocal

# (color, type) pairs never instructed in training; one per color, each type twice.
HELD_OUT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "ball"),
        ("green", "key"),
        ("blue", "box"),
        ("purple", "ball"),
        ("yellow", "key"),
        ("grey", "box"),
    }
)

SPLITS = ("train", "test")

HELD_OUT_PAIRS_TRAIN_ID = "TLB-GoToLocalHeldOutPairs-Train-v0"
HELD_OUT_PAIRS_TEST_ID = "TLB-GoToLocalHeldOutPairs-Test-v0"


class GoToLocalHeldOutPairs(GoToLocal):
    """``GoToLocal`` whose target is drawn only among the objects whose (color, type) pair belongs to the
    split: not in ``held_out_pairs`` for ``split="train"``, in it for ``split="test"``.

    :param split: ``"train"`` or ``"test"``
    :param held_out_pairs: the (color, type) pairs reserved for the test split
    :param kwargs: ``GoToLocal``'s arguments (``room_size``, ``num_dists``, ...)
    """

    def __init__(
        self,
        split: str = "train",
        held_out_pairs: frozenset[tuple[str, str]] = HELD_OUT_PAIRS,
        **kwargs: Any,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        self.split = split
        self.held_out_pairs = frozenset(held_out_pairs)
        super().__init__(**kwargs)

    def is_split_target(self, color: str, obj_type: str) -> bool:
        """Whether an instruction of this split may ask for a ``color`` ``obj_type``."""
        return ((color, obj_type) in self.held_out_pairs) == (self.split == "test")

    def gen_mission(self) -> None:
        self.place_agent()
        objs = self.add_distractors(num_distractors=self.num_dists, all_unique=False)
        self.check_objs_reachable()
        targets = [obj for obj in objs if self.is_split_target(obj.color, obj.type)]
        if not targets:
            raise RejectSampling(f"no object of the {self.split} split's color/type pairs")
        obj = self._rand_elem(targets)
        self.instrs = GoToInstr(ObjDesc(obj.type, obj.color))


def register_levels() -> None:
    """Register the custom levels with gymnasium; calling it again (a re-import) changes nothing."""
    for env_id, split in ((HELD_OUT_PAIRS_TRAIN_ID, "train"), (HELD_OUT_PAIRS_TEST_ID, "test")):
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="envs.levels:GoToLocalHeldOutPairs", kwargs={"split": split})


register_levels()
