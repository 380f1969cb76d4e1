"""The memory interface's laws, for every memory, and the TLB's own invariants."""

from __future__ import annotations

import inspect

import pytest
import torch

from policies import TemporalLatentBottleneck, make_memory
from policies.memories.base import Memory
from policies.memories.registry import memory_class, memory_parameters
from policies.memories.tlb import UNKNOWN_WEIGHTS

INPUT_DIM = 12
TINY_KWARGS: dict[str, dict] = {
    "tlb": dict(d_model=16, n_latents=3, chunk_size=4, n_heads=2, n_layers=2, cross_every=1),
    "tlb-gru-gate": dict(d_model=16, n_latents=2, chunk_size=3, n_heads=2, gate="gru"),
    "tlb-k1-n1": dict(d_model=16, n_latents=1, chunk_size=1, n_heads=2),
    "tlb-previous": dict(
        d_model=16, n_latents=3, chunk_size=4, n_heads=2, previous_chunk=True, latent_init_std=1.0
    ),
    "tlb-previous-deep": dict(
        d_model=16, n_latents=2, chunk_size=3, n_heads=2, n_layers=2, previous_chunk=True, gate="gru"
    ),
    "tlb-shift": dict(d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_shift=2),
    "tlb-shift-all": dict(
        d_model=16, n_latents=2, chunk_size=3, n_heads=2, n_layers=2, input_shift=3, previous_chunk=True
    ),
    "tlb-normalized": dict(d_model=16, n_latents=2, chunk_size=3, n_heads=2, normalize_latents=True),
    "tlb-shift-channel": dict(
        d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_shift=3, shift_mixing="channel"
    ),
    "lstm": dict(hidden_size=8, n_layers=2),
    "gru": dict(hidden_size=8),
    "transformer": dict(d_model=16, window=5, n_heads=2, n_layers=2),
    "none": dict(),
}


def build(variant: str, device: torch.device | str = "cpu") -> Memory:
    torch.manual_seed(0)
    return make_memory(variant.split("-")[0], INPUT_DIM, **TINY_KWARGS[variant]).to(device)


def warm_state(memory: Memory, batch: int) -> dict[str, torch.Tensor]:
    """A state in the middle of an episode (and, for tlb, in the middle of a chunk)."""
    prefix = torch.randn(batch, 6, INPUT_DIM, device=memory.device)
    starts = torch.zeros(batch, 6, device=memory.device)
    _, state = memory.fold_steps(prefix, memory.initial_state(batch), starts)
    return state


def starts_everywhere(batch: int, length: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Episode starts at t=0, mid-chunk, at chunk edges, back to back and nowhere (last row)."""
    starts = torch.zeros(batch, length, dtype=torch.bool, device=device)
    starts[0, 0] = True
    starts[1, [2, 8, 9]] = True  # 2: mid-chunk for K=4 from a state at position 2; 8, 9: consecutive
    starts[2, [4, 13]] = True
    return starts


@pytest.mark.parametrize("variant", list(TINY_KWARGS))
def test_sequence_equals_folded_steps(variant: str, device: torch.device, step_path: str) -> None:
    memory = build(variant, device)
    batch, length = 4, 19
    x = torch.randn(batch, length, INPUT_DIM, device=device)
    state = warm_state(memory, batch)
    starts = starts_everywhere(batch, length, device)
    y_steps, state_steps = memory.fold_steps(x, state, starts)
    y_seq, state_seq = memory.sequence(x, state, starts)
    assert y_seq.shape == (batch, length, memory.output_dim)
    assert (y_steps - y_seq).abs().max() < 1e-5
    assert state_steps.keys() == state_seq.keys()
    for key in state_steps:
        assert (state_steps[key].float() - state_seq[key].float()).abs().max() < 1e-5, key


@pytest.mark.parametrize("variant", ["tlb", "tlb-shift", "lstm", "gru", "transformer", "none"])
def test_long_sequences_equal_folded_steps(variant: str) -> None:
    """512 steps with episodes of 1 to 60 steps starting anywhere: the law holds as well as at 19 steps."""
    memory = build(variant)
    batch, length = 3, 512
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(batch, length, INPUT_DIM, generator=generator)
    starts = torch.rand(batch, length, generator=generator) < 1 / 30
    starts[2] = False  # one row is a single episode longer than the sequence
    state = warm_state(memory, batch)
    with torch.no_grad():
        y_steps, state_steps = memory.fold_steps(x, state, starts)
        y_seq, state_seq = memory.sequence(x, state, starts)
    assert (y_steps - y_seq).abs().max() < 1e-5
    for key in state_steps:
        assert (state_steps[key].float() - state_seq[key].float()).abs().max() < 1e-5, key


@pytest.mark.parametrize("variant", list(TINY_KWARGS))
def test_sequence_is_causal(variant: str) -> None:
    memory = build(variant)
    batch, length, t = 3, 15, 6
    x = torch.randn(batch, length, INPUT_DIM)
    state = warm_state(memory, batch)
    starts = starts_everywhere(batch, length)
    y, _ = memory.sequence(x, state, starts)
    x_changed = x.clone()
    x_changed[:, t + 1 :] += torch.randn_like(x_changed[:, t + 1 :])
    y_changed, _ = memory.sequence(x_changed, state, starts)
    assert torch.allclose(y[:, : t + 1], y_changed[:, : t + 1], atol=1e-6)
    if variant != "none":
        assert not torch.allclose(y[:, t + 1 :], y_changed[:, t + 1 :])


@pytest.mark.parametrize("variant", [v for v in TINY_KWARGS if v != "none"])
def test_episode_start_forgets_the_past(variant: str) -> None:
    memory = build(variant)
    x = torch.randn(2, 9, INPUT_DIM)
    starts = torch.zeros(2, 9, dtype=torch.bool)
    starts[:, 4] = True
    other_past = x.clone()
    other_past[:, :4] = torch.randn(2, 4, INPUT_DIM)
    y, _ = memory.sequence(x, warm_state(memory, 2), starts)
    y_other, _ = memory.sequence(other_past, memory.initial_state(2), starts)
    assert torch.allclose(y[:, 4:], y_other[:, 4:], atol=1e-6)


def test_tlb_slow_state_changes_exactly_after_each_chunk_and_resets() -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=2, chunk_size=3, n_heads=2, input_dim=INPUT_DIM)
    state = memory.initial_state(1)
    latents_seen = [state["latents"]]
    for t in range(9):
        _, state = memory.step(torch.randn(1, INPUT_DIM), state, torch.tensor([t == 0]))
        latents_seen.append(state["latents"])
    changed = [not torch.equal(a, b) for a, b in zip(latents_seen[:-1], latents_seen[1:])]
    assert changed == [False, False, True] * 3
    assert int(state["position"]) == 0
    _, state = memory.step(torch.randn(1, INPUT_DIM), state, torch.tensor([True]))
    assert torch.equal(state["latents"], memory.initial_latents.unsqueeze(0))
    assert int(state["position"]) == 1


def test_tlb_gradient_flows_from_chunk_3_to_chunk_1() -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_dim=INPUT_DIM)
    x = torch.randn(2, 12, INPUT_DIM, requires_grad=True)
    starts = torch.zeros(2, 12, dtype=torch.bool)
    starts[:, 0] = True
    y, _ = memory.sequence(x, memory.initial_state(2), starts)
    (y[:, 8:12] * torch.randn(16)).sum().backward()  # a loss on chunk 3 only (not a plain sum: LayerNorm)
    assert x.grad[:, 0:4].abs().sum() > 0  # reaches chunk 1 through two slow updates
    # ...and through the slow stream alone: the fast stream never sees other chunks directly.
    assert x.grad[:, 4:8].abs().sum() > 0


def test_tlb_sequence_loops_over_chunks_not_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=2, chunk_size=8, n_heads=2, input_dim=INPUT_DIM)
    state = warm_state(memory, 16)
    calls = []
    for name in ("fast_stream", "fast_head", "fast_tail"):
        original = getattr(memory, name)
        monkeypatch.setattr(
            memory, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k)
        )
    starts = torch.rand(16, 64) < 0.05
    memory.sequence(torch.randn(16, 64, INPUT_DIM), state, starts)
    # What does not read the slow latents runs once for all chunks; the rest once per chunk generation.
    assert calls.count("fast_head") == 1
    assert 64 // 8 <= calls.count("fast_tail") <= 64 // 8 + 1
    assert "fast_stream" not in calls


@pytest.mark.parametrize("length", [1, 5, 8, 13, 32, 37])
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(n_layers=2, cross_every=2),
        dict(n_layers=3, cross_every=1),
        dict(previous_chunk=True),
        dict(previous_chunk=True, n_layers=2, cross_every=2),
        dict(input_shift=3, normalize_latents=True),
        dict(input_shift=8, previous_chunk=True, n_layers=2, cross_every=2),
        dict(input_shift=2, shift_mixing="channel"),
        dict(input_shift=8, shift_mixing="channel", previous_chunk=True, n_layers=2, cross_every=2),
    ],
)
def test_tlb_sequence_equals_folded_steps_for_random_episode_boundaries(
    length: int, kwargs: dict, device: torch.device, step_path: str
) -> None:
    """The default chunk and latent counts, random episode ends, sequences shorter than a chunk or not a
    multiple of it, starting mid-chunk: the generation-packed sequence() still equals the steps."""
    torch.manual_seed(length)
    memory = TemporalLatentBottleneck(d_model=16, n_heads=2, input_dim=INPUT_DIM, **kwargs).to(device)
    batch = 8
    _, state = memory.fold_steps(
        torch.randn(batch, 11, INPUT_DIM, device=device),
        memory.initial_state(batch),
        torch.rand(batch, 11, device=device) < 0.2,
    )
    x = torch.randn(batch, length, INPUT_DIM, device=device)
    starts = torch.rand(batch, length, device=device) < 0.15
    starts[0] = False  # one row continues its episode throughout
    y_steps, state_steps = memory.fold_steps(x, state, starts)
    y_seq, state_seq = memory.sequence(x, state, starts)
    assert (y_steps - y_seq).abs().max() < 1e-5
    assert state_steps.keys() == state_seq.keys()
    for key in state_steps:
        assert (state_steps[key].float() - state_seq[key].float()).abs().max() < 1e-5, key


@pytest.mark.parametrize(
    "previous_chunk, input_shift, shift_mixing",
    [(False, 0, "dense"), (True, 0, "dense"), (False, 2, "dense"), (False, 2, "channel")],
)
@pytest.mark.parametrize("n_layers", [1, 2])
def test_tlb_steps_after_a_weight_change_replay_the_chunk_like_sequence(
    n_layers: int,
    previous_chunk: bool,
    input_shift: int,
    shift_mixing: str,
    device: torch.device,
    step_path: str,
) -> None:
    """A state carries caches of its chunk so far (fast-stream outputs, keys and values); after an
    optimizer step a rollout continuing that chunk must use the new weights for it, as training does."""
    torch.manual_seed(0)
    memory = TemporalLatentBottleneck(
        d_model=16,
        n_latents=2,
        chunk_size=4,
        n_heads=2,
        n_layers=n_layers,
        previous_chunk=previous_chunk,
        input_shift=input_shift,
        shift_mixing=shift_mixing,
        input_dim=INPUT_DIM,
    ).to(device)
    batch = 3
    _, state = memory.fold_steps(
        torch.randn(batch, 6, INPUT_DIM, device=device),
        memory.initial_state(batch),
        torch.zeros(batch, 6, device=device),
    )
    assert (state["position"] > 0).all()
    optimizer = torch.optim.SGD(memory.parameters(), lr=0.01)
    y, _ = memory.sequence(
        torch.randn(batch, 5, INPUT_DIM, device=device),
        memory.initial_state(batch),
        torch.ones(batch, 5, device=device),
    )
    y.square().sum().backward()
    optimizer.step()
    x = torch.randn(batch, 7, INPUT_DIM, device=device)
    starts = torch.zeros(batch, 7, dtype=torch.bool, device=device)
    with torch.no_grad():
        y_steps, state_steps = memory.fold_steps(x, state, starts)
        y_seq, state_seq = memory.sequence(x, state, starts)
    assert (y_steps - y_seq).abs().max() < 1e-5
    assert (state_steps["latents"] - state_seq["latents"]).abs().max() < 1e-5
    # A state from sequence() is stamped with the current weights' fingerprint once it is known.
    assert torch.equal(state_steps["weights_fingerprint"], state_seq["weights_fingerprint"])

    # Right after an update, sequence() does not hash the weights: it stamps its caches as unknown, and
    # the next step recomputes them.
    optimizer.zero_grad()
    y, _ = memory.sequence(
        torch.randn(batch, 5, INPUT_DIM, device=device),
        memory.initial_state(batch),
        torch.ones(batch, 5, device=device),
    )
    y.square().sum().backward()
    optimizer.step()
    x_next = torch.randn(batch, INPUT_DIM, device=device)
    with torch.no_grad():
        _, state_seq = memory.sequence(x, state, starts)
        assert (state_seq["weights_fingerprint"] == UNKNOWN_WEIGHTS).all()
        y_from_seq, _ = memory.step(x_next, state_seq, torch.zeros(batch, dtype=torch.bool, device=device))
        _, state_steps = memory.fold_steps(x, state, starts)
        y_from_steps, _ = memory.step(
            x_next, state_steps, torch.zeros(batch, dtype=torch.bool, device=device)
        )
    assert (y_from_seq - y_from_steps).abs().max() < 1e-5


def test_tlb_weights_fingerprint_follows_the_values_of_the_weights() -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_dim=INPUT_DIM)
    copy = TemporalLatentBottleneck(d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_dim=INPUT_DIM)
    assert memory.weights_fingerprint() != copy.weights_fingerprint()
    copy.load_state_dict(memory.state_dict())
    assert memory.weights_fingerprint() == copy.weights_fingerprint() >= 0
    before = memory.weights_fingerprint()
    with torch.no_grad():
        memory.initial_latents.add_(1e-3)
    assert memory.weights_fingerprint() != before
    memory.to(torch.float64)
    assert memory.weights_fingerprint() != before


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(chunk_size=0), "chunk_size must be a positive integer"),
        (dict(n_latents=0), "n_latents must be a positive integer"),
        (dict(d_model=30, n_heads=4), "not divisible by n_heads"),
        (dict(n_layers=1, cross_every=2), "cross_every=2 exceeds n_layers=1"),
        (dict(gate="lstm"), "unknown gate"),
        (dict(latent_init_std=0.0), "latent_init_std must be positive"),
        (dict(chunk_size=4, input_shift=5), "input_shift must be an integer from 0 to chunk_size=4"),
        (dict(shift_mixing="full"), "unknown shift_mixing 'full': use one of dense, channel"),
    ],
)
def test_tlb_bad_arguments_say_what_to_change(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_memory("tlb", INPUT_DIM, **kwargs)


def test_registry_rejects_unknown_names_and_arguments() -> None:
    with pytest.raises(ValueError, match="unknown memory 'lstmm': use one of tlb, tlb-paper, lstm, gru"):
        make_memory("lstmm", INPUT_DIM)
    with pytest.raises(ValueError, match="takes no argument 'chunk_size'.*hidden_size"):
        make_memory("lstm", INPUT_DIM, chunk_size=4)
    with pytest.raises(ValueError, match="window must be a positive integer"):
        make_memory("transformer", INPUT_DIM, window=0)


def test_tlb_reads_are_a_distribution_over_latents_and_leave_step_unchanged() -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=3, chunk_size=2, n_heads=2, input_dim=INPUT_DIM)
    x, start = torch.randn(4, INPUT_DIM), torch.ones(4, dtype=torch.bool)
    reads: list[torch.Tensor] = []
    y_reads, state_reads = memory.step_with_reads(x, memory.initial_state(4), start, reads)
    y, state = memory.step(x, memory.initial_state(4), start)
    assert torch.equal(y, y_reads) and torch.equal(state["latents"], state_reads["latents"])
    assert reads[0].shape == (4, 3)
    assert torch.allclose(reads[0].sum(dim=1), torch.ones(4), atol=1e-5)


def frozen_slow_stream(**kwargs: object) -> TemporalLatentBottleneck:
    """A tlb whose slow update is the identity (its residual branches output zero): the latents stay I_0,
    so whatever reaches a chunk from earlier chunks can only come through the fast stream."""
    torch.manual_seed(0)
    settings = {"input_shift": 0, "normalize_latents": False, **kwargs}  # the paper's update: I + 0 = I
    memory = TemporalLatentBottleneck(
        d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_dim=INPUT_DIM, **settings
    )
    for layer in (memory.update_attn.out, memory.update_ffn.net[-1]):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    return memory


@pytest.mark.parametrize("previous_chunk", [False, True])
def test_tlb_previous_chunk_is_read_directly_and_only_one_chunk_back(previous_chunk: bool) -> None:
    memory = frozen_slow_stream(previous_chunk=previous_chunk)
    x = torch.randn(1, 12, INPUT_DIM, requires_grad=True)
    starts = torch.zeros(1, 12, dtype=torch.bool)
    starts[0, 0] = True
    y, state = memory.sequence(x, memory.initial_state(1), starts)
    (y[0, 8] * torch.randn(16)).sum().backward()  # the first step of chunk 3 (a LayerNorm's sum is constant)
    from_previous = x.grad[0, 4:8].abs().sum()
    assert (from_previous > 0) == previous_chunk
    assert x.grad[0, 0:4].abs().sum() == 0  # two chunks back: not attended
    assert state["latents"].equal(memory.initial_latents.unsqueeze(0))


def test_tlb_previous_chunk_forgets_at_episode_start_inside_a_rollout() -> None:
    memory = frozen_slow_stream(previous_chunk=True)
    state = memory.initial_state(2)
    x = torch.randn(2, 8, INPUT_DIM)
    other = x.clone()
    other[1, :4] = torch.randn(4, INPUT_DIM)  # row 1: another first chunk, then a new episode
    starts = torch.zeros(2, 8, dtype=torch.bool)
    starts[:, 0] = True
    starts[1, 4] = True
    y, _ = memory.fold_steps(x, state, starts)
    y_other, _ = memory.fold_steps(other, state, starts)
    assert torch.allclose(y[1, 4:], y_other[1, 4:], atol=1e-6)


def test_tlb_diagnostics_measure_latent_collapse() -> None:
    memory = TemporalLatentBottleneck(d_model=16, n_latents=3, chunk_size=2, n_heads=2, input_dim=INPUT_DIM)
    state = memory.initial_state(2)
    collapsed = torch.ones(16) * 2.0  # norm 8
    state["latents"] = torch.stack([collapsed.expand(3, 16), torch.eye(16)[:3] * 3.0])
    diagnostics = memory.diagnostics(state)
    assert torch.allclose(diagnostics["latent_cosine"], torch.tensor([1.0, 0.0]), atol=1e-6)
    assert torch.allclose(diagnostics["latent_norm"], torch.tensor([8.0, 3.0]))
    assert (
        make_memory("lstm", INPUT_DIM, hidden_size=8).diagnostics(
            make_memory("lstm", INPUT_DIM, hidden_size=8).initial_state(2)
        )
        == {}
    )


def test_tlb_latent_init_std_sets_the_spread_of_the_initial_latents() -> None:
    torch.manual_seed(0)
    wide = TemporalLatentBottleneck(d_model=64, n_latents=8, latent_init_std=1.0, input_dim=INPUT_DIM)
    narrow = TemporalLatentBottleneck(d_model=64, n_latents=8, input_dim=INPUT_DIM)
    assert 0.8 < float(wide.initial_latents.detach().std()) < 1.2
    assert float(narrow.initial_latents.detach().std()) < 0.03


def test_tlb_normalized_latents_keep_their_norm_over_many_chunks() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 64, INPUT_DIM)
    starts = torch.zeros(2, 64, dtype=torch.bool)
    starts[:, 0] = True
    norms = {}
    for normalize in (False, True):
        memory = TemporalLatentBottleneck(
            d_model=16, n_latents=2, chunk_size=4, n_heads=2, normalize_latents=normalize, input_dim=INPUT_DIM
        )
        _, state = memory.sequence(x, memory.initial_state(2), starts)
        norms[normalize] = float(memory.diagnostics(state)["latent_norm"].mean())
    assert norms[True] == pytest.approx(16**0.5, rel=0.05)  # LayerNorm's scale at initialisation
    assert norms[False] > 3 * norms[True]  # 16 plain residual updates pile up


@pytest.mark.parametrize("input_shift", [0, 2])
def test_tlb_input_shift_reads_exactly_the_steps_before_it_across_chunks(input_shift: int) -> None:
    """With the slow stream frozen and no previous-chunk attention, the first step of chunk 2 sees chunk 1
    only through the shift: exactly its last ``input_shift`` steps."""
    memory = frozen_slow_stream(input_shift=input_shift)
    x = torch.randn(1, 8, INPUT_DIM, requires_grad=True)
    starts = torch.zeros(1, 8, dtype=torch.bool)
    starts[0, 0] = True
    y, _ = memory.sequence(x, memory.initial_state(1), starts)
    (y[0, 4] * torch.randn(16)).sum().backward()  # (the sum of a LayerNorm's output is constant)
    reached = [bool(x.grad[0, t].abs().sum() > 0) for t in range(4)]
    assert reached == [t >= 4 - input_shift for t in range(4)]


def test_tlb_channel_shift_mixes_each_channel_with_its_own_earlier_values() -> None:
    """``shift_mixing="channel"``: channel c of the shift's addition depends only on channel c of the earlier
    inputs, with one weight per step; ``"dense"`` is one linear map of them all, nearest step first."""
    torch.manual_seed(0)
    kwargs = dict(d_model=16, n_latents=2, chunk_size=4, n_heads=2, input_shift=2, input_dim=16)
    channel = TemporalLatentBottleneck(shift_mixing="channel", **kwargs)
    assert channel.shift_proj is None and channel.shift_weight is not None
    earlier = torch.randn(2, 16)  # [input_shift, input_dim], the step before first
    jacobian = torch.autograd.functional.jacobian(channel.shift_term, earlier)  # [16, 2, 16]
    for j in range(2):
        assert torch.allclose(jacobian[:, j], torch.diag(channel.shift_weight[j].detach()))
    dense = TemporalLatentBottleneck(shift_mixing="dense", **kwargs)
    assert dense.shift_weight is None and dense.shift_proj is not None
    assert torch.allclose(dense.shift_term(earlier), dense.shift_proj(torch.cat([earlier[0], earlier[1]])))


def test_tlb_saved_before_shift_mixing_existed_loads_with_a_dense_shift() -> None:
    upgrade = TemporalLatentBottleneck.upgrade_saved_kwargs
    assert upgrade({"input_shift": 2})["shift_mixing"] == "dense"
    assert upgrade({"input_shift": 2, "shift_mixing": "channel"})["shift_mixing"] == "channel"
    assert upgrade({})["input_shift"] == 0  # before any option was recorded: the paper's configuration


def test_tlb_paper_is_the_papers_configuration_and_tlb_differs_only_in_the_chosen_options() -> None:
    paper, ours = make_memory("tlb-paper", INPUT_DIM), make_memory("tlb", INPUT_DIM)
    assert (paper.input_shift, paper.post_norms, paper.previous_chunk) == (0, None, False)
    assert (ours.input_shift, ours.post_norms is not None, ours.previous_chunk) == (2, True, False)
    shared = set(paper.state_dict()) & set(ours.state_dict())
    assert set(paper.state_dict()) <= shared  # tlb adds parameters (the shift, the norms), removes none
    assert make_memory("tlb-paper", INPUT_DIM, input_shift=1).input_shift == 1


def test_tlb_paper_signature_shows_the_papers_defaults() -> None:
    parameters = inspect.signature(memory_class("tlb-paper").__init__).parameters
    assert parameters["input_shift"].default == 0 and parameters["normalize_latents"].default is False
    assert memory_parameters("tlb-paper") == memory_parameters("tlb")
