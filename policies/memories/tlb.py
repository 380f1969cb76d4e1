"""Temporal Latent Bottleneck memory (Didolkar et al., NeurIPS 2022), adapted to a causal agent.

Two streams over the per-step tokens of an episode:

* the slow stream: ``n_latents`` vectors ``I`` that change once per chunk of ``chunk_size`` steps,
  starting every episode from a learned ``I_0``;
* the fast stream: a causal Transformer over the tokens of the current chunk (positions 0..K-1 inside
  the chunk) whose self-attention blocks are interleaved with cross-attention blocks reading ``I``.

At the end of each full chunk the slow state is updated from the fast stream's outputs:
``I <- I + MHA(q=LN(I), kv=LN(F(X, I)))`` then ``I <- I + FFN(LN(I))`` (or a GRU gate instead of each
``+`` with ``gate="gru"``). Chunks are aligned to the episode start.

The state is ``latents`` [B, N, D], ``chunk_inputs`` [B, K, input_dim] (the inputs of the current chunk
so far, zero beyond), ``chunk_outputs`` [B, K, D] (the fast stream's outputs for them, which the slow
update reads at the chunk's end: a rollout step then never recomputes earlier positions) and
``position`` [B] (how many steps of the current chunk are done). Keeping the
chunk's *inputs* rather than attention caches means a training sequence that starts mid-chunk replays the
chunk's beginning with the current weights, exactly as the rollout computed it.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.memories.attention import (
    Attention,
    CrossAttentionBlock,
    FeedForward,
    GRUGate,
    SelfAttentionBlock,
)
from policies.memories.base import (
    Memory,
    MemoryState,
    check_heads,
    check_positive,
    reset_where,
    steps_since_episode_start,
)

GATES = ("none", "gru")


class TemporalLatentBottleneck(Memory):
    """Temporal Latent Bottleneck memory.

    :param d_model: width D of tokens and latents
    :param n_latents: number N of slow latent vectors
    :param chunk_size: number K of environment steps per chunk (the slow stream's period)
    :param n_layers: number of self-attention blocks in the fast stream
    :param cross_every: a cross-attention block follows every ``cross_every`` self-attention blocks
    :param n_heads: attention heads
    :param ffn_mult: hidden width of the feed-forward blocks, as a multiple of D
    :param gate: ``"none"`` (residual slow update, as in the paper) or ``"gru"`` (GTrXL-style gates)
    :param input_dim: width of the memory's inputs (defaults to ``d_model``; otherwise projected)
    """

    def __init__(
        self,
        d_model: int = 128,
        n_latents: int = 4,
        chunk_size: int = 8,
        n_layers: int = 1,
        cross_every: int = 1,
        n_heads: int = 4,
        ffn_mult: int = 2,
        gate: str = "none",
        input_dim: int | None = None,
    ) -> None:
        check_positive("chunk_size", chunk_size, " (the number of steps per chunk, e.g. 8)")
        check_positive("n_latents", n_latents, " (the number of slow latent vectors, e.g. 4)")
        check_positive("n_layers", n_layers)
        check_positive("cross_every", cross_every)
        check_positive("ffn_mult", ffn_mult)
        check_heads(d_model, n_heads)
        if cross_every > n_layers:
            raise ValueError(
                f"cross_every={cross_every} exceeds n_layers={n_layers}: the fast stream would never read "
                "the slow latents; use cross_every <= n_layers"
            )
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}: use one of {', '.join(GATES)}")
        super().__init__(input_dim or d_model)
        self.output_dim = d_model
        self.d_model, self.n_latents, self.chunk_size = d_model, n_latents, chunk_size

        self.input_proj = nn.Identity() if self.input_dim == d_model else nn.Linear(self.input_dim, d_model)
        self.position_embedding = nn.Parameter(torch.randn(chunk_size, d_model) * 0.02)
        self.initial_latents = nn.Parameter(torch.randn(n_latents, d_model) * 0.02)

        blocks: list[nn.Module] = []
        for layer in range(n_layers):
            blocks.append(SelfAttentionBlock(d_model, n_heads, ffn_mult))
            if (layer + 1) % cross_every == 0:
                blocks.append(CrossAttentionBlock(d_model, n_heads, ffn_mult))
        self.fast_blocks = nn.ModuleList(blocks)
        # With one self-attention block a rollout step needs the fast stream at one position only.
        self.single_self_block = n_layers == 1
        self.output_norm = nn.LayerNorm(d_model)

        # Slow update G.
        self.update_norm_latents = nn.LayerNorm(d_model)
        self.update_norm_chunk = nn.LayerNorm(d_model)
        self.update_attn = Attention(d_model, n_heads)
        self.update_ffn = FeedForward(d_model, ffn_mult)
        self.attn_gate = GRUGate(d_model) if gate == "gru" else None
        self.ffn_gate = GRUGate(d_model) if gate == "gru" else None

    # ------------------------------------------------------------------ building blocks

    def fast_stream(
        self, chunk_inputs: torch.Tensor, latents: torch.Tensor, reads: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Causal fast stream over whole chunks: [S, K, input_dim] and [S, N, D] -> [S, K, D] (pre-norm).

        With a ``reads`` list, each cross-attention block appends its [S, K, N] attention to the latents.
        """
        h = self.input_proj(chunk_inputs) + self.position_embedding
        for block in self.fast_blocks:
            if isinstance(block, CrossAttentionBlock):
                if reads is not None:
                    reads.append(block.read_weights(h, latents))
                h = block(h, latents)
            else:
                h = block(h)
        return h

    def slow_update(self, latents: torch.Tensor, fast_out: torch.Tensor) -> torch.Tensor:
        """``G``: the new slow state after a full chunk, from the fast stream's outputs of that chunk."""
        read = self.update_attn(self.update_norm_latents(latents), self.update_norm_chunk(fast_out))
        latents = self.attn_gate(latents, read) if self.attn_gate is not None else latents + read
        ffn = self.update_ffn(latents)
        return self.ffn_gate(latents, ffn) if self.ffn_gate is not None else latents + ffn

    # ------------------------------------------------------------------ the memory interface

    def initial_state(self, batch_size: int) -> MemoryState:
        return {
            "latents": self.initial_latents.expand(batch_size, -1, -1),
            "chunk_inputs": self._anchor.new_zeros(batch_size, self.chunk_size, self.input_dim),
            "chunk_outputs": self._anchor.new_zeros(batch_size, self.chunk_size, self.d_model),
            "position": torch.zeros(batch_size, dtype=torch.long, device=self.device),
        }

    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        return self.step_with_reads(x, state, episode_start, reads=None)

    def _fast_stream_at(
        self,
        chunk_inputs: torch.Tensor,
        latents: torch.Tensor,
        position: torch.Tensor,
        reads: list[torch.Tensor],
    ) -> torch.Tensor:
        """The fast stream's output [B, D] at ``position`` only, when it has a single self-attention block
        (the first): that block needs keys and values of the earlier positions, which depend only on the
        inputs, while everything after it runs on one token per row instead of K."""
        rows = torch.arange(chunk_inputs.shape[0], device=chunk_inputs.device)
        h_all = self.input_proj(chunk_inputs) + self.position_embedding
        visible = torch.arange(self.chunk_size, device=position.device) <= position.unsqueeze(1)  # [B, K]
        first, *rest = self.fast_blocks
        h = first.forward_queries(h_all[rows, position].unsqueeze(1), h_all, visible[:, None, None, :])
        for block in rest:  # cross-attention blocks only
            if reads is not None:
                reads.append(block.read_weights(h, latents)[:, 0])
            h = block(h, latents)
        return h[:, 0]

    def step_with_reads(
        self,
        x: torch.Tensor,
        state: MemoryState,
        episode_start: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, MemoryState]:
        """``step``; with a ``reads`` list, also appends how much this step's token reads each slow latent
        ([B, N], averaged over heads and cross-attention blocks): what the attention plots show."""
        batch = x.shape[0]
        state = reset_where(state, episode_start, self.initial_state(batch))
        latents, position = state["latents"], state["position"].long()
        slot = nn.functional.one_hot(position, self.chunk_size).bool().unsqueeze(-1)  # [B, K, 1]
        chunk_inputs = torch.where(slot, x.unsqueeze(1), state["chunk_inputs"])

        # Positions after `position` hold zeros; the causal mask keeps them from affecting this step.
        rows = torch.arange(batch, device=x.device)
        block_reads: list[torch.Tensor] | None = [] if reads is not None else None
        if self.single_self_block:
            out = self._fast_stream_at(chunk_inputs, latents, position, block_reads)
        else:
            out = self.fast_stream(chunk_inputs, latents, block_reads)[rows, position]
        # Causality makes this step's output final: keep it for the slow update at the chunk's end.
        chunk_outputs = torch.where(slot, out.unsqueeze(1), state["chunk_outputs"])
        y = self.output_norm(out)
        if reads is not None and block_reads:
            per_block = [r if r.dim() == 2 else r[rows, position] for r in block_reads]
            reads.append(torch.stack(per_block).mean(dim=0))

        complete = position == self.chunk_size - 1
        if bool(complete.any()):
            done = complete.nonzero().squeeze(1)
            latents = latents.index_copy(0, done, self.slow_update(latents[done], chunk_outputs[done]))
            finished = complete.view(-1, 1, 1)
            chunk_inputs = torch.where(finished, torch.zeros_like(chunk_inputs), chunk_inputs)
            chunk_outputs = torch.where(finished, torch.zeros_like(chunk_outputs), chunk_outputs)
        new_state = {
            "latents": latents,
            "chunk_inputs": chunk_inputs,
            "chunk_outputs": chunk_outputs,
            "position": (position + 1) % self.chunk_size,
        }
        return y, new_state

    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        """Chunk-parallel evaluation: one fast-stream call per chunk *generation*, not per step.

        Every row's timeline is cut into segments (the steps of one chunk of one episode); all segments
        that see the slow state after the same number of in-sequence updates (the same generation) are
        packed into one [S_g, K, ·] batch. A segment starting mid-chunk gets the chunk's earlier inputs
        from the carried state, so the loop runs about T/K + 1 times whatever the episode boundaries.
        """
        batch, length, _ = x.shape
        k = self.chunk_size
        device = x.device
        starts = episode_starts.bool()

        position_in = torch.where(starts[:, 0], torch.zeros_like(state["position"]), state["position"])
        rel = steps_since_episode_start(starts, position_in)  # steps since the chunk-aligned origin
        phase = rel % k  # position inside the chunk
        generation = rel // k  # number of slow updates of this episode done inside the sequence

        t_index = torch.arange(length, device=device).expand(batch, length)
        new_segment = (phase == 0) | starts | (t_index == 0)
        segment = (new_segment.flatten().cumsum(0) - 1).view(batch, length)  # row-major segment ids
        n_segments = int(segment[-1, -1]) + 1
        seg_row, seg_t0 = new_segment.nonzero(as_tuple=True)
        seg_generation = generation[seg_row, seg_t0]
        seg_episode_start = starts[seg_row, seg_t0]
        seg_end_phase = torch.zeros(n_segments, dtype=torch.long, device=device).scatter_reduce(
            0, segment.flatten(), phase.flatten(), reduce="amax", include_self=False
        )
        seg_complete = seg_end_phase == k - 1

        # Pack inputs into [S, K, input_dim] at their chunk positions, prefixes from the carried state.
        token_slot = (segment * k + phase).flatten()
        prefix_row, prefix_pos = (torch.arange(k, device=device) < position_in.view(-1, 1)).nonzero(
            as_tuple=True
        )
        prefix_slot = segment[prefix_row, 0] * k + prefix_pos
        values = torch.cat([x.reshape(batch * length, -1), state["chunk_inputs"][prefix_row, prefix_pos]])
        packed = (
            x.new_zeros(n_segments * k, self.input_dim)
            .index_put((torch.cat([token_slot, prefix_slot]),), values)
            .view(n_segments, k, self.input_dim)
        )

        latents_in = torch.where(
            seg_episode_start.view(-1, 1, 1),
            self.initial_latents.expand(n_segments, -1, -1),
            state["latents"][seg_row],
        )  # correct for generation 0; later generations read the update of the previous segment
        seg_latents = latents_in.new_zeros(n_segments, self.n_latents, self.d_model)
        updated = seg_latents
        fast_out = x.new_zeros(n_segments, k, self.d_model)
        for g in range(int(seg_generation.max()) + 1):
            ids = (seg_generation == g).nonzero().squeeze(1)
            latents = latents_in[ids] if g == 0 else updated[ids - 1]
            out = self.fast_stream(packed[ids], latents)
            fast_out = fast_out.index_copy(0, ids, out)
            seg_latents = seg_latents.index_copy(0, ids, latents)
            done = seg_complete[ids]
            if bool(done.any()):
                updated = updated.index_copy(0, ids[done], self.slow_update(latents[done], out[done]))

        y = self.output_norm(fast_out.view(n_segments * k, self.d_model)[token_slot]).view(batch, length, -1)

        last = segment[:, -1]
        position_out = (phase[:, -1] + 1) % k
        done_so_far = (torch.arange(k, device=device) < position_out.unsqueeze(1)).unsqueeze(-1)  # [B, K, 1]
        new_state = {
            "latents": torch.where(seg_complete[last].view(-1, 1, 1), updated[last], seg_latents[last]),
            "chunk_inputs": packed[last] * done_so_far,
            "chunk_outputs": fast_out[last] * done_so_far,
            "position": position_out,
        }
        return y, new_state
