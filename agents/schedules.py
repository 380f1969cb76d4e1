"""Linear schedules written as the RL Zoo writes them: ``lin_0.001`` starts at 0.001 and falls to 0.

SB3 takes a learning rate or clip range as a number or a callable of the progress remaining (1 at the
start of training, 0 at its end). The RL Zoo's hyperparameter files write a linear decay to zero as the
string ``lin_<start>``; ``parse_schedule`` turns that string into a ``LinearSchedule`` that prints back as
the same string, so a run's command line and ``config.json`` keep the schedule readable and resumable.
"""

from __future__ import annotations

import math

SCHEDULE_PREFIX = "lin_"


class LinearSchedule:
    """``start * progress_remaining``: ``start`` at the first update, 0 at the last (the Zoo's
    ``SimpleLinearSchedule``). Picklable, so a saved model keeps it."""

    def __init__(self, start: float) -> None:
        self.start = float(start)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.start

    def __str__(self) -> str:
        return f"{SCHEDULE_PREFIX}{self.start:g}"

    def __repr__(self) -> str:
        return f"LinearSchedule({self.start!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearSchedule) and other.start == self.start

    def __hash__(self) -> int:
        return hash(("lin", self.start))


def parse_schedule(text: str | float) -> float | LinearSchedule:
    """A positive number (``3e-4``) or a Zoo linear schedule (``lin_0.001``).

    :raises ValueError: for anything else, or a start that is not a positive finite number
    """
    if isinstance(text, str) and text.startswith(SCHEDULE_PREFIX):
        start, schedule = text[len(SCHEDULE_PREFIX) :], True
    else:
        start, schedule = text, False
    try:
        value = float(start)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive number or a linear schedule like lin_0.001, got {text}")
    return LinearSchedule(value) if schedule else value
