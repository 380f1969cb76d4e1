"""A causal Transformer over a sliding window of the last W steps of the episode.

The Transformer-XL family's memory, without stale caches: at every step the window's raw inputs are run
through the whole stack, so outputs depend only on the last ``window`` inputs of the current episode and
training gradients reach every one of them. Positions are ages inside the window (learned embedding).
"""

from __future__ import annotations

import torch
from torch import nn

from policies.memories.attention import SelfAttentionBlock
from policies.memories.base import (
    Memory,
    MemoryState,
    check_heads,
    check_positive,
    reset_where,
    steps_since_episode_start,
)


class WindowTransformerMemory(Memory):
    """Causal attention over the last ``window`` steps of the episode.

    State: ``context`` [B, W-1, input_dim] (the previous inputs, oldest first, zero where not part of
    the episode) and ``valid`` [B] (how many of them belong to the current episode).
    """

    def __init__(
        self,
        input_dim: int,
        d_model: int = 128,
        window: int = 16,
        n_layers: int = 1,
        n_heads: int = 4,
        ffn_mult: int = 2,
    ) -> None:
        check_positive("window", window, " (the number of past steps attended to, e.g. 16)")
        check_positive("n_layers", n_layers)
        check_heads(d_model, n_heads)
        super().__init__(input_dim)
        self.output_dim = d_model
        self.window = window
        self.input_proj = nn.Identity() if self.input_dim == d_model else nn.Linear(self.input_dim, d_model)
        self.position_embedding = nn.Parameter(torch.randn(window, d_model) * 0.02)
        self.blocks = nn.ModuleList(SelfAttentionBlock(d_model, n_heads, ffn_mult) for _ in range(n_layers))
        self.output_norm = nn.LayerNorm(d_model)

    def initial_state(self, batch_size: int) -> MemoryState:
        return {
            "context": self._anchor.new_zeros(batch_size, self.window - 1, self.input_dim),
            "valid": torch.zeros(batch_size, dtype=torch.long, device=self.device),
        }

    def _attend(self, windows: torch.Tensor, n_valid: torch.Tensor) -> torch.Tensor:
        """Run the stack on [M, W, input_dim] windows whose last ``n_valid`` [M] slots are real; return
        the output of the last slot [M, D]."""
        slots = torch.arange(self.window, device=windows.device)
        valid = slots >= (self.window - n_valid).unsqueeze(1)  # [M, W]
        causal = slots.view(-1, 1) >= slots.view(1, -1)  # [W, W]
        # Each slot also sees itself, so padded query slots never produce NaNs; real slots never read them.
        mask = causal & (valid.unsqueeze(1) | torch.eye(self.window, dtype=torch.bool, device=windows.device))
        h = self.input_proj(windows) + self.position_embedding
        for block in self.blocks:
            h = block(h, attn_mask=mask.unsqueeze(1))
        return self.output_norm(h[:, -1])

    def _next_state(self, context_and_inputs: torch.Tensor, n_valid: torch.Tensor) -> MemoryState:
        valid = torch.clamp(n_valid, max=self.window - 1)
        context = context_and_inputs[:, context_and_inputs.shape[1] - (self.window - 1) :]
        keep = torch.arange(self.window - 1, device=context.device) >= (self.window - 1 - valid).unsqueeze(1)
        return {"context": context * keep.unsqueeze(-1), "valid": valid}

    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        state = reset_where(state, episode_start, self.initial_state(x.shape[0]))
        windows = torch.cat([state["context"], x.unsqueeze(1)], dim=1)
        n_valid = state["valid"] + 1
        return self._attend(windows, n_valid), self._next_state(windows, n_valid)

    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        batch, length, width = x.shape
        valid_in = torch.where(episode_starts[:, 0].bool(), torch.zeros_like(state["valid"]), state["valid"])
        n_valid = torch.clamp(steps_since_episode_start(episode_starts, valid_in) + 1, max=self.window)
        full = torch.cat([state["context"], x], dim=1)  # [B, W-1+T, input_dim]
        windows = full.unfold(1, self.window, 1).transpose(2, 3)  # [B, T, W, input_dim]
        y = self._attend(windows.reshape(batch * length, self.window, width), n_valid.flatten())
        return y.view(batch, length, -1), self._next_state(full, n_valid[:, -1])
