"""TLB rollout caches (fast-stream outputs, keys and values of the chunk so far) across PPO updates."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

from agents import MemoryPPO


@pytest.mark.parametrize("n_layers", [1, 2])
def test_rollouts_after_an_update_are_recomputed_exactly_by_training(n_layers: int, step_path: str) -> None:
    """n_steps 24 with chunks of 5: every rollout after the first continues a chunk whose beginning the
    previous rollout computed with the weights before the update. The rollout must recompute it with the
    new weights, as training replays it, or the next update's ratio starts away from 1."""
    env = make_vec_env("CartPole-v1", n_envs=2, seed=1)
    memory_kwargs = dict(d_model=16, n_heads=2, chunk_size=5, n_latents=2, n_layers=n_layers)
    model = MemoryPPO(
        "MlpPolicy",
        env,
        n_steps=24,
        batch_size=48,  # one epoch, one minibatch: the whole rollout
        n_epochs=1,
        sequence_length=8,
        learning_rate=3e-2,
        seed=0,
        policy_kwargs=dict(memory="tlb", memory_kwargs=memory_kwargs, net_arch=[16]),
    )
    for _ in range(2):
        model.learn(48, reset_num_timesteps=False)  # a rollout, then an update
        assert abs(model.logger.name_to_value["train/approx_kl"]) < 1e-6
        assert (model._last_memory_state["position"] > 0).any(), "the test needs a chunk left open"
        callback = model._init_callback(None)
        assert model.collect_rollouts(model.env, callback, model.rollout_buffer, model.n_steps)
        with torch.no_grad():
            for batch in model.rollout_buffer.get(model.batch_size):
                values, log_prob, _ = model.policy.evaluate_actions(
                    batch.observations, batch.actions.long().flatten()
                )
                assert (log_prob - batch.old_log_prob).abs().max() < 1e-5
                assert (values.flatten() - batch.old_values).abs().max() < 1e-5
