"""Stable-Baselines3 actor-critic policy with syre on the actor and/or the critic.

    from stable_baselines3 import PPO
    from syre_rl import SyreActorCriticPolicy
    model = PPO(SyreActorCriticPolicy, env, policy_kwargs=dict(syre_gamma=1e-3, net_arch=dict(pi=[256, 256],
                vf=[256, 256])))

Works with PPO and A2C, with every ``ActorCriticPolicy`` argument (net_arch, activation_fn, ortho_init, gSDE,
shared or separate features extractors). ``model.save`` / ``PPO.load`` keep the anchors (they are buffers in
the policy's state_dict) and syre stays active after loading. Add :class:`SyreLoggerCallback` to ``learn`` to
log syre's figures to the SB3 logger (and so to TensorBoard).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule

from syre_rl.syre import DEFAULT_SCALE, Syre, attach_syre, check_syre_settings, default_syre_params

# Which submodules of an ActorCriticPolicy each target covers. The free `log_std` parameter is never covered.
TARGET_MODULES = {
    "actor": ("mlp_extractor.policy_net", "action_net"),
    "critic": ("mlp_extractor.value_net", "value_net"),
    "features": ("features_extractor", "pi_features_extractor", "vf_features_extractor"),
}
DEFAULT_TARGETS = ("actor", "critic")
DEFAULT_RL_GAMMA = 1e-3  # the L2 strength Dohare et al. (2024) found to keep PPO plastic on slippery Ant
SUPPORTED_OBS = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
SUPPORTED_ACTIONS = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def parse_targets(targets: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"actor,critic"`` or ``["actor", "critic"]`` to a tuple, refusing unknown or empty targets.

    :param targets: names from ``actor``, ``critic``, ``features``
    """
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else [str(t) for t in targets]
    names = [t for t in names if t]
    unknown = [t for t in names if t not in TARGET_MODULES]
    if unknown or not names:
        raise ValueError(f"syre targets must be one or more of {sorted(TARGET_MODULES)}, got {targets!r}")
    return tuple(dict.fromkeys(names))


class SyreActorCriticPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` whose chosen networks decay toward fixed random anchors (syre / syre-ar).

    :param syre_gamma: decay strength (>= 0); coupled decay uses torch Adam's ``weight_decay`` convention.
        Default 1e-3, the L2 strength that kept PPO plastic in Dohare et al. (2024)
    :param syre_scale: anchor scale ``c``: anchor std ``c / sqrt(fan_in)`` per layer (default 0.01). With 0 the
        policy is the L2 baseline on exactly the same parameters
    :param syre_ar_eps: syre-ar diagonal ``D ~ U(1 - eps, 1 + eps)``; 0 (default) is plain syre
    :param syre_decoupled: AdamW-style decay instead of adding to the gradient
    :param syre_seed: seed of the anchors; None (default) uses ``torch.initial_seed()``, which SB3 sets to the
        model's seed, without consuming random numbers (a vanilla twin sees the same random stream)
    :param syre_targets: networks under syre, from ``actor`` (policy MLP + action head), ``critic`` (value MLP
        + value head), ``features`` (features extractor(s)); a list or a comma-separated string
    :param args, kwargs: everything ``ActorCriticPolicy`` takes
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *args: Any,
        syre_gamma: float = DEFAULT_RL_GAMMA,
        syre_scale: float = DEFAULT_SCALE,
        syre_ar_eps: float = 0.0,
        syre_decoupled: bool = False,
        syre_seed: int | None = None,
        syre_targets: str | Iterable[str] = DEFAULT_TARGETS,
        **kwargs: Any,
    ):
        check_syre_settings(gamma=syre_gamma, scale=syre_scale, ar_eps=syre_ar_eps)
        for kind, space, allowed in (("observation", observation_space, SUPPORTED_OBS),
                                     ("action", action_space, SUPPORTED_ACTIONS)):
            if not isinstance(space, allowed):
                raise ValueError(
                    f"SyreActorCriticPolicy cannot handle the {kind} space {space}; supported: "
                    f"{', '.join(s.__name__ for s in allowed)}"
                )
        # Set before super().__init__, which calls _build, which attaches syre.
        self.syre_gamma, self.syre_scale, self.syre_ar_eps = syre_gamma, syre_scale, syre_ar_eps
        self.syre_decoupled = syre_decoupled
        self.syre_seed = torch.initial_seed() if syre_seed is None else int(syre_seed)
        self.syre_targets = parse_targets(syre_targets)
        self.syre: dict[str, Syre] = {}
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # networks, their (orthogonal) init, the optimizer
        covered = default_syre_params(self)  # named_parameters order, a shared extractor counted once
        for target in self.syre_targets:
            prefixes = tuple(m + "." for m in TARGET_MODULES[target])
            names = [n for n in covered if n.startswith(prefixes)]
            if not names:
                raise ValueError(
                    f"syre target {target!r} has no Linear/Conv parameters in this policy "
                    f"(modules {TARGET_MODULES[target]}); choose targets among those that do"
                )
            self.syre[target] = attach_syre(
                self, self.optimizer, gamma=self.syre_gamma, scale=self.syre_scale, ar_eps=self.syre_ar_eps,
                decoupled=self.syre_decoupled, seed=self.syre_seed, params=names,
            )

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            syre_gamma=self.syre_gamma, syre_scale=self.syre_scale, syre_ar_eps=self.syre_ar_eps,
            syre_decoupled=self.syre_decoupled, syre_seed=self.syre_seed, syre_targets=self.syre_targets,
        )
        return data

    def syre_stats(self) -> dict[str, float]:
        """``syre/<target>/penalty`` and ``syre/<target>/anchor_distance`` (RMS of weights minus anchors)."""
        stats = {}
        for target, handle in self.syre.items():
            stats[f"syre/{target}/penalty"] = handle.penalty()
            stats[f"syre/{target}/anchor_distance"] = handle.anchor_distance()
        return stats


class SyreLoggerCallback(BaseCallback):
    """Records :meth:`SyreActorCriticPolicy.syre_stats` to the SB3 logger at the end of every rollout (dumped
    with the other values of that iteration) and once more at the end of training."""

    def _on_rollout_end(self) -> None:
        for key, value in self.model.policy.syre_stats().items():
            self.logger.record(key, value)

    _on_training_end = _on_rollout_end

    def _on_step(self) -> bool:
        return True
