"""SB3 callback logging plasticity metrics of the actor and the critic to TensorBoard."""

from __future__ import annotations

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy

from syre_rl.base import hidden_layers
from syre_rl.metrics import LayerProbe
from syre_rl.policies import target_params


class PlasticityCallback(BaseCallback):
    """Every ``every`` rollouts, measures every hidden layer of the actor and the critic
    (:class:`syre_rl.metrics.LayerProbe`) on the ``probe_size`` most recent observations of the rollout
    buffer, and records ``plasticity/<target>/layer<i>/<metric>`` and ``plasticity/<target>/gradient_norm``
    (the last minibatch's gradients). The probe neither samples actions nor touches any random generator, so
    runs with and without it are identical.

    :param every: rollouts between measurements (>= 1)
    :param probe_size: recent observations in the probe batch (>= 1)
    :param tau: dormancy threshold
    :param duplicate_threshold: cosine similarity above which two units count as copies
    """

    TARGETS = {"actor": "get_distribution", "critic": "predict_values"}

    def __init__(self, every: int = 1, probe_size: int = 1000, tau: float = 0.025, duplicate_threshold: float = 0.99,
                 verbose: int = 0):
        super().__init__(verbose)
        for name, value in (("every", every), ("probe_size", probe_size)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"PlasticityCallback {name} must be an integer >= 1, got {value!r}")
        self.every, self.probe_size = every, probe_size
        self.tau, self.duplicate_threshold = tau, duplicate_threshold
        self.rollouts = 0

    def _init_callback(self) -> None:
        policy = self.model.policy
        if not isinstance(policy, ActorCriticPolicy):
            raise ValueError(f"PlasticityCallback needs an actor-critic policy, got {type(policy).__name__}")
        methods = getattr(policy, "methods", {})
        self.probes = {}
        for target in self.TARGETS:
            layers = hidden_layers(policy, target_params(policy, target))
            if layers:
                self.probes[target] = LayerProbe(layers, methods.get(target), self.tau, self.duplicate_threshold)

    def probe_batch(self) -> torch.Tensor:
        """The most recent observations of the rollout buffer, as the policy sees them (already normalised
        when the env is wrapped in VecNormalize), on the policy's device."""
        obs = self.model.rollout_buffer.observations  # (n_steps, n_envs, *obs_shape), time-major
        recent = obs.reshape(-1, *obs.shape[2:])[-self.probe_size:]
        return torch.as_tensor(np.ascontiguousarray(recent), device=self.model.device)

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if (self.rollouts - 1) % self.every:
            return
        obs = self.probe_batch()
        policy = self.model.policy
        for target, probe in self.probes.items():
            run = getattr(policy, self.TARGETS[target])
            for key, value in probe.measure(lambda run=run: run(obs)).items():
                self.logger.record(f"plasticity/{target}/{key}", value)

    def _on_step(self) -> bool:
        return True
