"""Hyperparameter presets (``agents/presets/*.yaml``) and the algorithms they name: every SB3 and sb3-contrib
algorithm with its syre_rl policy class."""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from torch import nn

from syre_rl.agents.config import load_yaml
from syre_rl.contrib import (
    MethodMaskableActorCriticPolicy,
    MethodQRDQNPolicy,
    MethodRecurrentActorCriticPolicy,
    MethodTQCPolicy,
)
from syre_rl.methods import METHODS, setting_names
from syre_rl.policies import (
    MethodActorCriticPolicy,
    MethodDQNPolicy,
    MethodPolicy,
    MethodSACPolicy,
    MethodTD3Policy,
    check_policy_kwargs,
    sb3_base,
)
from syre_rl.settings import Settings, check_keys, check_kwargs, check_value, field_types

UNBOUNDED = ("max_grad_norm",)  # the numbers a preset may set to infinity (SB3: gradient clipping off)
PRESET_DIR = Path(__file__).parent.parent / "presets"
# --algo name -> (algorithm, its syre_rl policy class)
ALGORITHMS: dict[str, tuple[type[BaseAlgorithm], type[MethodPolicy]]] = {
    "ppo": (PPO, MethodActorCriticPolicy),
    "a2c": (A2C, MethodActorCriticPolicy),
    "sac": (SAC, MethodSACPolicy),
    "td3": (TD3, MethodTD3Policy),
    "ddpg": (DDPG, MethodTD3Policy),
    "dqn": (DQN, MethodDQNPolicy),
    "recurrent-ppo": (RecurrentPPO, MethodRecurrentActorCriticPolicy),
    "maskable-ppo": (MaskablePPO, MethodMaskableActorCriticPolicy),
    "tqc": (TQC, MethodTQCPolicy),
    "qrdqn": (QRDQN, MethodQRDQNPolicy),
}
DEFAULT_PRESETS = {"ppo": "ant-zoo", "sac": "sac-zoo"}  # --algo without --preset; others run on SB3's defaults


class LeakyReLU01(nn.LeakyReLU):
    """LeakyReLU with negative slope 0.1 (C-CHAIN's networks), a class SB3 can build without arguments."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.1, inplace)


ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
    "leaky_relu_0.1": LeakyReLU01,
    "gelu": nn.GELU,
}
# algorithm arguments the training run sets itself; a preset's `algo_kwargs` section holds the others
RUN_SET = ("policy", "env", "seed", "device", "verbose", "policy_kwargs", "tensorboard_log", "_init_setup_model")


def _default(algorithm: type[BaseAlgorithm], name: str) -> Any:
    return inspect.signature(algorithm.__init__).parameters[name].default


def available_presets() -> list[str]:
    """Names of the presets shipped in ``agents/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Preset(Settings):
    """A hyperparameter preset (``agents/presets/*.yaml``), checked key by key when made.

    :param algo: the algorithm, a name from :data:`ALGORITHMS`
    :param env: gymnasium id the preset was tuned for
    :param timesteps: env steps of a run
    :param n_envs: parallel environments
    :param normalize: wrap the envs in VecNormalize (SB3's defaults), saved beside the model
    :param algo_kwargs: the algorithm's arguments (PPO's ``n_steps``, SAC's ``buffer_size``, ...)
    :param policy_kwargs: ``ActorCriticPolicy`` arguments; ``activation_fn`` by name (relu, tanh, elu,
        leaky_relu, leaky_relu_0.1, gelu)
    :param method_settings: settings for any method that takes them (``--method-args`` and ``--syre-*`` override)
    :param env_kwargs: keyword arguments of ``gym.make`` (e.g. ``max_episode_steps``)
    :param reward_scale: rewards are multiplied by it for learning (C-CHAIN's PPO divides them by 20); the logged
        episode returns are the env's own
    """

    owner = "preset"
    # fields added after runs were made, with the value those runs had
    NEWER_DEFAULTS: ClassVar[dict[str, Any]] = {"env_kwargs": {}, "reward_scale": 1.0}
    algo: str = "ppo"
    env: str = "AntBulletEnv-v0"
    timesteps: int = 1_000_000
    n_envs: int = 1
    normalize: bool = False
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    method_settings: dict[str, Any] = field(default_factory=dict)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    reward_scale: float = 1.0

    def check(self) -> None:
        for name in ("timesteps", "n_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"preset {name} must be >= 1, got {getattr(self, name)}")
        if not (self.reward_scale > 0 and math.isfinite(self.reward_scale)):
            raise ValueError(f"preset reward_scale must be a finite number > 0, got {self.reward_scale!r}")
        if self.algo not in ALGORITHMS:
            raise ValueError(f"preset algo {self.algo!r} is not one of {', '.join(ALGORITHMS)}")
        for section in ("algo_kwargs", "policy_kwargs", "method_settings"):
            for key, value in _numbers(getattr(self, section)):
                if math.isnan(value) or (math.isinf(value) and key not in UNBOUNDED):
                    allowed = "" if math.isnan(value) else " (infinity: only " + ", ".join(UNBOUNDED) + ")"
                    raise ValueError(f"preset {section} {key} must be a finite number{allowed}, got {value!r}")
        check_kwargs("preset algo_kwargs", ALGORITHMS[self.algo][0].__init__, self.algo_kwargs, skip=RUN_SET)
        rollout = self.rollout(self.n_envs)
        if rollout and self.timesteps % rollout:
            raise ValueError(f"preset timesteps {self.timesteps} is not a whole number of rollouts of {rollout} steps")
        activation = self.policy_kwargs.get("activation_fn", "relu")
        if activation not in ACTIVATIONS:
            raise ValueError(
                f"preset policy_kwargs activation_fn must be one of {', '.join(ACTIVATIONS)}, got {activation!r}"
            )
        check_policy_kwargs(self.policy_objects(), "preset policy_kwargs", sb3_base(ALGORITHMS[self.algo][1]))
        names = setting_names()
        check_keys("preset method_settings", self.method_settings, names)
        types = {k: t for cls in METHODS.values() for k, t in field_types(cls.Settings).items()}
        for key, value in self.method_settings.items():
            check_value("preset method_settings", key, value, types[key])

    def policy_objects(self) -> dict[str, Any]:
        """``policy_kwargs`` with names turned into objects (``activation_fn: relu`` -> ``nn.ReLU``, Adam betas
        as a tuple)."""
        kwargs = dict(self.policy_kwargs)
        if "activation_fn" in kwargs:
            kwargs["activation_fn"] = ACTIVATIONS[kwargs["activation_fn"]]
        opt = dict(kwargs.get("optimizer_kwargs") or {})
        if "betas" in opt:
            opt["betas"] = tuple(opt["betas"])
        if opt:
            kwargs["optimizer_kwargs"] = opt
        return kwargs

    def rollout(self, n_envs: int) -> int | None:
        """Env steps per rollout, between which the algorithm stops: on-policy ``n_steps x n_envs``, off-policy
        ``train_freq x n_envs`` (the preset's, else SB3's default); None when ``train_freq`` counts episodes."""
        algorithm = ALGORITHMS[self.algo][0]
        key = "train_freq" if issubclass(algorithm, OffPolicyAlgorithm) else "n_steps"
        steps = self.algo_kwargs.get(key, _default(algorithm, key))
        if isinstance(steps, (list, tuple)):  # (n, "step") or (n, "episode")
            steps = steps[0] if steps[1] == "step" else None
        return steps * n_envs if steps else None


def _numbers(value: Any, key: str = "") -> list[tuple[str, float]]:
    """Every float in a nested preset section, with its dotted key (``optimizer_kwargs.eps``)."""
    if isinstance(value, dict):
        return [n for k, v in value.items() for n in _numbers(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list | tuple):
        return [n for i, v in enumerate(value) for n in _numbers(v, f"{key}[{i}]")]
    return [(key, value)] if isinstance(value, float) else []


def load_preset(name: str | None, algo: str | None = None) -> Preset:
    """Read a preset by name (``ant-zoo``, ``dohare``, ``sac-zoo``) or by path to a YAML file of the same form;
    None: the default preset of ``algo`` (:data:`DEFAULT_PRESETS`), else SB3's defaults for ``algo``. A file
    with ``base: NAME`` holds only what it changes in preset NAME (:func:`_preset_data`).

    :raises ValueError: one line: an unknown preset (and the available ones), malformed YAML (file and line), an
        unknown key (and the closest valid one), a badly typed value, or a base that is no preset or a cycle
    """
    if name is None:
        name = DEFAULT_PRESETS.get(algo or "ppo")
        if name is None:
            return Preset(algo=algo)
    path = _preset_path(name, Path())
    data = _preset_data(path, ())
    try:
        return Preset.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


# a preset's sections that one extending it updates key by key (the others it replaces)
SECTIONS = ("algo_kwargs", "policy_kwargs", "method_settings", "env_kwargs")


def _preset_path(name: str, folder: Path) -> Path:
    """A preset's file: a shipped preset's name, or a ``.yaml`` path (relative to ``folder``)."""
    path = folder / name if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(
            f"unknown preset {name!r}; available: {', '.join(available_presets())} (or a path to a .yaml file)"
        )
    return path


def _preset_data(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A preset file's settings; one with ``base: NAME`` is that preset's, with its own values over them (the
    :data:`SECTIONS` key by key: ``algo_kwargs: {learning_rate: 6.3e-4}`` changes only the learning rate)."""
    data = load_yaml(path, "preset")
    if "base" not in data:
        return data
    base = data.pop("base")
    if not isinstance(base, str):
        raise ValueError(f"{path}: base must name a preset (a shipped one, or a .yaml path), got {base!r}")
    base_path = _preset_path(base, path.parent)
    if base_path.resolve() in seen + (path.resolve(),):
        raise ValueError(f"{path}: base {base!r} extends this preset again (a cycle of bases)")
    merged = _preset_data(base_path, seen + (path.resolve(),))
    for key, value in data.items():
        if key in SECTIONS and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged
