"""LSTM and GRU memories: the classic recurrent baselines, on torch's fused kernels."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from policies.memories.base import Memory, MemoryState, check_positive, reset_where


class RecurrentMemory(Memory):
    """A multi-layer ``nn.LSTM`` or ``nn.GRU`` behind the memory interface.

    ``sequence`` calls the fused kernel once per stretch of time in which no row starts an episode, so a
    batch of long episodes costs a handful of kernel calls instead of one Python step per time step.
    State tensors are batch-first: ``h`` (and ``c`` for the LSTM) are [B, n_layers, hidden_size].

    :param input_dim: width of the per-step features
    :param hidden_size: width of the hidden state and of the outputs
    :param n_layers: number of stacked layers
    :param rnn_kwargs: further arguments of ``nn.LSTM``/``nn.GRU`` (``bias``, ``dropout``), as
        sb3-contrib's ``lstm_kwargs``. Dropout is active in training only, so with it the first PPO update
        no longer reproduces the rollout exactly (as in RecurrentPPO).
    """

    rnn_class: type[nn.RNNBase]
    state_keys: tuple[str, ...]
    # nn.LSTM/nn.GRU arguments the memory sets itself or cannot honour, with what to use instead.
    REFUSED_RNN_KWARGS: dict[str, str] = {
        "input_size": "it is the features' width",
        "hidden_size": "use hidden_size (lstm_hidden_size)",
        "num_layers": "use n_layers (n_lstm_layers)",
        "batch_first": "the memory sets it",
        "bidirectional": "a policy cannot read future steps; use a larger hidden_size or n_layers",
        "proj_size": "use hidden_size for the output width",
        "device": "use MemoryPPO(device=...)",
        "dtype": "the policy's dtype is float32",
    }

    def __init__(
        self,
        input_dim: int,
        hidden_size: int = 128,
        n_layers: int = 1,
        rnn_kwargs: dict[str, Any] | None = None,
    ) -> None:
        check_positive("hidden_size", hidden_size)
        check_positive("n_layers", n_layers)
        rnn_kwargs = dict(rnn_kwargs or {})
        for key in rnn_kwargs:
            if key in self.REFUSED_RNN_KWARGS:
                raise ValueError(
                    f"{self.rnn_class.__name__} argument {key!r} is not supported here: "
                    f"{self.REFUSED_RNN_KWARGS[key]}"
                )
        super().__init__(input_dim)
        self.hidden_size, self.n_layers = hidden_size, n_layers
        self.output_dim = hidden_size
        self.rnn = self.rnn_class(
            self.input_dim, hidden_size, num_layers=n_layers, batch_first=True, **rnn_kwargs
        )

    def initial_state(self, batch_size: int) -> MemoryState:
        zeros = self._anchor.new_zeros(batch_size, self.n_layers, self.hidden_size)
        return {key: zeros for key in self.state_keys}

    def _run(self, x: torch.Tensor, state: MemoryState) -> tuple[torch.Tensor, MemoryState]:
        # torch's RNNs want [n_layers, B, H] states; ours are batch-first.
        hidden = tuple(state[key].transpose(0, 1).contiguous() for key in self.state_keys)
        y, new_hidden = self.rnn(x, hidden if len(hidden) > 1 else hidden[0])
        new_hidden = new_hidden if isinstance(new_hidden, tuple) else (new_hidden,)
        return y, {key: h.transpose(0, 1) for key, h in zip(self.state_keys, new_hidden)}

    def step(
        self, x: torch.Tensor, state: MemoryState, episode_start: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        state = reset_where(state, episode_start, self.initial_state(x.shape[0]))
        y, state = self._run(x.unsqueeze(1), state)
        return y.squeeze(1), state

    def sequence(
        self, x: torch.Tensor, state: MemoryState, episode_starts: torch.Tensor
    ) -> tuple[torch.Tensor, MemoryState]:
        initial = self.initial_state(x.shape[0])
        any_start = episode_starts.bool().any(dim=0)
        any_start[0] = True  # the first stretch begins at t=0 whatever happens
        bounds = any_start.nonzero().squeeze(1).tolist() + [x.shape[1]]
        outputs = []
        for begin, end in zip(bounds[:-1], bounds[1:]):
            state = reset_where(state, episode_starts[:, begin], initial)
            y, state = self._run(x[:, begin:end], state)
            outputs.append(y)
        return torch.cat(outputs, dim=1), state


class LSTMMemory(RecurrentMemory):
    """LSTM memory (the memory of sb3-contrib's RecurrentPPO and of the BabyAI 1.1 agent)."""

    rnn_class = nn.LSTM
    state_keys = ("h", "c")


class GRUMemory(RecurrentMemory):
    """GRU memory."""

    rnn_class = nn.GRU
    state_keys = ("h",)
