"""The machine a study or benchmark ran on, and a yardstick of its speed recorded beside its wall times."""

from __future__ import annotations

import os
import platform
import time


def machine_description() -> str:
    """``host: arch, N CPUs, platform``: the machine line of a study's report."""
    return f"{platform.node()}: {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"


def single_thread_gflops(seconds: float = 0.3, size: int = 256) -> float:
    """Float32 matrix-multiply throughput of one torch thread, in GFLOP/s: a yardstick recorded with every
    study, because the same study's wall time differs between machines, and between draws of the same
    virtual machine (1.5-1.7x between two sessions of this project's 2-core machine). Measured before any
    trial starts. It tracks arithmetic throughput, not the per-operation overhead that small memories
    spend much of their time in, so it explains wall times only roughly."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        torch.mm(a, b)  # warm-up
        count, begin = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - begin) < seconds:
            torch.mm(a, b)
            count += 1
    finally:
        torch.set_num_threads(threads)
    return 2 * size**3 * count / elapsed / 1e9
