"""Observation encoders: the BabyAI 1.1 encoder for MiniGrid/BabyAI observations, SB3's for the rest."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import get_flattened_obs_dim, is_image_space
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from torch import nn

from policies.host_sync import host_reads_free

MINIGRID_KEYS = ("image", "direction", "mission")
# Spaces SB3 preprocesses into a flat float vector per observation (one-hot for the discrete ones).
FLAT_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def is_minigrid_observation_space(observation_space: gym.Space) -> bool:
    """True for the Dict space of ``envs.MissionTokenObsWrapper`` (cell codes, direction, mission tokens),
    also with more keys of flat spaces after them (``envs.PreviousActionRewardWrapper``'s previous action
    and reward): ``BabyAIFeaturesExtractor`` reads those flattened, beside the direction."""
    if not isinstance(observation_space, spaces.Dict):
        return False
    if not set(MINIGRID_KEYS) <= set(observation_space.spaces):
        return False
    return all(isinstance(observation_space[key], FLAT_SPACES) for key in extra_keys(observation_space))


def extra_keys(observation_space: spaces.Dict) -> tuple[str, ...]:
    """The keys of a MiniGrid/BabyAI Dict space beyond ``MINIGRID_KEYS``, in the space's order."""
    return tuple(key for key in observation_space.spaces if key not in MINIGRID_KEYS)


class FiLMBlock(nn.Module):
    """A residual FiLM block: two 3x3 convolutions whose output is scaled and shifted by the mission.

    BabyAI 1.1 uses batch normalisation inside; it is left out here because batch statistics would make
    an observation's features depend on the rest of its batch, so a rollout step (one batch) and a
    training minibatch (another) would disagree and the PPO ratio would not start at 1.
    """

    def __init__(self, channels: int, condition_dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.scale_shift = nn.Linear(condition_dim, 2 * channels)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = self.conv2(torch.relu(self.conv1(x)))
        scale, shift = self.scale_shift(condition).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x + torch.relu(h * scale + shift)


class BabyAIFeaturesExtractor(BaseFeaturesExtractor):
    """Encoder in the style of BabyAI 1.1 (``bow_endpool_res``).

    * every grid cell's (object, color, state) codes are embedded as a bag of words (a sum of learned
      per-attribute embeddings), then a 3x3 convolution;
    * the mission's token ids go through a word embedding and a GRU;
    * residual FiLM blocks condition the image features on the mission; a max-pool over the grid;
    * the agent's direction (one-hot, as SB3 preprocesses a Discrete space) joins before the last layer,
      and so does every key of the space beyond the MiniGrid ones (e.g. the previous action and reward of
      ``envs.PreviousActionRewardWrapper``), flattened. Without such keys the layer is exactly the one of
      models saved before they existed, so those still load.

    :param observation_space: the Dict space produced by ``envs.make_env`` for a MiniGrid/BabyAI id
    :param features_dim: output width
    :param channels: width of the cell embeddings and convolutions (BabyAI 1.1 used 128 on GPUs; on a CPU
        32 channels cost a seventh of the time per minibatch)
    :param word_dim: width of the word embeddings
    :param mission_dim: hidden size of the mission GRU
    :param n_film: number of FiLM blocks
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        features_dim: int = 128,
        channels: int = 32,
        word_dim: int = 32,
        mission_dim: int = 64,
        n_film: int = 2,
    ) -> None:
        if not is_minigrid_observation_space(observation_space):
            raise ValueError(
                f"BabyAIFeaturesExtractor needs a Dict space with keys {MINIGRID_KEYS}, and maybe more of "
                f"flat spaces (Box, Discrete, MultiDiscrete, MultiBinary; use envs.make_env), "
                f"got {observation_space}"
            )
        super().__init__(observation_space, features_dim)
        image_space = observation_space["image"]
        attribute_sizes = (
            np.asarray(image_space.high, dtype=np.int64).reshape(-1, image_space.shape[-1]).max(0) + 1
        )
        offsets = np.concatenate([[0], np.cumsum(attribute_sizes)[:-1]])
        self.register_buffer(
            "attribute_offsets", torch.as_tensor(offsets, dtype=torch.long), persistent=False
        )
        self.cell_embedding = nn.Embedding(int(attribute_sizes.sum()), channels)
        self.image_conv = nn.Sequential(nn.Conv2d(channels, channels, kernel_size=3, padding=1), nn.ReLU())

        vocab_size = int(np.max(observation_space["mission"].high)) + 1
        self.word_embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.mission_gru = nn.GRU(word_dim, mission_dim, batch_first=True)
        self.film_blocks = nn.ModuleList(FiLMBlock(channels, mission_dim) for _ in range(n_film))
        self.pool = nn.AdaptiveMaxPool2d(1)
        n_directions = int(observation_space["direction"].n)
        self.extra_keys = extra_keys(observation_space)
        n_extra = sum(get_flattened_obs_dim(observation_space[key]) for key in self.extra_keys)
        self.head = nn.Sequential(nn.Linear(channels + n_directions + n_extra, features_dim), nn.ReLU())

    def encode_mission(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B, L] token ids (0 = padding) -> [B, mission_dim]: the GRU's state after the last real word.

        Each distinct mission runs through the GRU once: a rollout or a minibatch repeats its episodes'
        missions at every step (MiniGrid-Memory's is the same everywhere), and the GRU was about a sixth of
        the encoder's training time on 256 GoToLocal steps."""
        if not host_reads_free(tokens):
            # Off the CPU, unique missions and packed lengths would be host reads: run every row's padded
            # mission and read the GRU's output at its last real word (causal, so the padding after it
            # does not reach it).
            last = (tokens != 0).sum(dim=1).clamp(min=1) - 1
            outputs, _ = self.mission_gru(self.word_embedding(tokens))
            return outputs[torch.arange(tokens.shape[0], device=tokens.device), last]
        missions, row_mission = torch.unique(tokens, dim=0, return_inverse=True)
        lengths = (missions != 0).sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(
            self.word_embedding(missions), lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.mission_gru(packed)
        return hidden[-1].index_select(0, row_mission)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        cells = observations["image"].long() + self.attribute_offsets  # [B, H, W, 3]
        x = self.cell_embedding(cells).sum(dim=3).permute(0, 3, 1, 2)  # bag of words -> [B, C, H, W]
        x = self.image_conv(x)
        mission = self.encode_mission(observations["mission"].long())
        for block in self.film_blocks:
            x = block(x, mission)
        pooled = self.pool(x).flatten(1)
        direction = observations["direction"].float().flatten(1)  # [B, 4] or, from a buffer, [B, 1, 4]
        extras = [observations[key].float().flatten(1) for key in self.extra_keys]
        return self.head(torch.cat([pooled, direction, *extras], dim=1))


def default_features_extractor(observation_space: gym.Space) -> type[BaseFeaturesExtractor]:
    """The extractor a MemoryActorCriticPolicy uses when none is given: ours for MiniGrid/BabyAI
    observations, SB3's own choice (NatureCNN, CombinedExtractor, FlattenExtractor) otherwise."""
    if is_minigrid_observation_space(observation_space):
        return BabyAIFeaturesExtractor
    if isinstance(observation_space, spaces.Dict):
        return CombinedExtractor
    if is_image_space(observation_space, check_channels=False):
        return NatureCNN
    return FlattenExtractor
