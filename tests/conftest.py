"""The suite on any torch device: ``pytest --device cuda`` (or ``TLB_TEST_DEVICE=cuda pytest``).

The default is the CPU, where CI runs. With another device, every model that SB3 places itself (``device=
"auto"``, the default of ``MemoryPPO`` and of the runners) goes there, and tests build their inputs and
memory states on the ``device`` fixture, so the exactness laws are checked where the model computes.
Tests that pass ``device="cpu"`` themselves stay on the CPU.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import stable_baselines3.common.base_class as sb3_base_class
import torch
from stable_baselines3.common.utils import get_device

from policies import host_sync

DEVICE_VARIABLE = "TLB_TEST_DEVICE"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default=os.environ.get(DEVICE_VARIABLE, "cpu"),
        help=f"torch device the tests build models and tensors on (default: ${DEVICE_VARIABLE} or cpu)",
    )


def chosen_device(config: pytest.Config) -> torch.device:
    """The device named by ``--device``, refused as a usage error when this machine cannot run it."""
    name = config.getoption("--device")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise pytest.UsageError(f"--device {name}: not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {name}: this machine has no CUDA device")
    return device


def pytest_configure(config: pytest.Config) -> None:
    chosen_device(config)  # a bad --device fails before collection, in one line


def pytest_report_header(config: pytest.Config) -> str:
    return f"tlb test device: {chosen_device(config)}"


@pytest.fixture(scope="session")
def device(pytestconfig: pytest.Config) -> torch.device:
    """The torch device of this test run (``--device``): build models, inputs and memory states on it."""
    return chosen_device(pytestconfig)


@pytest.fixture(autouse=True)
def models_on_the_test_device(device: torch.device, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """SB3 resolves ``device="auto"`` to the test device (on a CUDA machine it would otherwise take the
    GPU even for a CPU run, and never for a run that asks for another one)."""

    def resolve(requested: torch.device | str = "auto") -> torch.device:
        return get_device(device if requested == "auto" else requested)

    monkeypatch.setattr(sb3_base_class, "get_device", resolve)
    yield


@pytest.fixture(params=["host-reads", "no-host-reads"])
def step_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both code paths of a rollout step, on any device: the CPU's, which reads tensor values on the host
    to skip work, and the GPU's, which never does (``policies.host_sync``); on a GPU both are the latter."""
    if request.param == "no-host-reads":
        monkeypatch.setattr(host_sync, "HOST_READS_ON_CPU", False)
    return str(request.param)
