"""Stable-Baselines3 and sb3-contrib policies with syre (or any plasticity method) on their networks.

    from stable_baselines3 import PPO, SAC, DQN
    from syre_rl import SyreActorCriticPolicy, SyreSACPolicy, MethodDQNPolicy
    PPO(SyreActorCriticPolicy, env, policy_kwargs=dict(syre_gamma=1e-3, net_arch=dict(pi=[256, 256], vf=[256, 256])))
    SAC(SyreSACPolicy, env, policy_kwargs=dict(syre_gamma=1e-3, syre_targets="actor,critic"))
    DQN(MethodDQNPolicy, env, policy_kwargs=dict(method="redo", method_kwargs=dict(tau=0.1)))
    PPO("SyreMlpPolicy", env)   # SB3's string names, prefixed Syre or Method

One pair of classes per SB3 policy family, ``Method<Family>Policy`` (any method by name) and
``Syre<Family>Policy`` (syre by flat ``syre_*`` keywords):

| family | algorithms | default targets |
| --- | --- | --- |
| ``ActorCritic`` | PPO, A2C | actor, critic |
| ``SAC`` | SAC | actor, critic |
| ``TD3`` | TD3, DDPG | actor, critic |
| ``DQN`` | DQN | critic (the Q-network) |
| ``RecurrentActorCritic`` | sb3-contrib RecurrentPPO | actor, critic (``lstm`` on request) |
| ``MaskableActorCritic`` | sb3-contrib MaskablePPO | actor, critic |
| ``TQC`` | sb3-contrib TQC | actor, critic |
| ``QRDQN`` | sb3-contrib QR-DQN | critic (the quantile network) |

sb3-contrib's four are defined in :mod:`syre_rl.contrib` (the ``contrib`` extra) and load with this module when
sb3-contrib is installed. Importing this module also gives every algorithm SB3's string names with ``Syre`` and
``Method`` in front (:func:`register_family`).

Every class takes the SB3 base's arguments. Observations: a Dict space gets SB3's ``CombinedExtractor`` and an
image space ``NatureCNN`` unless ``features_extractor_class`` is given, so one class serves SB3's ``MlpPolicy``,
``CnnPolicy`` and ``MultiInputPolicy``; conv layers are covered with the ``features`` target. Target networks
(``critic_target``, ``actor_target``, ``q_net_target``, ``quantile_net_target``) start equal to their online
networks after the anchors shift them and are never decayed (no method covers them; the polyak update is SB3's).
``copy.deepcopy``, ``pickle`` and ``torch.save`` of a policy keep its methods acting on the copy.
``model.save`` / ``<Algo>.load`` keep the anchors (buffers in the policy's state_dict) and the methods' own state,
and the method stays active after loading. A class used with the wrong algorithm is refused before anything is
built, naming the class to use. Add :class:`syre_rl.callbacks.MethodLoggerCallback` to ``learn`` to log the
methods' figures (``<method>/<target>/<figure>``).
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from syre_rl.extras import importable, require

try:
    import stable_baselines3  # noqa: F401
except ImportError:  # one line naming the extra to install, not a bare "No module named ..."
    require("sb3", "syre_rl.policies")
    raise
import torch
from gymnasium import spaces
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.distributions import Distribution
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from stable_baselines3.common.preprocessing import is_image_space
from stable_baselines3.common.torch_layers import CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.dqn.policies import DQNPolicy
from stable_baselines3.sac.policies import SACPolicy
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from syre_rl import POLICY_MODULES
from syre_rl.base import Method, default_params, replaced
from syre_rl.methods import canonical_name, make_method, method_defaults, method_settings
from syre_rl.settings import Settings, check_kwargs

# Parameter-name prefixes each target covers, over every family (a family has the ones that exist in it). The
# free `log_std` parameter of gaussian actor-critic policies is never covered (it is not a layer).
TARGET_MODULES = {
    "actor": ("mlp_extractor.policy_net.", "action_net.", "actor.latent_pi.", "actor.mu.", "actor.log_std."),
    "critic": ("mlp_extractor.value_net.", "value_net.", "critic.qf", "q_net.q_net.", "quantile_net.quantile_net."),
    "features": (
        "features_extractor.",
        "pi_features_extractor.",
        "vf_features_extractor.",
        "actor.features_extractor.",
        "critic.features_extractor.",
        "q_net.features_extractor.",
        "quantile_net.features_extractor.",
    ),
    "lstm": ("lstm_actor.", "lstm_critic."),
}
DEFAULT_TARGETS = ("actor", "critic")
# online networks whose `<name>_target` copy starts equal to them
TARGET_NETWORKS = ("actor", "critic", "q_net", "quantile_net")
# arguments the algorithm passes to every policy, not the user's policy_kwargs
ALGORITHM_ARGUMENTS = ("observation_space", "action_space", "lr_schedule")


def parse_targets(targets: str | Iterable[str]) -> tuple[str, ...]:
    """Normalise ``"actor,critic"`` or ``["actor", "critic"]`` to a tuple, refusing unknown or empty targets.

    :param targets: names from ``actor``, ``critic``, ``features``, ``lstm``
    """
    names = [t.strip() for t in targets.split(",")] if isinstance(targets, str) else [str(t) for t in targets]
    names = [t for t in names if t]
    unknown = [t for t in names if t not in TARGET_MODULES]
    if unknown or not names:
        raise ValueError(f"targets must be one or more of {sorted(TARGET_MODULES)}, got {targets!r}")
    return tuple(dict.fromkeys(names))


def target_params(policy: nn.Module, target: str) -> list[str]:
    """Names of the Linear/Conv/LSTM parameters of ``policy`` that ``target`` covers."""
    return [n for n in default_params(policy) if n.startswith(TARGET_MODULES[target])]


def algorithm_names(policy_class: type) -> str:
    """The algorithms a policy class is for, in words: ``"PPO and A2C"``."""
    names = [a.__name__ for a in getattr(policy_class, "ALGORITHMS", ())]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def sb3_base(policy_class: type) -> type[BasePolicy]:
    """The SB3 policy class a syre_rl policy class builds on (e.g. ``SACPolicy`` for ``SyreSACPolicy``)."""
    return next(c for c in policy_class.__mro__ if issubclass(c, BasePolicy) and not issubclass(c, MethodPolicy))


def check_policy_kwargs(
    kwargs: dict[str, Any], owner: str = "policy_kwargs", base: type[BasePolicy] = ActorCriticPolicy
) -> None:
    """Refuse keyword arguments that the SB3 policy class ``base`` does not take or whose type is wrong, naming
    the key (and the closest valid one): a typo such as ``net_arc`` fails here, not deep inside SB3. None is
    taken as "the default", as SB3's own save/load passes it."""
    check_kwargs(owner, base.__init__, kwargs, skip=ALGORITHM_ARGUMENTS, none_is_default=True)
    arch = kwargs.get("net_arch")
    groups = list(arch.values()) if isinstance(arch, dict) else [arch] if arch is not None else []
    widths = [w for ws in groups for w in (ws if isinstance(ws, list | tuple) else [ws])]
    bad = [w for w in widths if not (isinstance(w, int) and not isinstance(w, bool) and w >= 1)]
    if bad:
        raise ValueError(f"{owner} net_arch {arch!r}: layer widths must be integers >= 1, got {bad[0]!r}")


def resolve_method_settings(method: str, given: Settings | dict[str, Any] | None) -> Settings:
    """The typed settings of ``method``: ``given`` as it is when already typed, else made from the mapping; a
    method with a ``seed`` that is not given gets ``torch.initial_seed()``, which SB3 sets to the model's seed,
    without consuming random numbers (a vanilla twin sees the same random stream)."""
    if isinstance(given, Settings):
        return given  # the method checks that they are its own when it is made (_attach_methods)
    values = dict(given or {})
    if "seed" in method_defaults(method) and values.get("seed") is None:
        values["seed"] = torch.initial_seed()
    return method_settings(method, values)


def default_extractor(observation_space: spaces.Space, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with SB3's extractor for the observation space when none is given: ``CombinedExtractor`` for a
    Dict space, ``NatureCNN`` for an image space (as SB3's ``MultiInputPolicy`` and ``CnnPolicy``)."""
    if kwargs.get("features_extractor_class") is not None:
        return kwargs
    if isinstance(observation_space, spaces.Dict):
        return {**kwargs, "features_extractor_class": CombinedExtractor}
    if is_image_space(observation_space, normalized_image=kwargs.get("normalize_images") is False):
        return {**kwargs, "features_extractor_class": NatureCNN}
    return kwargs


def detached(value: Any) -> Any:
    """``value`` with every tensor in it detached from the autograd graph: tensors, lists, tuples and dicts of them,
    and the objects (SB3 and torch distributions) that hold them in their attributes, copied shallowly."""

    def one(item: Any) -> Any:
        if isinstance(item, torch.Tensor):
            return item.detach()
        twin = copy.copy(item)
        twin.__dict__.update({k: detached(v) for k, v in vars(item).items()})
        return twin

    return replaced(value, (torch.Tensor, Distribution, torch.distributions.Distribution), one)


def _building_algorithm(policy_class: type) -> BaseAlgorithm | None:
    """The SB3 algorithm that is building a policy of ``policy_class``, if any. SB3 hands a policy its spaces, its
    learning-rate schedule and ``policy_kwargs``, never its algorithm; every algorithm sets ``policy_class`` and then
    builds the policy from a method of its own, so the algorithm is the nearest caller whose ``policy_class`` is
    this very class (a policy built by hand, or by another object, finds none and is not checked)."""
    frame = inspect.currentframe()
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseAlgorithm) and getattr(candidate, "policy_class", None) is policy_class:
            return candidate
        frame = frame.f_back
    return None


# The Method<Family>Policy classes, most specific SB3 base first (register_family).
FAMILIES: list[type[MethodPolicy]] = []


def family_for(algorithm: type[BaseAlgorithm]) -> type[MethodPolicy] | None:
    """The ``Method<Family>Policy`` class an algorithm needs: the family whose SB3 base is the most specific base
    of the most general class among the algorithm's own ``policy_aliases`` (``ActorCriticPolicy`` for PPO and
    every subclass of it). None when the algorithm names no policy classes (a custom algorithm without
    ``policy_aliases``) or none of ours fits them."""
    own = [cls for cls in algorithm.policy_aliases.values() if not issubclass(cls, MethodPolicy)]
    general = [cls for cls in own if all(issubclass(other, cls) for other in own)]
    fits = [f for f in FAMILIES if general and issubclass(general[0], sb3_base(f))]
    return fits[0] if fits else None


def register_family(method_class: type[MethodPolicy], syre_class: type[MethodPolicy]) -> None:
    """Make a family known: to the wrong-algorithm check, and to SB3's string names. For every policy name an
    algorithm of the family takes (``policy_aliases``: ``MlpPolicy``, ``CnnPolicy``, ``MultiInputPolicy``,
    RecurrentPPO's ``MlpLstmPolicy``, ...), ``Method<name>`` and ``Syre<name>`` name our two classes, so
    ``PPO("SyreMlpPolicy", env)`` works once ``syre_rl.policies`` is imported. The three names of a kind are one
    class, which picks SB3's extractor from the observation space (:func:`default_extractor`)."""
    FAMILIES.append(method_class)
    FAMILIES.sort(key=lambda f: -len(sb3_base(f).__mro__))  # most specific first: RecurrentActorCritic, ActorCritic
    for algorithm in method_class.ALGORITHMS:
        names = [name for name, cls in algorithm.policy_aliases.items() if not issubclass(cls, MethodPolicy)]
        for name in names:
            algorithm.policy_aliases[f"Method{name}"] = method_class
            algorithm.policy_aliases[f"Syre{name}"] = syre_class


if TYPE_CHECKING:  # MethodPolicy always precedes an SB3 policy class (below): let mypy check it as one
    _SB3Policy = BasePolicy
else:  # at run time a plain mixin, as it always was
    _SB3Policy = object


class MethodPolicy(_SB3Policy):
    """Mixin that puts a plasticity method on the networks of the SB3 policy class it precedes (one method
    instance per target and optimizer, so each has its own figures). Subclass it together with an SB3 policy
    class, as the ``Method<Family>Policy`` classes below do.

    :param method: a name from :data:`syre_rl.methods.METHODS` (default ``vanilla``)
    :param method_kwargs: the method's settings: its typed ``Settings`` object, or a mapping of them (see
        :func:`syre_rl.methods.method_defaults`); unknown keys and wrong types are refused. The seed defaults to
        the model's (:func:`resolve_method_settings`)
    :param method_targets: networks under the method, from ``actor``, ``critic`` (value network or
        Q-networks), ``features`` (features extractors, conv layers included), ``lstm`` (recurrent policies);
        a list or a comma-separated string; default ``DEFAULT_TARGETS`` of the class
    :param args, kwargs: everything the SB3 policy class takes
    """

    DEFAULT_TARGETS: ClassVar[tuple[str, ...]] = DEFAULT_TARGETS
    ALGORITHMS: ClassVar[tuple[type[BaseAlgorithm], ...]] = ()  # the SB3 algorithms of the family

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *args: Any,
        method: str = "vanilla",
        method_kwargs: Settings | dict[str, Any] | None = None,
        method_targets: str | Iterable[str] | None = None,
        **kwargs: Any,
    ):
        self._check_algorithm()
        kwargs = default_extractor(observation_space, kwargs)
        check_policy_kwargs(kwargs, type(self).__name__, sb3_base(type(self)))
        self.method, self.method_settings = method, resolve_method_settings(method, method_kwargs)
        self.method_targets = parse_targets(self.DEFAULT_TARGETS if method_targets is None else method_targets)
        self.methods: dict[str, Method] = {}
        super().__init__(observation_space, action_space, lr_schedule, *args, **kwargs)
        # After the whole SB3 constructor: some (RecurrentActorCriticPolicy) make their optimizer last.
        self._attach_methods()

    def _check_algorithm(self) -> None:
        """Refuse, in one line naming the class to use, to be the policy of an algorithm of another family. An
        algorithm whose family is unknown (a custom one without ``policy_aliases``) is not refused."""
        algorithm = _building_algorithm(type(self))
        needed = family_for(type(algorithm)) if algorithm is not None else None
        if needed is None or isinstance(self, sb3_base(needed)):
            return
        base = sb3_base(needed).__name__
        raise ValueError(
            f"{type(self).__name__} is a policy for {algorithm_names(type(self))}; "
            f"{type(algorithm).__name__} needs a policy built on {base}: use "
            f"syre_rl.{needed.__name__} (or {needed.__name__.replace('Method', 'Syre', 1)})"
        )

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimizer of the policy: its own and those of its networks (SAC's and TD3's actor and critic)."""
        found = [getattr(m, "optimizer", None) for m in (self, *self.children())]
        return list({id(o): o for o in found if isinstance(o, torch.optim.Optimizer)}.values())

    def _attach_methods(self) -> None:
        owner = {id(p): opt for opt in self._optimizers() for group in opt.param_groups for p in group["params"]}
        params = dict(self.named_parameters())
        for target in self.method_targets:
            names = target_params(self, target)
            if not names:
                have = [t for t in TARGET_MODULES if target_params(self, t)]
                raise ValueError(
                    f"target {target!r} has no Linear, Conv or recurrent layer in this "
                    f"{type(self).__name__}; choose among {', '.join(have)}"
                )
            groups: dict[int, list[str]] = {}
            for name in names:
                if id(params[name]) not in owner:
                    raise ValueError(f"{name} ({target}) is trained by no optimizer of this policy")
                groups.setdefault(id(owner[id(params[name])]), []).append(name)
            for group in groups.values():
                key = target if len(groups) == 1 else f"{target}/{group[0].split('.')[0]}"
                method = make_method(self.method, self.method_settings)
                self.methods[key] = method.attach(self, owner[id(params[group[0]])], group)
        self._sync_target_networks()

    @torch.no_grad()
    def _sync_target_networks(self) -> None:
        """Copy each online network into its target copy: the anchors shifted the online weights after SB3 made
        the copies, and the copies must start equal (they are never decayed: no optimizer holds them)."""
        for name in TARGET_NETWORKS:
            online, copy = getattr(self, name, None), getattr(self, f"{name}_target", None)
            if isinstance(online, nn.Module) and isinstance(copy, nn.Module):
                for p_copy, p in zip(copy.parameters(), online.parameters(), strict=True):
                    p_copy.copy_(p)

    def __getstate__(self) -> dict[str, Any]:
        """The module's state for ``copy.deepcopy`` and ``pickle``, with SB3's action distribution detached: it
        keeps the last forward pass's distribution, whose tensors after a training step belong to the autograd
        graph, and ``copy.deepcopy`` refuses those (SB3's own policies too). The methods travel with the copy and
        act on it (:meth:`syre_rl.base.Method.__setstate__`)."""
        state = super().__getstate__()
        if "action_dist" in state:
            state["action_dist"] = detached(state["action_dist"])
        return state

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(method=self.method, method_kwargs=self.method_settings, method_targets=self.method_targets)
        return data

    def get_extra_state(self) -> dict[str, Any]:
        """The methods' own state (ReDo's counters, shrink-perturb's generators) rides in ``state_dict()``, so
        ``model.save`` / ``<Algo>.load`` restore it."""
        return {target: m.state_dict() for target, m in self.methods.items()}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for target, method_state in state.items():
            self.methods[target].load_state_dict(method_state)

    def method_stats(self) -> dict[str, float]:
        """``<method>/<target>/<figure>`` for every target, e.g. ``syre/actor/anchor_distance``."""
        return {
            f"{m.name}/{target}/{key}": value for target, m in self.methods.items() for key, value in m.stats().items()
        }


class SyrePolicy(MethodPolicy):
    """Mixin: :class:`MethodPolicy` with syre (or syre-ar, when ``syre_ar_eps > 0``), configured by flat
    ``syre_*`` keywords. A keyword left out takes :class:`syre_rl.syre.SyreSettings`' default (gamma 1e-3, the
    L2 strength that kept PPO plastic in Dohare et al. 2024; scale 1.0; ar_eps 0; coupled decay).

    :param syre_gamma: decay strength (>= 0); coupled decay uses torch Adam's ``weight_decay`` convention
    :param syre_scale: anchor scale ``c``: anchor std ``c / sqrt(fan_in)`` per layer
    :param syre_ar_eps: syre-ar diagonal ``D ~ U(1 - eps, 1 + eps)``; 0 is plain syre
    :param syre_decoupled: AdamW-style decay instead of adding to the gradient
    :param syre_seed: seed of the anchors; None uses ``torch.initial_seed()`` (the model's seed)
    :param syre_targets: networks under syre (see :class:`MethodPolicy`)
    :param args, kwargs: everything the SB3 policy class takes
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        lr_schedule: Schedule,
        *args: Any,
        syre_gamma: float | None = None,
        syre_scale: float | None = None,
        syre_ar_eps: float | None = None,
        syre_decoupled: bool | None = None,
        syre_seed: int | None = None,
        syre_targets: str | Iterable[str] | None = None,
        **kwargs: Any,
    ):
        given = dict(gamma=syre_gamma, scale=syre_scale, ar_eps=syre_ar_eps, decoupled=syre_decoupled, seed=syre_seed)
        values = {k: v for k, v in given.items() if v is not None}
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            *args,
            method=canonical_name("syre", values),
            method_kwargs=values,
            method_targets=syre_targets,
            **kwargs,
        )

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


class MethodActorCriticPolicy(MethodPolicy, ActorCriticPolicy):
    """PPO's and A2C's ``ActorCriticPolicy`` with a plasticity method. Ours: ``method``, ``method_kwargs``,
    ``method_targets`` (:class:`MethodPolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/ppo.html#ppo-policies). String names:
    ``MethodMlpPolicy``, ``MethodCnnPolicy``, ``MethodMultiInputPolicy``."""

    ALGORITHMS = (PPO, A2C)


class SyreActorCriticPolicy(SyrePolicy, MethodActorCriticPolicy):
    """PPO's and A2C's ``ActorCriticPolicy`` with syre. Ours: the ``syre_*`` keywords (:class:`SyrePolicy`); every
    other argument is SB3's (https://stable-baselines3.readthedocs.io/en/master/modules/ppo.html#ppo-policies).
    String names: ``SyreMlpPolicy``, ``SyreCnnPolicy``, ``SyreMultiInputPolicy``."""


class MethodSACPolicy(MethodPolicy, SACPolicy):
    """SAC's policy with a plasticity method; ``critic`` covers the Q-networks. Ours: ``method``,
    ``method_kwargs``, ``method_targets`` (:class:`MethodPolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/sac.html#sac-policies)."""

    ALGORITHMS = (SAC,)


class SyreSACPolicy(SyrePolicy, MethodSACPolicy):
    """SAC's policy with syre. Ours: the ``syre_*`` keywords (:class:`SyrePolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/sac.html#sac-policies)."""


class MethodTD3Policy(MethodPolicy, TD3Policy):
    """TD3's and DDPG's policy with a plasticity method. Ours: ``method``, ``method_kwargs``, ``method_targets``
    (:class:`MethodPolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/td3.html#td3-policies)."""

    ALGORITHMS = (TD3, DDPG)


class SyreTD3Policy(SyrePolicy, MethodTD3Policy):
    """TD3's and DDPG's policy with syre. Ours: the ``syre_*`` keywords (:class:`SyrePolicy`); every other argument
    is SB3's (https://stable-baselines3.readthedocs.io/en/master/modules/td3.html#td3-policies)."""


class MethodDQNPolicy(MethodPolicy, DQNPolicy):
    """DQN's policy with a plasticity method; ``critic`` is the Q-network. Ours: ``method``, ``method_kwargs``,
    ``method_targets`` (:class:`MethodPolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/dqn.html#dqn-policies)."""

    ALGORITHMS = (DQN,)
    DEFAULT_TARGETS = ("critic",)


class SyreDQNPolicy(SyrePolicy, MethodDQNPolicy):
    """DQN's policy with syre. Ours: the ``syre_*`` keywords (:class:`SyrePolicy`); every other argument is SB3's
    (https://stable-baselines3.readthedocs.io/en/master/modules/dqn.html#dqn-policies)."""


for _pair in (
    (MethodActorCriticPolicy, SyreActorCriticPolicy),
    (MethodSACPolicy, SyreSACPolicy),
    (MethodTD3Policy, SyreTD3Policy),
    (MethodDQNPolicy, SyreDQNPolicy),
):
    register_family(*_pair)

# sb3-contrib's four families live in syre_rl.contrib (they need sb3-contrib, the `contrib` extra); the
# callbacks in syre_rl.callbacks. Both stay importable from here, as before.
CONTRIB_POLICIES = tuple(name for name, module in POLICY_MODULES.items() if module == "contrib")
if importable("sb3_contrib"):
    import syre_rl.contrib  # noqa: E402, F401  (registers the contrib families)


def __getattr__(name: str) -> Any:
    if name in CONTRIB_POLICIES:
        require("contrib", f"syre_rl.policies.{name}")
        from syre_rl import contrib

        return getattr(contrib, name)
    if name in ("MethodLoggerCallback", "SyreLoggerCallback"):
        from syre_rl import callbacks

        return getattr(callbacks, name)
    raise AttributeError(f"module 'syre_rl.policies' has no attribute {name!r}")
