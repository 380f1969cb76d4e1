"""Where the policy may read tensor values on the host, and a rollout step that does not.

On the CPU reading a tensor's value (``bool(t.any())``, ``.item()``, ``.nonzero()``, ``.cpu()``) costs
nothing more than the read, and skipping work by it (no slow update when no chunk ends, no reset when no
episode starts) is what makes a CPU step cheap. On a GPU every such read waits until the device has run
everything queued before it (a host synchronisation): the host stops launching kernels, the device runs
dry, and a rollout step of many small kernels takes several round trips instead of none. So the memories
and the encoder take a branch-free path there (compute for every row, select with ``torch.where``), and
a rollout step reads nothing back but its actions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.distributions import Distribution

# Tests set this to False to run the device path (no value read on the host) on the CPU too, so that CI,
# which has no GPU, checks that path's exactness laws.
HOST_READS_ON_CPU = True


def host_reads_free(tensor: torch.Tensor) -> bool:
    """Whether reading ``tensor``'s values on the host costs no synchronisation (it lives on the CPU)."""
    return HOST_READS_ON_CPU and tensor.device.type == "cpu"


@contextmanager
def distribution_checks(enabled: bool) -> Iterator[None]:
    """torch.distributions' argument and sample checks on (``enabled``) or off inside the block.

    Each check is a ``bool()`` of a device tensor, a synchronisation per distribution and per
    ``log_prob``. A rollout step on a GPU runs without them; the training pass keeps them, so a policy
    whose outputs turned NaN still fails there (``TrainingDiverged``)."""
    before = Distribution._validate_args
    Distribution._validate_args = bool(enabled) and before
    try:
        yield
    finally:
        Distribution._validate_args = before
