"""Pre-LayerNorm Transformer blocks shared by the attention-based memories."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    """Multi-head attention on ``F.scaled_dot_product_attention`` (fused kernels, no weight copies)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(
        self,
        query: torch.Tensor,
        context: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        return self.attend(query, self.key_value(context), attn_mask=attn_mask, is_causal=is_causal)

    def attend(
        self,
        query: torch.Tensor,
        keys_values: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Attention of ``query`` [B, Lq, D] over already projected keys and values ``keys_values``
        [B, Lk, 2D] (``key_value(context)``: what a cache keeps)."""
        return self.attend_projected(self.project_query(query), keys_values, attn_mask, is_causal)

    def project_query(self, query: torch.Tensor) -> torch.Tensor:
        """The queries split into heads: [B, Lq, D] -> [B, H, Lq, D / H]."""
        batch, n_query, d_model = query.shape
        return self.query(query).view(batch, n_query, self.n_heads, d_model // self.n_heads).transpose(1, 2)

    def attend_projected(
        self,
        q: torch.Tensor,
        keys_values: torch.Tensor,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """``attend`` from queries already projected by ``project_query``."""
        batch, n_heads, n_query, head_dim = q.shape
        n_key = keys_values.shape[1]
        k, v = keys_values.view(batch, n_key, 2, n_heads, head_dim).unbind(dim=2)
        out = F.scaled_dot_product_attention(
            q, k.transpose(1, 2), v.transpose(1, 2), attn_mask=attn_mask, is_causal=is_causal
        )
        return self.out(out.transpose(1, 2).reshape(batch, n_query, n_heads * head_dim))

    def weights(self, query: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Unmasked attention probabilities averaged over heads, [B, Lq, Lk] (for inspection only)."""
        batch, n_query, d_model = query.shape
        head_dim = d_model // self.n_heads
        q = self.query(query).view(batch, n_query, self.n_heads, head_dim).transpose(1, 2)
        k = self.key_value(context)[..., :d_model].view(batch, -1, self.n_heads, head_dim).transpose(1, 2)
        return torch.softmax(q @ k.transpose(-2, -1) / head_dim**0.5, dim=-1).mean(dim=1)


class FeedForward(nn.Module):
    """LayerNorm then a two-layer MLP (the residual is added by the caller or by a gate)."""

    def __init__(self, d_model: int, ffn_mult: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(d_model),
            nn.Linear(d_model, ffn_mult * d_model),
            nn.GELU(),
            nn.Linear(ffn_mult * d_model, d_model),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SelfAttentionBlock(nn.Module):
    """``x + SelfAttn(LN(x))`` then ``x + FFN(LN(x))``; causal unless a mask says otherwise."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads)
        self.ffn = FeedForward(d_model, ffn_mult)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(x)
        x = x + self.attn(h, h, attn_mask=attn_mask, is_causal=attn_mask is None)
        return x + self.ffn(x)

    def forward_with_keys_values(
        self,
        x: torch.Tensor,
        context_keys_values: torch.Tensor | None = None,
        context_visible: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The causal ``forward`` [B, L, D], and the keys and values of ``x`` it attended to [B, L, 2D].

        With ``context_keys_values`` [B, M, 2D] every position also attends to those M earlier positions,
        in the rows where ``context_visible`` [B] is true (tlb's previous chunk)."""
        h = self.norm(x)
        keys_values = self.attn.key_value(h)
        if context_keys_values is None:
            x = x + self.attn.attend(h, keys_values, is_causal=True)
        else:
            assert context_visible is not None
            length, n_context = x.shape[1], context_keys_values.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
            mask = torch.cat(
                [
                    context_visible.view(-1, 1, 1, 1).expand(-1, 1, length, n_context),
                    causal.expand(x.shape[0], 1, length, length),
                ],
                dim=-1,
            )
            x = x + self.attn.attend(h, torch.cat([context_keys_values, keys_values], dim=1), attn_mask=mask)
        return x + self.ffn(x), keys_values

    def forward_cached(
        self,
        x: torch.Tensor,
        keys_values: torch.Tensor,
        attn_mask: torch.Tensor,
        normed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The block's output for a few positions ``x`` [B, Q, D] attending to cached ``keys_values``
        [B, L, 2D] (which include those of ``x``) under ``attn_mask``: a rollout step's incremental form.
        ``normed``: ``self.norm(x)`` if already computed."""
        if normed is None:
            normed = self.norm(x)
        x = x + self.attn.attend(normed, keys_values, attn_mask=attn_mask)
        return x + self.ffn(x)


class CrossAttentionBlock(nn.Module):
    """``x + CrossAttn(q=LN(x), kv=LN(memory))`` then ``x + FFN(LN(x))``."""

    def __init__(self, d_model: int, n_heads: int, ffn_mult: int) -> None:
        super().__init__()
        self.norm_query = nn.LayerNorm(d_model)
        self.norm_memory = nn.LayerNorm(d_model)
        self.attn = Attention(d_model, n_heads)
        self.ffn = FeedForward(d_model, ffn_mult)

    def forward(
        self, x: torch.Tensor, memory: torch.Tensor, queries: torch.Tensor | None = None
    ) -> torch.Tensor:
        """With ``queries`` (``self.queries(x)``, computed beforehand for many ``x`` at once), the block
        skips projecting them."""
        if queries is None:
            queries = self.queries(x)
        x = x + self.attn.attend_projected(queries, self.attn.key_value(self.norm_memory(memory)))
        return x + self.ffn(x)

    def queries(self, x: torch.Tensor) -> torch.Tensor:
        """The attention's queries for positions ``x`` [B, L, D], split into heads: [B, H, L, D / H]."""
        return self.attn.project_query(self.norm_query(x))

    def read_weights(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """How much each query position reads each memory slot, averaged over heads: [B, Lq, Lm]."""
        return self.attn.weights(self.norm_query(x), self.norm_memory(memory))


class GRUGate(nn.Module):
    """The GRU-style gate of GTrXL (Parisotto et al., 2020): ``gate(x, y)`` replaces ``x + y``.

    The update gate is biased towards keeping ``x`` at initialisation, so a gated slow state starts close
    to an identity map, which is what makes GTrXL stable to train with RL.
    """

    def __init__(self, d_model: int, bias: float = 2.0) -> None:
        super().__init__()
        self.from_input = nn.Linear(d_model, 3 * d_model, bias=False)
        self.from_state = nn.Linear(d_model, 2 * d_model, bias=False)
        self.candidate_state = nn.Linear(d_model, d_model, bias=False)
        self.bias = nn.Parameter(torch.full((d_model,), bias))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_r, y_z, y_h = self.from_input(y).chunk(3, dim=-1)
        x_r, x_z = self.from_state(x).chunk(2, dim=-1)
        reset = torch.sigmoid(y_r + x_r)
        update = torch.sigmoid(y_z + x_z - self.bias)
        candidate = torch.tanh(y_h + self.candidate_state(reset * x))
        return (1.0 - update) * x + update * candidate
