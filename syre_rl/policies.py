"""Stable-Baselines3 actor-critic policies with syre (or any plasticity method) on the actor and/or the critic.

    from stable_baselines3 import PPO
    from syre_rl import SyreActorCriticPolicy
    model = PPO(SyreActorCriticPolicy, env, policy_kwargs=dict(syre_gamma=1e-3, net_arch=dict(pi=[256, 256],
                vf=[256, 256])))
    model = PPO(MethodActorCriticPolicy, env, policy_kwargs=dict(method="redo", method_kwargs=dict(tau=0.1)))

Both work with PPO and A2C, with every ``ActorCriticPolicy`` argument (net_arch, activation_fn, ortho_init,
gSDE, shared or separate features extractors). ``model.save`` / ``PPO.load`` keep the anchors (buffers in the
policy's state_dict) and the method stays active after loading. Add :class:`MethodLoggerCallback` to ``learn``
to log the methods' figures (``<method>/<target>/<figure>``) to the SB3 logger and so to TensorBoard.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule

from syre_rl.base import Method, default_params
from syre_rl.methods import make_method, method_defaults
from syre_rl.agents.runs import yaml_numbers
from syre_rl.syre import DEFAULT_GAMMA, DEFAULT_SCALE

# Which submodules of an ActorCriticPolicy each target covers. The free `log_std` parameter is never covered.
TARGET_MODULES = {
    "actor": ("mlp_extractor.policy_net", "action_net"),
    "critic": ("mlp_extractor.value_net", "value_net"),
    "features": ("features_extractor", "pi_features_extractor", "vf_features_extractor"),
}
DEFAULT_TARGETS = ("actor", "critic")
DEFAULT_RL_GAMMA = DEFAULT_GAMMA  # 1e-3, the L2 strength that kept PPO plastic on slippery Ant (Dohare et al.)
SUPPORTED_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)


def parse_targets(targets: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"actor,critic"`` or ``["actor", "critic"]`` to a tuple, refusing unknown or empty targets.

    :param targets: names from ``actor``, ``critic``, ``features``
    """
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else [str(t) for t in targets]
    names = [t for t in names if t]
    unknown = [t for t in names if t not in TARGET_MODULES]
    if unknown or not names:
        raise ValueError(f"targets must be one or more of {sorted(TARGET_MODULES)}, got {targets!r}")
    return tuple(dict.fromkeys(names))


def target_params(policy: ActorCriticPolicy, target: str) -> list[str]:
    """Names of the Linear/Conv parameters of ``policy`` that ``target`` covers."""
    prefixes = tuple(m + "." for m in TARGET_MODULES[target])
    return [n for n in default_params(policy) if n.startswith(prefixes)]


class MethodActorCriticPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` whose chosen networks are trained with a plasticity method (one instance per
    target, so each target has its own figures).

    :param method: a name from :data:`syre_rl.methods.METHODS` (default ``vanilla``)
    :param method_kwargs: the method's settings (see :func:`syre_rl.methods.method_defaults`); a method with a
        ``seed`` that is not given gets ``torch.initial_seed()``, which SB3 sets to the model's seed, without
        consuming random numbers (a vanilla twin sees the same random stream)
    :param method_targets: networks under the method, from ``actor`` (policy MLP + action head), ``critic``
        (value MLP + value head), ``features`` (features extractor(s)); a list or a comma-separated string
    :param args, kwargs: everything ``ActorCriticPolicy`` takes
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 *args: Any, method: str = "vanilla", method_kwargs: dict[str, Any] | None = None,
                 method_targets: str | Iterable[str] = DEFAULT_TARGETS, **kwargs: Any):
        for kind, space in (("observation", observation_space), ("action", action_space)):
            if not isinstance(space, SUPPORTED_SPACES):
                raise ValueError(f"{type(self).__name__} cannot handle the {kind} space {space}; supported: "
                                 f"{', '.join(s.__name__ for s in SUPPORTED_SPACES)}")
        method_kwargs = {k: yaml_numbers(v) for k, v in (method_kwargs or {}).items()}
        if "seed" in method_defaults(method) and method_kwargs.get("seed") is None:
            method_kwargs["seed"] = torch.initial_seed()
        make_method(method, **method_kwargs)  # check the settings before anything is built
        # Set before super().__init__, which calls _build, which attaches the methods.
        self.method, self.method_kwargs = method, method_kwargs
        self.method_targets = parse_targets(method_targets)
        self.methods: dict[str, Method] = {}
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # networks, their (orthogonal) init, the optimizer
        for target in self.method_targets:
            names = target_params(self, target)
            if not names:
                raise ValueError(f"target {target!r} has no Linear/Conv parameters in this policy (modules "
                                 f"{TARGET_MODULES[target]}); choose targets among those that do")
            method = make_method(self.method, **self.method_kwargs)
            self.methods[target] = method.attach(self, self.optimizer, names)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(method=self.method, method_kwargs=self.method_kwargs, method_targets=self.method_targets)
        return data

    def get_extra_state(self) -> dict[str, Any]:
        """The methods' own state (ReDo's counters, shrink-perturb's generators) rides in ``state_dict()``, so
        ``model.save`` / ``PPO.load`` restore it."""
        return {target: m.state_dict() for target, m in self.methods.items()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for target, method_state in state.items():
            self.methods[target].load_state_dict(method_state)

    def method_stats(self) -> dict[str, float]:
        """``<method>/<target>/<figure>`` for every target, e.g. ``syre/actor/anchor_distance``."""
        return {f"{m.name}/{target}/{key}": value
                for target, m in self.methods.items() for key, value in m.stats().items()}


class SyreActorCriticPolicy(MethodActorCriticPolicy):
    """``MethodActorCriticPolicy`` with syre (or syre-ar), configured by flat ``syre_*`` keywords.

    :param syre_gamma: decay strength (>= 0); coupled decay uses torch Adam's ``weight_decay`` convention.
        Default 1e-3, the L2 strength that kept PPO plastic in Dohare et al. (2024)
    :param syre_scale: anchor scale ``c``: anchor std ``c / sqrt(fan_in)`` per layer (default 0.01)
    :param syre_ar_eps: syre-ar diagonal ``D ~ U(1 - eps, 1 + eps)``; 0 (default) is plain syre
    :param syre_decoupled: AdamW-style decay instead of adding to the gradient
    :param syre_seed: seed of the anchors; None (default) uses ``torch.initial_seed()`` (the model's seed)
    :param syre_targets: networks under syre (see :class:`MethodActorCriticPolicy`), default actor and critic
    :param args, kwargs: everything ``ActorCriticPolicy`` takes
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 *args: Any, syre_gamma: float = DEFAULT_RL_GAMMA, syre_scale: float = DEFAULT_SCALE,
                 syre_ar_eps: float = 0.0, syre_decoupled: bool = False, syre_seed: int | None = None,
                 syre_targets: str | Iterable[str] = DEFAULT_TARGETS, **kwargs: Any):
        settings = dict(gamma=yaml_numbers(syre_gamma), scale=yaml_numbers(syre_scale), decoupled=syre_decoupled,
                        seed=syre_seed)
        syre_ar_eps = yaml_numbers(syre_ar_eps)
        if syre_ar_eps:
            settings["ar_eps"] = syre_ar_eps
        super().__init__(observation_space, action_space, lr_schedule, *args,
                         method="syre-ar" if syre_ar_eps else "syre", method_kwargs=settings,
                         method_targets=syre_targets, **kwargs)

    @property
    def syre(self) -> dict[str, Method]:
        """The attached syre per target (same as :attr:`methods`)."""
        return self.methods

    @property
    def syre_seed(self) -> int:
        return self.method_kwargs["seed"]

    @property
    def syre_targets(self) -> tuple[str, ...]:
        return self.method_targets

    def syre_stats(self) -> dict[str, float]:
        return self.method_stats()

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        settings = data.pop("method_kwargs")
        del data["method"]
        data.update(syre_gamma=settings["gamma"], syre_scale=settings["scale"],
                    syre_ar_eps=settings.get("ar_eps", 0.0), syre_decoupled=settings["decoupled"],
                    syre_seed=settings["seed"], syre_targets=data.pop("method_targets"))
        return data


class MethodLoggerCallback(BaseCallback):
    """Records :meth:`MethodActorCriticPolicy.method_stats` to the SB3 logger at the end of every rollout
    (dumped with the other values of that iteration) and once more at the end of training."""

    def _on_rollout_end(self) -> None:
        for key, value in self.model.policy.method_stats().items():
            self.logger.record(key, value)

    _on_training_end = _on_rollout_end

    def _on_step(self) -> bool:
        return True


SyreLoggerCallback = MethodLoggerCallback  # the name the SB3 quick start uses
