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
so far, zero beyond), ``position`` [B] (how many steps of the current chunk are done) and what a rollout
step caches about the chunk so far: ``chunk_outputs`` [B, K, D] (the fast stream's outputs, which the
slow update reads at the chunk's end), with one self-attention block ``chunk_keys_values`` [B, K, 2D] (its
keys and values), and ``weights_fingerprint`` [B] (``weights_fingerprint()`` of the weights that computed
them). A rollout step then never recomputes earlier positions, and recomputes the caches from the inputs
once when the weights have changed since (after a PPO update).

Training (``sequence``) reads only the chunk's *inputs* from a state. A training sequence that starts
mid-chunk gets the chunk's earlier steps from ``chunk_inputs``: the encoder features the rollout computed,
stored in the state without gradient. That prefix is replayed through the fast stream with the current
weights (so before the first update it reproduces the rollout exactly), but no gradient flows back
through it to the encoder or to the steps of the previous rollout that produced it.
"""

from __future__ import annotations

import inspect
import weakref
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from policies.host_sync import host_reads_free
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
)

GATES = ("none", "gru")
# The input shift when none is given: this many earlier steps, or chunk_size if smaller.
DEFAULT_INPUT_SHIFT = 2
SHIFT_MIXINGS = ("dense", "channel")
UNKNOWN_WEIGHTS = -1  # a state's caches were made with weights of unknown fingerprint
# How many states returned by recent steps a tlb remembers as stamped (a rollout's, the bootstrap's, ...).
MAX_STAMPS = 8


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
    :param previous_chunk: the first self-attention block also attends to every step of the episode's
        previous chunk (as Block-Recurrent Transformers do), so a chunk's first steps see more than their own
        inputs and the slow latents. Off in the paper's configuration.
    :param input_shift: each step's token also gets a learned linear map of the inputs of the ``input_shift``
        steps before it in the episode (a short causal convolution; RWKV's token shift and Mamba's
        convolution are its per-channel form, ``shift_mixing="channel"``), so what changed since the last
        step is one linear map away; at most ``chunk_size``.
        0 (the paper) for none; None (the default) for 2, or ``chunk_size`` if smaller.
    :param shift_mixing: how the input shift maps the earlier inputs: ``"dense"``, one learned linear map of
        all of them together (input_shift x input_dim -> D), or ``"channel"``, a learned weight per channel
        and earlier step on the projected inputs (as Mamba's depthwise convolution and RWKV's token shift):
        each channel then sees only its own earlier values, enough for what changed since the last step
        (a velocity is one weight of -1 away) but not for a learned fingerprint of the history.
    :param normalize_latents: a LayerNorm after each residual of the slow update (post-norm), so the latents'
        norm stays put: with the paper's plain residuals it grows by about the same amount every chunk, and
        after many chunks each new update turns the latents less and less. On by default; off in the paper.
    :param latent_init_std: standard deviation of the learned initial latents ``I_0`` at initialisation.
        At 0.02 (small, as for the other embeddings) the first slow update swamps ``I_0`` and the N latents
        collapse into nearly one vector; at 1.0 they start as far apart as the updates are large.
    :param input_dim: width of the memory's inputs (defaults to ``d_model``; otherwise projected)
    """

    RESOLVED_DEFAULTS: ClassVar[dict[str, str]] = {"input_shift": f"min({DEFAULT_INPUT_SHIFT}, chunk_size)"}

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
        previous_chunk: bool = False,
        input_shift: int | None = None,
        shift_mixing: str = "dense",
        normalize_latents: bool = True,
        latent_init_std: float = 0.02,
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
        if input_shift is None:
            input_shift = min(DEFAULT_INPUT_SHIFT, chunk_size)
        if int(input_shift) != input_shift or not 0 <= input_shift <= chunk_size:
            raise ValueError(
                f"input_shift must be an integer from 0 to chunk_size={chunk_size}, got {input_shift!r} "
                "(the number of earlier steps each token sees directly, e.g. 1)"
            )
        if not latent_init_std > 0:
            raise ValueError(f"latent_init_std must be positive, got {latent_init_std!r} (e.g. 0.02 or 1.0)")
        if gate not in GATES:
            raise ValueError(f"unknown gate {gate!r}: use one of {', '.join(GATES)}")
        if shift_mixing not in SHIFT_MIXINGS:
            raise ValueError(f"unknown shift_mixing {shift_mixing!r}: use one of {', '.join(SHIFT_MIXINGS)}")
        super().__init__(input_dim or d_model)
        self.output_dim = d_model
        self.d_model, self.n_latents, self.chunk_size = d_model, n_latents, chunk_size

        self.input_proj = nn.Identity() if self.input_dim == d_model else nn.Linear(self.input_dim, d_model)
        self.position_embedding = nn.Parameter(torch.randn(chunk_size, d_model) * 0.02)
        self.initial_latents = nn.Parameter(torch.randn(n_latents, d_model) * latent_init_std)
        self.previous_chunk = bool(previous_chunk)
        self.input_shift = int(input_shift)
        self.shift_mixing = shift_mixing
        dense = self.input_shift > 0 and shift_mixing == "dense"
        channel = self.input_shift > 0 and shift_mixing == "channel"
        self.shift_proj = nn.Linear(self.input_dim * self.input_shift, d_model, bias=False) if dense else None
        # Per earlier step and channel, drawn as a depthwise convolution's kernel is (fan-in: input_shift).
        bound = 1.0 / max(self.input_shift, 1) ** 0.5
        self.shift_weight = (
            nn.Parameter(torch.empty(self.input_shift, d_model).uniform_(-bound, bound)) if channel else None
        )
        # Both options read the inputs of the episode's previous chunk, which the state then carries.
        self.keeps_previous_inputs = self.previous_chunk or self.input_shift > 0
        # The previous chunk's tokens get their own position embedding: "position p of the chunk before".
        self.previous_embedding = (
            nn.Parameter(torch.randn(chunk_size, d_model) * 0.02) if self.previous_chunk else None
        )

        blocks: list[nn.Module] = []
        for layer in range(n_layers):
            blocks.append(SelfAttentionBlock(d_model, n_heads, ffn_mult))
            if (layer + 1) % cross_every == 0:
                blocks.append(CrossAttentionBlock(d_model, n_heads, ffn_mult))
        self.fast_blocks = nn.ModuleList(blocks)
        # The blocks before the first cross-attention block never read the slow latents: sequence() runs
        # them once for all chunks, before its loop over chunk generations.
        self.head_blocks = list(blocks[:cross_every])
        self.tail_blocks = list(blocks[cross_every:])
        # With one self-attention block a rollout step runs the fast stream at its own position only, with
        # the first block's keys and values of the chunk's earlier positions cached in the state.
        self.single_self_block = n_layers == 1
        self.output_norm = nn.LayerNorm(d_model)

        # Slow update G.
        self.update_norm_latents = nn.LayerNorm(d_model)
        self.update_norm_chunk = nn.LayerNorm(d_model)
        self.update_attn = Attention(d_model, n_heads)
        self.update_ffn = FeedForward(d_model, ffn_mult)
        self.attn_gate = GRUGate(d_model) if gate == "gru" else None
        self.ffn_gate = GRUGate(d_model) if gate == "gru" else None
        self.post_norms = (
            nn.ModuleList([nn.LayerNorm(d_model), nn.LayerNorm(d_model)]) if normalize_latents else None
        )
        self.register_buffer("chunk_positions", torch.arange(chunk_size), persistent=False)
        self.register_buffer("shift_offsets", torch.arange(1, self.input_shift + 1), persistent=False)
        self._parameters_cache: list[nn.Parameter] | None = None
        # (sum of parameter versions, fingerprint), and the fingerprint tensors of the last states that steps
        # returned, by id, with the weights' version then: a state carrying one of those very tensors needs
        # no staleness check on the host.
        self._fingerprint_memo: tuple[int, torch.Tensor] | None = None
        self._stamps: dict[int, tuple[weakref.ref[torch.Tensor], int]] = {}

    # ------------------------------------------------------------------ building blocks

    def weights_fingerprint(self) -> int:
        """A 62-bit hash of the weights' values, which states record beside their caches: a step recomputes
        caches made with other weights (after a PPO update), and a model and its saved-and-loaded copy
        agree. Hashed again only when a parameter has been changed in place (its version counter: an
        optimizer step, ``load_state_dict``; not writes to ``.data``)."""
        return int(self._fingerprint())

    def _fingerprint(self) -> torch.Tensor:
        """``weights_fingerprint()`` as a 0-dim int64 tensor on the weights' device, hashed there: a rollout
        step compares states with it without reading anything back to the host."""
        version = self._weights_version()
        if self._fingerprint_memo is None or self._fingerprint_memo[0] != version:
            self._fingerprint_memo = (version, hash_tensors(self._parameter_list()))
        return self._fingerprint_memo[1]

    def _known_fingerprint(self, batch: int) -> torch.Tensor:
        """A [batch] stamp of ``weights_fingerprint()`` if already hashed for the current weights, else of
        ``UNKNOWN_WEIGHTS`` (which makes the next step recompute the caches): what ``sequence`` stamps,
        never hashing inside a training loop whose every optimizer step changes the weights."""
        memo = self._fingerprint_memo
        if memo is not None and memo[0] == self._weights_version():
            return memo[1].expand(batch).clone()
        return torch.full((batch,), UNKNOWN_WEIGHTS, device=self.device)

    def _weights_version(self) -> int:
        """The sum of the parameters' version counters: it changes whenever one is modified in place."""
        return sum(parameter._version for parameter in self._parameter_list())

    def _parameter_list(self) -> list[nn.Parameter]:
        if self._parameters_cache is None:
            self._parameters_cache = list(self.parameters())
        return self._parameters_cache

    def __getstate__(self) -> dict[str, Any]:
        # Weak references cannot be pickled; a copy has stamped no state anyway.
        return {**self.__dict__, "_stamps": {}}

    def _apply(self, *args: Any, **kwargs: Any) -> TemporalLatentBottleneck:
        # .to(), .float(), ...: parameters may be new objects with other bytes.
        self._parameters_cache, self._fingerprint_memo, self._stamps = None, None, {}
        return super()._apply(*args, **kwargs)

    def fast_head(
        self,
        chunk_inputs: torch.Tensor,
        previous: tuple[torch.Tensor, torch.Tensor] | None = None,
        previous_inputs: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The part of the fast stream that does not read the slow latents: input projection, position
        embedding and the (causal) self-attention blocks before the first cross-attention block, over
        whole chunks [S, K, input_dim] -> [S, K, D]; also the first block's keys and values [S, K, 2D].

        ``previous`` (with ``previous_chunk``): the previous chunk's keys and values for the first block
        [S, K, 2D] (``previous_keys_values``) and whether there is one [S] (none in an episode's first).
        ``previous_inputs`` (with ``input_shift``): the previous chunk's inputs [S, K, input_dim] (zero in an
        episode's first chunk)."""
        h = self.input_proj(chunk_inputs) + self.position_embedding
        if self.input_shift:
            assert previous_inputs is not None
            window = torch.cat([previous_inputs, chunk_inputs], dim=1)  # [S, 2K, input_dim]
            k = self.chunk_size
            earlier = [window[:, k - j : 2 * k - j] for j in range(1, self.input_shift + 1)]
            h = h + self.shift_term(torch.stack(earlier, dim=-2))
        first, *others = self.head_blocks
        h, keys_values = first.forward_with_keys_values(h, *(previous or ()))
        for block in others:
            h = block(h)
        return h, keys_values

    def shift_term(self, earlier: torch.Tensor) -> torch.Tensor:
        """The input shift's addition to each token, from the inputs of the ``input_shift`` steps before it
        (nearest first): [..., input_shift, input_dim] -> [..., D]."""
        if self.shift_weight is not None:
            return (self.input_proj(earlier) * self.shift_weight).sum(dim=-2)
        assert self.shift_proj is not None
        return self.shift_proj(earlier.flatten(-2))

    def fast_tail(
        self,
        h: torch.Tensor,
        latents: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
        queries: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The rest of the fast stream, from the first cross-attention block on: [S, L, D] and the latents
        [S, N, D] -> [S, L, D]. With a ``reads`` list, each cross-attention block appends its [S, L, N]
        attention to the latents. ``queries``: the first block's, if already computed from ``h``."""
        for block in self.tail_blocks:
            if isinstance(block, CrossAttentionBlock):
                if reads is not None:
                    reads.append(block.read_weights(h, latents))
                h = block(h, latents, queries)
                queries = None
            else:
                h = block(h)
        return h

    def fast_stream(
        self,
        chunk_inputs: torch.Tensor,
        latents: torch.Tensor,
        reads: list[torch.Tensor] | None = None,
        previous: tuple[torch.Tensor, torch.Tensor] | None = None,
        previous_inputs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Causal fast stream over whole chunks: [S, K, input_dim] and [S, N, D] -> [S, K, D] (pre-norm).

        With a ``reads`` list, each cross-attention block appends its [S, K, N] attention to the latents.
        ``previous``, ``previous_inputs``: see ``fast_head``.
        """
        return self.fast_tail(self.fast_head(chunk_inputs, previous, previous_inputs)[0], latents, reads)

    def previous_keys_values(self, previous_inputs: torch.Tensor, has_previous: torch.Tensor) -> torch.Tensor:
        """The first self-attention block's keys and values of previous chunks [S, K, input_dim] -> [S, K, 2D]
        (zero where ``has_previous`` [S] is false). They depend on the inputs only, never on the latents."""
        first = self.head_blocks[0]
        h = self.input_proj(previous_inputs) + self.previous_embedding
        return first.attn.key_value(first.norm(h)) * has_previous.view(-1, 1, 1)

    def slow_update(self, latents: torch.Tensor, fast_out: torch.Tensor) -> torch.Tensor:
        """``G``: the new slow state after a full chunk, from the fast stream's outputs of that chunk."""
        read = self.update_attn(self.update_norm_latents(latents), self.update_norm_chunk(fast_out))
        latents = self.attn_gate(latents, read) if self.attn_gate is not None else latents + read
        if self.post_norms is not None:
            latents = self.post_norms[0](latents)
        ffn = self.update_ffn(latents)
        latents = self.ffn_gate(latents, ffn) if self.ffn_gate is not None else latents + ffn
        return self.post_norms[1](latents) if self.post_norms is not None else latents

    # ------------------------------------------------------------------ the memory interface

    def recorded_settings(self) -> dict[str, Any]:
        return {
            "input_shift": self.input_shift,
            "shift_mixing": self.shift_mixing,
            "normalize_latents": self.post_norms is not None,
            "previous_chunk": self.previous_chunk,
        }

    @classmethod
    def upgrade_saved_kwargs(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A tlb saved before its options were recorded (no ``input_shift`` among its arguments) was built
        with the paper's configuration, then the default; one saved before ``shift_mixing`` existed had a
        dense shift."""
        if "input_shift" not in kwargs:
            kwargs = {**PAPER_SETTINGS, **kwargs}
        return {"shift_mixing": "dense", **kwargs}

    def diagnostics(self, state: MemoryState) -> dict[str, torch.Tensor]:
        """Per row [B]: ``latent_cosine``, the mean cosine similarity of every pair of slow latents (1: the N
        latents carry one direction), and ``latent_norm``, their mean L2 norm."""
        latents = state["latents"].detach()
        norms = latents.norm(dim=-1)  # [B, N]
        result = {"latent_norm": norms.mean(dim=1)}
        if self.n_latents > 1:
            unit = latents / norms.clamp_min(1e-8).unsqueeze(-1)
            cosine = unit @ unit.transpose(1, 2)  # [B, N, N]
            n = self.n_latents
            result["latent_cosine"] = (cosine.sum(dim=(1, 2)) - cosine.diagonal(dim1=1, dim2=2).sum(1)) / (
                n * (n - 1)
            )
        return result

    def initial_state(self, batch_size: int) -> MemoryState:
        return self._initial_state(batch_size, self._fingerprint())

    def _initial_state(self, batch_size: int, fingerprint: torch.Tensor) -> MemoryState:
        state = {
            "latents": self.initial_latents.expand(batch_size, -1, -1),
            "chunk_inputs": self._anchor.new_zeros(batch_size, self.chunk_size, self.input_dim),
            "chunk_outputs": self._anchor.new_zeros(batch_size, self.chunk_size, self.d_model),
            "position": torch.zeros(batch_size, dtype=torch.long, device=self.device),
            "weights_fingerprint": fingerprint.expand(batch_size).clone(),
        }
        if self.single_self_block:
            state["chunk_keys_values"] = self._anchor.new_zeros(batch_size, self.chunk_size, 2 * self.d_model)
        if self.keeps_previous_inputs:
            # The inputs of the episode's previous chunk (zero in its first chunk), and for a rollout step the
            # first block's keys and values of them (previous_chunk).
            state["previous_inputs"] = self._anchor.new_zeros(batch_size, self.chunk_size, self.input_dim)
            state["has_previous"] = torch.zeros(batch_size, dtype=torch.bool, device=self.device)
            if self.previous_chunk and self.single_self_block:
                state["previous_keys_values"] = self._anchor.new_zeros(
                    batch_size, self.chunk_size, 2 * self.d_model
                )
        return state

    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        return self.step_with_reads(x, state, episode_start, reads=None)

    def _stamp(self, fingerprints: torch.Tensor, version: int) -> None:
        """Remember ``fingerprints`` (a returned state's) as stamped with the weights of ``version``: the most
        recent ``MAX_STAMPS`` of them, by id, forgetting those no longer alive (whose ids may be reused)."""
        stamps = {key: stamp for key, stamp in self._stamps.items() if stamp[0]() is not None}
        stamps.pop(id(fingerprints), None)  # re-inserted last: it is the newest
        stamps[id(fingerprints)] = (weakref.ref(fingerprints), version)
        while len(stamps) > MAX_STAMPS:
            del stamps[next(iter(stamps))]
        self._stamps = stamps

    def _refresh_stale(
        self, state: MemoryState, fingerprint: torch.Tensor, stamped: bool | None
    ) -> MemoryState:
        """Recompute, with the current weights, what a state caches about its chunk so far (the fast
        stream's outputs, the first block's keys and values) where it was computed with other weights:
        after a PPO update the next rollout then continues a chunk exactly as training replays it.

        ``stamped``: True if every row of the state is known to carry ``fingerprint`` (the last step's state,
        weights unchanged since, reset rows included); False if the state is known to be stale (that state,
        weights changed since: recompute, selecting the stale rows on the device); None if unknown (a state
        from elsewhere: only then are the fingerprints read on the host, to skip the recomputation)."""
        if stamped:
            return state
        stale = state["weights_fingerprint"] != fingerprint
        if stamped is None and not bool(stale.any()):
            return state
        position = state["position"].long()
        state = {**state, "weights_fingerprint": fingerprint.expand_as(state["weights_fingerprint"]).clone()}
        previous = self._previous_of(state, recompute=True)
        if previous is not None and "previous_keys_values" in state:
            state["previous_keys_values"] = torch.where(
                stale.view(-1, 1, 1), previous[0], state["previous_keys_values"]
            )
        h, keys_values = self.fast_head(state["chunk_inputs"], previous, state.get("previous_inputs"))
        out = self.fast_tail(h, state["latents"])
        done = (self.chunk_positions < position.unsqueeze(1)).unsqueeze(-1)
        rows = (stale & (position > 0)).view(-1, 1, 1)
        state["chunk_outputs"] = torch.where(rows, out * done, state["chunk_outputs"])
        if "chunk_keys_values" in state:
            state["chunk_keys_values"] = torch.where(rows, keys_values * done, state["chunk_keys_values"])
        return state

    def _previous_of(
        self, state: MemoryState, recompute: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``fast_head``'s ``previous`` for a state: its cached keys and values of the previous chunk, or
        with ``recompute`` (or no cache) those of its previous inputs with the current weights."""
        if not self.previous_chunk:
            return None
        has_previous = state["has_previous"].bool()
        if recompute or "previous_keys_values" not in state:
            return self.previous_keys_values(state["previous_inputs"], has_previous), has_previous
        return state["previous_keys_values"], has_previous

    def _fast_stream_cached(
        self,
        x: torch.Tensor,
        keys_values: torch.Tensor,
        latents: torch.Tensor,
        position: torch.Tensor,
        rows: torch.Tensor,
        reads: list[torch.Tensor] | None,
        previous: tuple[torch.Tensor, torch.Tensor] | None = None,
        window: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The fast stream's output [B, D] at ``position`` only, when it has a single self-attention block
        (the first): that block attends to the keys and values of the chunk's earlier positions, cached in
        the state, plus this step's; everything runs on one token per row instead of K. ``rows``: arange(B),
        which with ``position`` indexes this step's slot of the chunk."""
        h = self.input_proj(x) + self.position_embedding[position]  # [B, D]
        if self.input_shift:
            # window: cat(previous chunk's inputs, this chunk's) [B, 2K, input_dim]; this step: K + position.
            assert window is not None
            earlier = self.chunk_size + position.unsqueeze(1) - self.shift_offsets  # [B, shift]
            h = h + self.shift_term(window[rows.unsqueeze(1), earlier])
        first, *rest = self.fast_blocks
        normed = first.norm(h).unsqueeze(1)  # [B, 1, D]
        keys_values = keys_values.index_put(
            (rows, position), first.attn.key_value(normed)[:, 0]
        )  # [B, K, 2D]
        visible = self.chunk_positions <= position.unsqueeze(1)  # [B, K]
        attended = keys_values
        if previous is not None:
            previous_keys_values, has_previous = previous
            attended = torch.cat([previous_keys_values, keys_values], dim=1)
            visible = torch.cat([has_previous.unsqueeze(1).expand(-1, self.chunk_size), visible], dim=1)
        h = first.forward_cached(h.unsqueeze(1), attended, visible[:, None, None, :], normed)
        for block in rest:  # cross-attention blocks only
            if reads is not None:
                reads.append(block.read_weights(h, latents)[:, 0])
            h = block(h, latents)
        return h[:, 0], keys_values

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
        fingerprint = self._fingerprint()
        version = self._weights_version()
        stamp = self._stamps.get(id(state["weights_fingerprint"]))
        stamped = None
        if stamp is not None and stamp[0]() is state["weights_fingerprint"]:
            stamped = stamp[1] == version
        # Reset rows get the current fingerprint: a fresh state stays fresh, a stale one is compared by row.
        if not host_reads_free(episode_start) or bool(episode_start.any()):
            state = reset_where(state, episode_start, self._initial_state(batch, fingerprint))
        state = self._refresh_stale(state, fingerprint, stamped)
        latents, position = state["latents"], state["position"].long()
        # This step's slot of the chunk, written by index (cheaper than a broadcast torch.where on CPU).
        rows = torch.arange(batch, device=x.device)
        chunk_inputs = state["chunk_inputs"].index_put((rows, position), x)

        # Positions after `position` hold zeros; the causal mask keeps them from affecting this step.
        block_reads: list[torch.Tensor] | None = [] if reads is not None else None
        new_state: MemoryState = {}
        previous = self._previous_of(state)
        previous_inputs = state.get("previous_inputs")
        if self.single_self_block:
            window = torch.cat([previous_inputs, chunk_inputs], dim=1) if self.input_shift else None
            out, new_state["chunk_keys_values"] = self._fast_stream_cached(
                x, state["chunk_keys_values"], latents, position, rows, block_reads, previous, window
            )
        else:
            out = self.fast_stream(chunk_inputs, latents, block_reads, previous, previous_inputs)
            out = out.gather(1, position.view(-1, 1, 1).expand(-1, 1, out.shape[2])).squeeze(1)
        # Causality makes this step's output final: keep it for the slow update at the chunk's end.
        chunk_outputs = state["chunk_outputs"].index_put((rows, position), out)
        y = self.output_norm(out)
        if reads is not None and block_reads:
            per_block = [r if r.dim() == 2 else r[rows, position] for r in block_reads]
            reads.append(torch.stack(per_block).mean(dim=0))

        if self.keeps_previous_inputs:
            for key in ("previous_inputs", "has_previous", "previous_keys_values"):
                if key in state:
                    new_state[key] = state[key]
        complete = position == self.chunk_size - 1
        # On the CPU only the rows whose chunk ends run the slow update (often none); on a GPU every row
        # does, and torch.where keeps the ones that end: finding them would be a host synchronisation.
        on_host = host_reads_free(complete)
        if not on_host or bool(complete.any()):
            done = complete.nonzero().squeeze(1) if on_host else None

            def rows(tensor: torch.Tensor) -> torch.Tensor:
                return tensor if done is None else tensor.index_select(0, done)

            def replace(current: torch.Tensor, ended: torch.Tensor) -> torch.Tensor:
                """``current`` with the rows whose chunk ends replaced by ``ended`` (those rows or all)."""
                if done is not None:
                    return current.index_copy(0, done, ended)
                return torch.where(complete.view(-1, *(1,) * (current.dim() - 1)), ended, current)

            latents = replace(latents, self.slow_update(rows(latents), rows(chunk_outputs)))
            finished = complete.view(-1, 1, 1)
            if self.keeps_previous_inputs:
                # The finished chunk becomes the next chunk's previous one.
                new_state["previous_inputs"] = torch.where(finished, chunk_inputs, state["previous_inputs"])
                new_state["has_previous"] = state["has_previous"] | complete
                if "previous_keys_values" in state:
                    new_state["previous_keys_values"] = replace(
                        state["previous_keys_values"],
                        self.previous_keys_values(rows(chunk_inputs), torch.ones_like(rows(complete))),
                    )
            chunk_inputs = chunk_inputs.masked_fill(finished, 0.0)
            chunk_outputs = chunk_outputs.masked_fill(finished, 0.0)
            if "chunk_keys_values" in new_state:
                new_state["chunk_keys_values"] = new_state["chunk_keys_values"].masked_fill(finished, 0.0)
        new_state.update(
            latents=latents,
            chunk_inputs=chunk_inputs,
            chunk_outputs=chunk_outputs,
            position=(position + 1) % self.chunk_size,
            weights_fingerprint=state["weights_fingerprint"],
        )
        # Every row of this state now carries the current fingerprint: a step continuing it needs no check.
        self._stamp(state["weights_fingerprint"], version)
        return y, new_state

    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        """Chunk-parallel evaluation: one fast-stream call per chunk *generation*, not per step.

        Every row's timeline is cut into segments (the steps of one chunk of one episode); all segments
        that see the slow state after the same number of in-sequence updates (the same generation) are
        packed into one [S_g, K, ·] batch. A segment starting mid-chunk gets the chunk's earlier inputs
        from the carried state (its inputs, never its caches: they are replayed with the current weights),
        so the loop runs about T/K + 1 times whatever the episode boundaries. What does not read the slow
        latents (the input projection, the position embedding, the self-attention blocks before the first
        cross-attention block) runs once for all segments before the loop.
        """
        batch, length, _ = x.shape
        k = self.chunk_size
        device = x.device
        plan = SequencePlan(
            episode_starts.detach().bool().cpu().numpy(), state["position"].detach().long().cpu().numpy(), k
        )

        def index(array: np.ndarray) -> torch.Tensor:
            tensor = torch.from_numpy(array)
            return tensor if device.type == "cpu" else tensor.to(device)

        carried = state["chunk_inputs"].reshape(batch * k, -1)
        source = torch.cat([x.reshape(batch * length, -1), carried, x.new_zeros(1, x.shape[2])])
        packed = source.index_select(0, index(plan.source_index)).view(
            plan.n_segments, k, -1
        )  # generation-major order
        previous_context, previous_inputs = None, None
        if self.keeps_previous_inputs:
            # Each segment's previous chunk: the segment before it in the sequence, the carried state's
            # previous chunk (a row's first segment), or none (an episode's first chunk).
            previous_source = index(plan.previous_source)
            previous_inputs = torch.cat(
                [packed, state["previous_inputs"], packed.new_zeros(1, k, packed.shape[2])]
            ).index_select(0, previous_source)
            has_previous = torch.cat(
                [
                    torch.ones(plan.n_segments, dtype=torch.bool, device=device),
                    state["has_previous"].bool(),
                    torch.zeros(1, dtype=torch.bool, device=device),
                ]
            ).index_select(0, previous_source)
            if self.previous_chunk:
                previous_context = (self.previous_keys_values(previous_inputs, has_previous), has_previous)
        h, keys_values = self.fast_head(packed, previous_context, previous_inputs)
        # The first cross-attention block's queries do not depend on the latents either.
        queries = self.tail_blocks[0].queries(h).split(plan.generation_sizes)

        latent_source = torch.cat([state["latents"], self.initial_latents.unsqueeze(0)])
        latents = latent_source.index_select(0, index(plan.first_latents))
        outputs, segment_latents, updates = [], [], []
        for g, h_g in enumerate(h.split(plan.generation_sizes)):
            if g > 0:
                previous = updates[-1]
                latents = (
                    previous
                    if plan.predecessors[g] is None
                    else previous.index_select(0, index(plan.predecessors[g]))
                )
            out = self.fast_tail(h_g, latents, queries=queries[g])
            outputs.append(out)
            segment_latents.append(latents)
            n_complete = plan.n_complete[g]  # the complete segments come first in a generation
            if n_complete:
                updates.append(self.slow_update(latents[:n_complete], out[:n_complete]))

        fast_out = torch.cat(outputs) if len(outputs) > 1 else outputs[0]  # [S, K, D]
        y = self.output_norm(fast_out.view(-1, self.d_model).index_select(0, index(plan.token_slot)))

        last = index(plan.last_slot)
        done_so_far = index(plan.done_so_far).unsqueeze(-1)  # [B, K, 1]
        new_state = {
            "latents": torch.cat(segment_latents + updates).index_select(0, index(plan.final_latents)),
            "chunk_inputs": packed.index_select(0, last) * done_so_far,
            "chunk_outputs": fast_out.index_select(0, last) * done_so_far,
            "position": index(plan.position_out),
            "weights_fingerprint": self._known_fingerprint(batch),
        }
        if self.single_self_block:
            new_state["chunk_keys_values"] = keys_values.index_select(0, last) * done_so_far
        if previous_inputs is not None:
            # A row whose last chunk is complete carries it as the previous one; otherwise its own previous.
            finished = index(plan.last_complete)
            new_state["previous_inputs"] = torch.where(
                finished.view(-1, 1, 1), packed.index_select(0, last), previous_inputs.index_select(0, last)
            )
            new_state["has_previous"] = finished | has_previous.index_select(0, last)
            if self.previous_chunk and self.single_self_block:
                new_state["previous_keys_values"] = self.previous_keys_values(
                    new_state["previous_inputs"], new_state["has_previous"]
                )
        return y.view(batch, length, -1), new_state


# What the paper's configuration sets differently from ``TemporalLatentBottleneck``'s defaults.
PAPER_SETTINGS: dict[str, Any] = {"input_shift": 0, "normalize_latents": False}


class PaperTemporalLatentBottleneck(TemporalLatentBottleneck):
    """The paper's configuration of the Temporal Latent Bottleneck (memory ``"tlb-paper"``): plain residual
    slow updates whose latents are not normalised, no input shift, no attention to the previous chunk, and
    ``I_0`` drawn at 0.02. ``"tlb"``'s defaults differ in ``input_shift`` (2) and ``normalize_latents``
    (on), chosen from the memory benchmark (docs/results/memory-benchmark.md); every option stays settable
    here, by keyword.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**{**PAPER_SETTINGS, **kwargs})


# The signature that ``make_memory`` and the runners' flag checks read: the base's, with the paper's defaults.
PaperTemporalLatentBottleneck.__init__.__signature__ = inspect.signature(  # type: ignore[attr-defined]
    TemporalLatentBottleneck.__init__
).replace(
    parameters=[
        parameter.replace(default=PAPER_SETTINGS.get(parameter.name, parameter.default))
        for parameter in inspect.signature(TemporalLatentBottleneck.__init__).parameters.values()
    ]
)


class SequencePlan:
    """The index bookkeeping of ``TemporalLatentBottleneck.sequence`` (in numpy: many tiny operations).

    Segments (one chunk of one episode inside one row) get *slots* in generation-major order, the
    complete segments (those that end at the chunk's last position, followed by a slow update) first in
    each generation, so a generation is a contiguous range of slots and its complete segments a prefix.
    """

    def __init__(self, starts: np.ndarray, position: np.ndarray, k: int) -> None:
        batch, length = starts.shape
        t = np.arange(length)
        position_in = np.where(starts[:, 0], 0, position)
        last_start = np.maximum.accumulate(np.where(starts, t, -1), axis=1)
        rel = np.where(last_start >= 0, t - last_start, t + position_in[:, None])  # from the chunk origin
        phase = (rel % k).ravel()  # position inside the chunk
        generation = (rel // k).ravel()  # slow updates of this episode done inside the sequence so far

        new_segment = (phase == 0) | starts.ravel()
        new_segment[::length] = True
        first = np.flatnonzero(new_segment)  # flat (row-major) index of each segment's first step
        self.n_segments = n_segments = len(first)
        segment = np.cumsum(new_segment) - 1
        complete = phase[np.append(first[1:], batch * length) - 1] == k - 1
        seg_generation = generation[first]
        order = np.lexsort((~complete, seg_generation))  # slot -> segment
        slot = np.empty(n_segments, dtype=np.int64)
        slot[order] = np.arange(n_segments)
        n_generations = int(seg_generation.max()) + 1
        bounds = np.searchsorted(seg_generation[order], np.arange(n_generations + 1))
        self.generation_sizes = np.diff(bounds).tolist()
        n_complete = np.bincount(seg_generation[complete], minlength=n_generations)
        self.n_complete = n_complete.tolist()

        # Where each packed [S * K] position reads from: x (flattened), the carried chunk inputs
        # (flattened [B * K]) for a first segment that starts mid-chunk, or a zero row.
        self.token_slot = slot[segment] * k + phase
        source_index = np.full(n_segments * k, batch * length + batch * k, dtype=np.int64)
        source_index[self.token_slot] = np.arange(batch * length)
        prefix_row, prefix_position = np.nonzero(np.arange(k) < position_in[:, None])
        row_first_slot = slot[segment[prefix_row * length]]
        source_index[row_first_slot * k + prefix_position] = batch * length + prefix_row * k + prefix_position
        self.source_index = source_index

        # Generation 0 reads the carried latents of its row, or I_0 (index ``batch``) at an episode start;
        # generation g > 0 reads the update of the segment before it (same row, generation g - 1).
        first_segments = order[: bounds[1]]
        self.first_latents = np.where(
            starts.ravel()[first[first_segments]], batch, first[first_segments] // length
        )
        self.predecessors: list[np.ndarray | None] = [None]
        for g in range(1, n_generations):
            local = slot[order[bounds[g] : bounds[g + 1]] - 1] - bounds[g - 1]
            identity = len(local) == n_complete[g - 1] and bool((local == np.arange(len(local))).all())
            self.predecessors.append(None if identity else local)

        # The state after the sequence: latents index cat(latents of every slot, every update).
        last = segment[t[-1] + np.arange(batch) * length]
        self.last_slot = slot[last]
        last_generation = seg_generation[last]
        update_offset = n_segments + np.concatenate([[0], np.cumsum(n_complete)[:-1]])
        self.final_latents = np.where(
            complete[last],
            update_offset[last_generation] + self.last_slot - bounds[last_generation],
            self.last_slot,
        )
        self.position_out = (phase[t[-1] + np.arange(batch) * length] + 1) % k
        self.last_complete = complete[last]

        # Where each slot's previous chunk comes from (``previous_chunk``), indexing cat(the packed segments,
        # the carried previous chunks [B], a zero chunk): the row's segment before it (generation > 0), the
        # carried one (a row's first segment continuing its episode), or none (an episode's first chunk).
        segment_row = first // length
        continues_carried = (first % length == 0) & ~starts.ravel()[first]
        previous_of_segment = np.where(
            seg_generation > 0,
            slot[np.maximum(np.arange(n_segments) - 1, 0)],
            np.where(continues_carried, n_segments + segment_row, n_segments + batch),
        )
        self.previous_source = np.empty(n_segments, dtype=np.int64)
        self.previous_source[slot] = previous_of_segment
        self.done_so_far = np.arange(k) < self.position_out[:, None]


HASH_MODULUS = 2**31 - 1  # a prime: products of two residues fit in int64, and so do sums of many
HASH_MULTIPLIERS = ((48_271, 11), (16_807, 7))  # two independent streams of per-word coefficients


def hash_tensors(tensors: list[torch.Tensor]) -> torch.Tensor:
    """A 62-bit hash of the bytes of ``tensors`` as a 0-dim int64 tensor, computed on their device.

    Each 32-bit word w_i of the bytes (zero-padded per tensor) adds ``(w_i mod P) * c_i mod P`` with
    position-dependent coefficients c_i, twice with independent coefficients; integer arithmetic, so the
    result is exact and the same on every device and in every summation order."""
    words = []
    for tensor in tensors:
        data = tensor.detach().contiguous().reshape(-1).view(torch.uint8)
        if data.numel() % 4:
            data = torch.cat([data, data.new_zeros(4 - data.numel() % 4)])
        words.append(data.view(torch.int32).long())
    residues = torch.cat(words).remainder(HASH_MODULUS)
    index = torch.arange(residues.numel(), device=residues.device)
    parts = []
    for multiplier, offset in HASH_MULTIPLIERS:
        coefficients = (index * multiplier + offset).remainder(HASH_MODULUS)
        parts.append((residues * coefficients).remainder(HASH_MODULUS).sum().remainder(HASH_MODULUS))
    return parts[0] * HASH_MODULUS + parts[1]
