"""The BabyAI encoder's mission path: each distinct mission runs through the GRU once, and every row still
gets exactly its own mission's features and gradients."""

from __future__ import annotations

import pytest
import torch

from envs import make_env
from policies import host_sync
from policies.encoder import BabyAIFeaturesExtractor


def test_repeated_missions_encode_like_each_row_alone(device: torch.device, step_path: str) -> None:
    torch.manual_seed(0)
    space = make_env("BabyAI-GoToLocal-v0").observation_space
    encoder = BabyAIFeaturesExtractor(space, features_dim=16, channels=8, mission_dim=16).to(device)
    distinct = torch.randint(1, 20, (3, space["mission"].shape[0]), device=device)
    distinct[0, 4:] = 0  # missions of different lengths, padded with 0
    distinct[1, 7:] = 0
    rows = torch.tensor([2, 0, 0, 1, 2, 2, 0], device=device)  # repeated and interleaved, as in a minibatch
    tokens = distinct[rows]
    weights = torch.randn(len(rows), 16, device=device)

    batched = encoder.encode_mission(tokens)
    (batched * weights).sum().backward()
    batched_grads = [p.grad.clone() for p in encoder.mission_gru.parameters()]
    encoder.zero_grad()
    alone = torch.cat([encoder.encode_mission(row.unsqueeze(0)) for row in tokens])
    (alone * weights).sum().backward()

    torch.testing.assert_close(batched, alone, rtol=0, atol=1e-6)
    assert not torch.allclose(batched[0], batched[1])  # distinct missions stay distinct
    for got, want in zip(batched_grads, (p.grad for p in encoder.mission_gru.parameters())):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_the_padded_mission_path_equals_the_packed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off the CPU every row's padded mission runs through the GRU (no unique missions, no packed lengths:
    host reads); its output at the last real word is the packed GRU's final state."""
    torch.manual_seed(0)
    space = make_env("BabyAI-GoToLocal-v0").observation_space
    encoder = BabyAIFeaturesExtractor(space, features_dim=16, channels=8, mission_dim=16)
    tokens = torch.randint(1, 20, (4, space["mission"].shape[0]))
    tokens[0, 3:] = 0
    tokens[1, 1:] = 0
    tokens[2] = 0  # an empty mission reads the padding's step, as the packed GRU does with length 1
    packed = encoder.encode_mission(tokens)
    monkeypatch.setattr(host_sync, "HOST_READS_ON_CPU", False)
    padded = encoder.encode_mission(tokens)
    torch.testing.assert_close(padded, packed, rtol=0, atol=1e-6)
