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
from syre_rl.methods import canonical_name, make_method, method_defaults, method_settings
from syre_rl.settings import Settings, check_kwargs

# Which submodules of an ActorCriticPolicy each target covers. The free `log_std` parameter is never covered.
TARGET_MODULES = {
    "actor": ("mlp_extractor.policy_net", "action_net"),
    "critic": ("mlp_extractor.value_net", "value_net"),
    "features": ("features_extractor", "pi_features_extractor", "vf_features_extractor"),
}
DEFAULT_TARGETS = ("actor", "critic")
SUPPORTED_SPACES = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary)
# ActorCriticPolicy's own arguments that the algorithm passes, not the user's policy_kwargs
ALGORITHM_ARGUMENTS = ("observation_space", "action_space", "lr_schedule")


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


def check_policy_kwargs(kwargs: dict[str, Any], owner: str = "policy_kwargs") -> None:
    """Refuse keyword arguments that ``ActorCriticPolicy`` does not take or whose type is wrong, naming the key
    (and the closest valid one): a typo such as ``net_arc`` fails here, not deep inside SB3. None is taken as
    "the default", as SB3's own save/load passes it."""
    check_kwargs(owner, ActorCriticPolicy.__init__, kwargs, skip=ALGORITHM_ARGUMENTS, none_is_default=True)


def resolve_method_settings(method: str, given: Settings | dict[str, Any] | None) -> Settings:
    """The typed settings of ``method``: ``given`` as it is when already typed, else made from the mapping; a
    method with a ``seed`` that is not given gets ``torch.initial_seed()``, which SB3 sets to the model's seed,
    without consuming random numbers (a vanilla twin sees the same random stream)."""
    if isinstance(given, Settings):
        return given  # the method checks that they are its own when it is made (_build)
    values = dict(given or {})
    if "seed" in method_defaults(method) and values.get("seed") is None:
        values["seed"] = torch.initial_seed()
    return method_settings(method, values)


class MethodActorCriticPolicy(ActorCriticPolicy):
    """``ActorCriticPolicy`` whose chosen networks are trained with a plasticity method (one instance per
    target, so each target has its own figures).

    :param method: a name from :data:`syre_rl.methods.METHODS` (default ``vanilla``)
    :param method_kwargs: the method's settings: its typed ``Settings`` object, or a mapping of them (see
        :func:`syre_rl.methods.method_defaults`); unknown keys and wrong types are refused. The seed defaults to
        the model's (:func:`resolve_method_settings`)
    :param method_targets: networks under the method, from ``actor`` (policy MLP + action head), ``critic``
        (value MLP + value head), ``features`` (features extractor(s)); a list or a comma-separated string
    :param args, kwargs: everything ``ActorCriticPolicy`` takes
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 *args: Any, method: str = "vanilla", method_kwargs: Settings | dict[str, Any] | None = None,
                 method_targets: str | Iterable[str] = DEFAULT_TARGETS, **kwargs: Any):
        for kind, space in (("observation", observation_space), ("action", action_space)):
            if not isinstance(space, SUPPORTED_SPACES):
                raise ValueError(f"{type(self).__name__} cannot handle the {kind} space {space}; supported: "
                                 f"{', '.join(s.__name__ for s in SUPPORTED_SPACES)}")
        check_policy_kwargs(kwargs, type(self).__name__)
        # Set before super().__init__, which calls _build, which attaches the methods.
        self.method, self.method_settings = method, resolve_method_settings(method, method_kwargs)
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
            self.methods[target] = make_method(self.method, self.method_settings).attach(self, self.optimizer, names)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(method=self.method, method_kwargs=self.method_settings, method_targets=self.method_targets)
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
    """``MethodActorCriticPolicy`` with syre (or syre-ar, when ``syre_ar_eps > 0``), configured by flat
    ``syre_*`` keywords. A keyword left out takes :class:`syre_rl.syre.SyreSettings`' default (gamma 1e-3, the
    L2 strength that kept PPO plastic in Dohare et al. 2024; scale 1.0; ar_eps 0; coupled decay).

    :param syre_gamma: decay strength (>= 0); coupled decay uses torch Adam's ``weight_decay`` convention
    :param syre_scale: anchor scale ``c``: anchor std ``c / sqrt(fan_in)`` per layer
    :param syre_ar_eps: syre-ar diagonal ``D ~ U(1 - eps, 1 + eps)``; 0 is plain syre
    :param syre_decoupled: AdamW-style decay instead of adding to the gradient
    :param syre_seed: seed of the anchors; None uses ``torch.initial_seed()`` (the model's seed)
    :param syre_targets: networks under syre (see :class:`MethodActorCriticPolicy`), default actor and critic
    :param args, kwargs: everything ``ActorCriticPolicy`` takes
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Schedule,
                 *args: Any, syre_gamma: float | None = None, syre_scale: float | None = None,
                 syre_ar_eps: float | None = None, syre_decoupled: bool | None = None, syre_seed: int | None = None,
                 syre_targets: str | Iterable[str] = DEFAULT_TARGETS, **kwargs: Any):
        given = dict(gamma=syre_gamma, scale=syre_scale, ar_eps=syre_ar_eps, decoupled=syre_decoupled, seed=syre_seed)
        values = {k: v for k, v in given.items() if v is not None}
        super().__init__(observation_space, action_space, lr_schedule, *args,
                         method=canonical_name("syre", values), method_kwargs=values, method_targets=syre_targets,
                         **kwargs)

    @property
    def syre(self) -> dict[str, Method]:
        """The attached syre per target (same as :attr:`methods`)."""
        return self.methods

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        settings = data.pop("method_kwargs")
        del data["method"]
        data.update({f"syre_{k}": v for k, v in settings.to_dict().items()}, syre_targets=data.pop("method_targets"))
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
