"""The fixed vocabulary of MiniGrid/BabyAI mission words, and the mission tokenizer.

A policy embeds mission words by id, so the vocabulary must never change order: a word's id is its index in
``MISSION_VOCABULARY`` plus one, and id 0 (``PAD_ID``) is padding. New words may only be appended.

The vocabulary is complete for minigrid 3.2.0, found by reading its mission generators and then checked by
generating missions for every registered ``BabyAI-*`` and ``MiniGrid-*`` id over 1000 seeds each (every word
below turned up, except "maze"):

* BabyAI missions are produced by ``minigrid/envs/babyai/core/verifier.py``, the ``surface()`` methods of
  the instructions (``go to``, ``pick up``, ``open``, ``put ... next to``, joined by ``and``, ``, then`` and
  ``after you``) and of the object descriptions (``a``/``the``, a color, a type or ``object``, and a
  location ``in front of you``, ``behind you``, ``on your left``/``right``);
* MiniGrid missions are the strings built by each env's ``_gen_grid``/``_gen_mission`` in
  ``minigrid/envs/*.py`` (``MiniGrid-Playground-v0``'s mission is empty; the ``MiniGrid-WFC-*`` mission
  "traverse the maze to get to the goal" is read from the source, since minigrid 3.2.0's wheel lacks the
  pattern images those envs need to reset).

minigrid's own ``DictObservationSpaceWrapper`` vocabulary is made for MiniGrid only: it lacks the BabyAI
words "after", "behind", "front", "in", "left", "next", "on", "right" and "your".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

MISSION_VOCABULARY: tuple[str, ...] = (
    # colors, in minigrid.core.constants.COLOR_TO_IDX order
    "red",
    "green",
    "blue",
    "purple",
    "yellow",
    "grey",
    # object types (BabyAI's "object" stands for any type)
    "box",
    "ball",
    "key",
    "door",
    "object",
    # BabyAI instructions and object descriptions (verifier.py)
    "go",
    "to",
    "pick",
    "up",
    "open",
    "put",
    "next",
    "and",
    ",",
    "then",
    "after",
    "you",
    "a",
    "the",
    "in",
    "front",
    "of",
    "behind",
    "on",
    "your",
    "left",
    "right",
    # the remaining MiniGrid mission words (minigrid/envs/*.py)
    "get",
    "goal",
    "square",
    "avoid",
    "lava",
    "find",
    "opening",
    "use",
    "reach",
    "traverse",
    "rooms",
    "maze",
    "fetch",
    "must",
    "matching",
    "at",
    "end",
    "hallway",
    "from",
    "room",
    "unlock",
    "near",
)

PAD_ID: int = 0
VOCAB_SIZE: int = len(MISSION_VOCABULARY) + 1

# The longest mission the BabyAI grammar can produce (minigrid/envs/babyai/core/levelgen.py, used by
# BossLevel and the Synth levels) is a sequence of two conjunctions of two "put ... next to ..." clauses,
# each object described with a color and a location ("the red ball in front of you", 7 tokens):
# put (17 tokens) + and + put = 35, twice, joined by ", then" or "after you": 35 + 2 + 35 = 72 tokens.
# The longest mission measured over every BabyAI-*/MiniGrid-* id and 1000 seeds each has 41 tokens
# (BabyAI-SynthSeq-v0, seed 825), so 72 is a bound that no mission can exceed, not a sampled estimate.
MAX_MISSION_TOKENS: int = 72

_WORD_TO_ID: dict[str, int] = {word: index + 1 for index, word in enumerate(MISSION_VOCABULARY)}
# A word is a run of characters other than spaces and commas; a comma is a token of its own although
# minigrid writes it against the word before ("open the red door, then ...", "from the blue room, unlock").
_TOKEN_PATTERN = re.compile(r"[^\s,]+|,")


def split_mission(mission: str) -> list[str]:
    """Lower-case a mission and split it into words and commas."""
    return _TOKEN_PATTERN.findall(mission.lower())


def tokenize_mission(mission: str, max_tokens: int = MAX_MISSION_TOKENS) -> np.ndarray:
    """Turn a mission string into a zero-padded array of token ids.

    :param mission: the mission, e.g. "pick up the red ball, then open a door"
    :param max_tokens: length of the returned array
    :return: int64 array of shape ``(max_tokens,)``, the ids of the words then ``PAD_ID``
    :raises ValueError: for a word missing from ``MISSION_VOCABULARY`` or a mission longer than ``max_tokens``
    """
    words = split_mission(mission)
    if len(words) > max_tokens:
        raise ValueError(
            f"mission has {len(words)} tokens, more than the limit of {max_tokens} "
            f"(MAX_MISSION_TOKENS in envs/vocabulary.py): {mission!r}"
        )
    tokens = np.full(max_tokens, PAD_ID, dtype=np.int64)
    for position, word in enumerate(words):
        token = _WORD_TO_ID.get(word)
        if token is None:
            raise ValueError(
                f"unknown mission word {word!r} in mission {mission!r}: "
                "the BabyAI vocabulary in envs/vocabulary.py has no such word"
            )
        tokens[position] = token
    return tokens


def detokenize(ids: Sequence[int] | np.ndarray) -> str:
    """Turn token ids back into a normalised mission string (for debugging and tests).

    Padding is dropped and a comma is glued to the word before it, so
    ``detokenize(tokenize_mission(m)) == " ".join(m.lower().split())`` for a mission written as minigrid
    writes them.

    :raises ValueError: for an id outside ``[0, VOCAB_SIZE)``
    """
    words: list[str] = []
    for token in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
        if token == PAD_ID:
            continue
        if not 0 < token < VOCAB_SIZE:
            raise ValueError(f"token id {token} is outside the vocabulary [0, {VOCAB_SIZE})")
        words.append(MISSION_VOCABULARY[token - 1])
    return " ".join(words).replace(" ,", ",")
