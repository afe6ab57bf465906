"""RL agents (every SB3 and sb3-contrib algorithm) from named hyperparameter presets, vanilla or with any
plasticity method, and their training run.

A syre run and its vanilla twin differ only in syre: same preset, same seed, same initial weights (the anchors
come from their own random streams), same environment stream. The L2 baseline is the same policy with anchor
scale 0: coupled weight decay toward zero on exactly the parameters syre decays toward its anchors.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import pickle
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

from syre_rl.agents.config import load_yaml, parse_assignments, parse_dataclass
from syre_rl.agents.guard import NonFiniteGuard
from syre_rl.agents.runs import (
    atomic_write,
    check_device,
    check_label,
    check_probe,
    check_threads,
    check_unchanged,
    latest_run_dir,
    new_run_dir,
    owned,
    previous,
    read_verified,
    write_json_atomic,
    write_verified,
)
from syre_rl.callbacks import HParamsCallback, MethodLoggerCallback, PlasticityCallback
from syre_rl.contrib import (
    MethodMaskableActorCriticPolicy,
    MethodQRDQNPolicy,
    MethodRecurrentActorCriticPolicy,
    MethodTQCPolicy,
)
from syre_rl.envs import (
    FrictionSchedule,
    FrictionScheduleCallback,
    TaskScheduleCallback,
    auto_vec,
    check_env_id,
    make_env,
    save_normalization,
)
from syre_rl.methods import METHODS, canonical_name, method_defaults, method_settings, setting_names
from syre_rl.policies import (
    MethodActorCriticPolicy,
    MethodDQNPolicy,
    MethodPolicy,
    MethodSACPolicy,
    MethodTD3Policy,
    check_policy_kwargs,
    parse_targets,
    sb3_base,
)
from syre_rl.settings import Settings, check_keys, check_kwargs, check_value, field_types
from syre_rl.syre import DEFAULT_SCALE

PRESET_DIR = Path(__file__).parent / "presets"
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
METRICS_STEPS = 2048  # off-policy algorithms: one "rollout" of --metrics-every counts this many env steps
CHECKPOINT, CONFIG = "checkpoint.ckpt", "config.json"
# settings a resumed run may change: they do not change what it learns (logging, speed, length, the guard)
RESUMABLE = (
    "timesteps",
    "resume",
    "progress",
    "verbose",
    "device",
    "torch_threads",
    "vec",
    "logdir",
    "save",
    "checkpoint_every",
    "metrics_every",
    "probe_size",
    "tau",
    "duplicate_threshold",
    "guard",
)
NEWER_DEFAULTS = {"permute_every": None, "first_task": None}  # settings added after runs were made (issue 12)
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}
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
        leaky_relu, gelu)
    :param method_settings: settings for any method that takes them (``--method-args`` and ``--syre-*`` override)
    """

    owner = "preset"
    algo: str = "ppo"
    env: str = "AntBulletEnv-v0"
    timesteps: int = 1_000_000
    n_envs: int = 1
    normalize: bool = False
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    method_settings: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("timesteps", "n_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"preset {name} must be >= 1, got {getattr(self, name)}")
        if self.algo not in ALGORITHMS:
            raise ValueError(f"preset algo {self.algo!r} is not one of {', '.join(ALGORITHMS)}")
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


def load_preset(name: str | None, algo: str | None = None) -> Preset:
    """Read a preset by name (``ant-zoo``, ``dohare``, ``sac-zoo``) or by path to a YAML file of the same form;
    None: the default preset of ``algo`` (:data:`DEFAULT_PRESETS`), else SB3's defaults for ``algo``.

    :raises ValueError: one line: an unknown preset (and the available ones), malformed YAML (file and line), an
        unknown key (and the closest valid one) or a badly typed value
    """
    if name is None:
        name = DEFAULT_PRESETS.get(algo or "ppo")
        if name is None:
            return Preset(algo=algo)
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(
            f"unknown preset {name!r}; available: {', '.join(available_presets())} (or a path to a .yaml file)"
        )
    data = load_yaml(path, "preset")
    try:
        return Preset.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Settings of one RL run (``scripts/train.py --help`` shows them all), checked when made; :meth:`resolved`
    fills in the preset's and the machine's defaults and the method's typed settings."""

    owner = "train"
    algo: str | None = field(
        default=None,
        metadata={
            "help": f"algorithm: {', '.join(ALGORITHMS)} (default: the preset's; without --preset, ppo)",
            "choices": list(ALGORITHMS),
            "metavar": "NAME",
        },
    )
    env: str | None = field(default=None, metadata={"help": "gymnasium env id (default: the preset's env)"})
    preset: str | None = field(
        default=None,
        metadata={
            "help": "hyperparameter preset name or YAML path (default: ant-zoo for ppo, sac-zoo for sac, SB3's "
            "defaults for the others)"
        },
    )
    timesteps: int | None = field(
        default=None, metadata={"help": "env steps to train, a whole number of rollouts (default: preset's)"}
    )
    seed: int = field(default=0, metadata={"help": "seed of networks, anchors and environments"})
    n_envs: int | None = field(default=None, metadata={"help": "parallel envs (default: preset's)"})
    vec: Literal["auto", "dummy", "subproc"] = field(
        default="auto", metadata={"help": "env vectorisation; auto: subproc with >= 4 envs and >= 4 cores, else dummy"}
    )
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda, cuda:N"})
    torch_threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads (default 1: on 2 cores a second thread gains 9-15%% when the machine is quiet "
            "and costs 1.5-2.8x when one core is busy; scripts/bench_throughput.py)"
        },
    )
    logdir: str = field(default="runs", metadata={"help": "TensorBoard root; runs go to LOGDIR/ENV/LABEL_sSEED"})
    save: str | None = field(default=None, metadata={"help": "model path (default: RUN_DIR/model.zip)"})
    method: str | None = field(
        default=None,
        metadata={
            "help": f"plasticity method: {', '.join(METHODS)} (default vanilla; --syre = --method syre)",
            "choices": list(METHODS),
            "metavar": "NAME",
        },
    )
    method_args: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "the method's settings as key=value,... (e.g. gamma=1e-3,scale=0.1; see syre_rl.methods)",
            "parse": parse_assignments,
            "metavar": "K=V,...",
        },
    )
    label: str | None = field(
        default=None,
        metadata={
            "help": "name of this variant in run folders and comparisons (default: the method), e.g. syre-scale0.1"
        },
    )
    targets: str | None = field(
        default=None,
        metadata={
            "help": "networks under the method, comma-separated from actor,critic,features,lstm (default: "
            "actor,critic; dqn and qrdqn: critic)"
        },
    )
    syre: bool = field(default=False, metadata={"help": "train with syre (shorthand for --method syre)"})
    syre_gamma: float | None = field(default=None, metadata={"help": "syre decay strength (preset's, or 1e-3)"})
    syre_scale: float | None = field(
        default=None, metadata={"help": f"anchor scale c, std c/sqrt(fan_in) (preset's, or {DEFAULT_SCALE})"}
    )
    syre_ar_eps: float | None = field(default=None, metadata={"help": "syre-ar: D ~ U(1-eps, 1+eps); 0 = syre"})
    syre_targets: str | None = field(default=None, metadata={"help": "networks under syre (same as --targets)"})
    syre_decoupled: bool | None = field(default=None, metadata={"help": "AdamW-style decoupled decay"})
    weight_decay: float | None = field(
        default=None,
        metadata={
            "help": "L2 baseline (shorthand for --method l2 --method-args gamma=X): coupled weight decay toward 0 "
            "on the parameters syre would cover"
        },
    )
    friction_every: int | None = field(
        default=None,
        metadata={"help": "SlipperyAntBulletEnv-v0: change the foot friction every K global steps (at episode ends)"},
    )
    friction_low: float = field(default=0.02, metadata={"help": "lowest friction of the schedule"})
    permute_every: int | None = field(
        default=None,
        metadata={
            "help": "permuted-observation tasks: every K global steps the observation entries are permuted anew (task "
            "k uses permutation k of the run's seed; envs.PermutedObservation)"
        },
    )
    first_task: int | None = field(
        default=None,
        metadata={
            "help": "the permuted-observation task of step 0 (default 0); alone, without --permute-every, the run "
            "trains on that one task: a fresh network's reference for task k"
        },
    )
    friction_high: float = field(default=2.0, metadata={"help": "highest friction of the schedule"})
    checkpoint_every: int = field(
        default=100_000,
        metadata={
            "help": "save RUN_DIR/checkpoint.ckpt (verified, the previous kept) every N env steps, between rollouts "
            "(0: never)"
        },
    )
    resume: bool = field(
        default=False,
        metadata={"help": "continue the latest run of this env, method and seed from its checkpoint up to --timesteps"},
    )
    metrics_every: int = field(
        default=1,
        metadata={
            "help": f"log plasticity metrics every N rollouts (off-policy: N x {METRICS_STEPS} env steps; 0: never)"
        },
    )
    probe_size: int = field(default=1000, metadata={"help": "recent observations in the metrics' probe batch"})
    tau: float = field(default=0.025, metadata={"help": "dormancy threshold of the dormant_ratio metric"})
    duplicate_threshold: float = field(
        default=0.99, metadata={"help": "cosine similarity above which two units count as copies (duplicate_units)"}
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    guard: bool = field(
        default=True,
        metadata={"help": "stop at the first non-finite gradient or parameter, keeping the last good checkpoint"},
    )
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1 prints the logger's table)"})
    method_settings: Settings | None = field(
        default=None, metadata={"cli": False, "help": "the method's complete typed settings, filled in by resolved()"}
    )
    hyperparameters: Preset | None = field(
        default=None, metadata={"cli": False, "help": "the preset's values, filled in by resolved()"}
    )

    def check(self) -> None:
        for name in ("timesteps", "n_envs", "probe_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name in ("metrics_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0 (0: never), got {getattr(self, name)}")
        if self.friction_every is not None:
            FrictionSchedule(self.friction_every, self.friction_low, self.friction_high)  # checks the values
        if self.permute_every is not None and self.permute_every < 1:
            raise ValueError(f"--permute-every must be >= 1, got {self.permute_every}")
        if self.first_task is not None and self.first_task < 0:
            raise ValueError(f"--first-task must be >= 0, got {self.first_task}")
        check_device(self.device)
        check_threads(self.torch_threads, "--torch-threads")
        check_probe(self.tau, self.duplicate_threshold)
        check_label(self.label)

    def resolved(self) -> TrainConfig:
        """A copy with the preset's and the machine's defaults filled in, every value checked: ``method``,
        ``method_settings`` and ``targets`` hold the complete method settings, ``hyperparameters`` the preset.
        A resolved config is returned as it is (a sweep resolves its runs, and each run resolves again).

        :raises ValueError: naming the bad value and what is allowed, before anything is built
        """
        if self.hyperparameters is not None:
            return self
        preset = load_preset(self.preset, self.algo)
        if self.algo is not None and self.algo != preset.algo:
            raise ValueError(
                f"--algo {self.algo} with preset {self.preset} of algorithm {preset.algo}: give a "
                f"{self.algo} preset, or leave out --preset for {self.algo}'s default"
            )
        env = self.env or preset.env
        check_env_id(env)
        if self.friction_every is not None and not env.startswith("SlipperyAnt"):
            raise ValueError(f"--friction-every needs a slippery env (SlipperyAntBulletEnv-v0), not {env}")
        timesteps = self.timesteps if self.timesteps is not None else preset.timesteps
        n_envs = self.n_envs if self.n_envs is not None else preset.n_envs
        rollout = preset.rollout(n_envs)
        if rollout and timesteps % rollout:
            fewer, more = timesteps // rollout * rollout, (timesteps // rollout + 1) * rollout
            raise ValueError(
                f"--timesteps {timesteps} is not a whole number of rollouts of {rollout} steps "
                f"({rollout // n_envs} x {n_envs} envs), and {preset.algo} only stops between rollouts; "
                f"use {fewer or more}" + (f" or {more}" if fewer else "")
            )
        method, settings, targets = self._method_settings(preset)
        vec = auto_vec(n_envs) if self.vec == "auto" else self.vec
        return dataclasses.replace(
            self,
            algo=preset.algo,
            env=env,
            timesteps=timesteps,
            n_envs=n_envs,
            method=method,
            method_settings=settings,
            targets=targets,
            label=self.label or method,
            vec=vec,
            hyperparameters=preset,
            torch_threads=self.torch_threads or 1,
        )

    def _method_settings(self, preset: Preset) -> tuple[str, Settings, str]:
        """(method name, its complete typed settings, targets) from the flags, the preset and the defaults."""
        syre_flags = {
            "gamma": self.syre_gamma,
            "scale": self.syre_scale,
            "ar_eps": self.syre_ar_eps,
            "decoupled": self.syre_decoupled,
        }
        syre_flags = {k: v for k, v in syre_flags.items() if v is not None}
        given = [f"--syre-{k.replace('_', '-')}" for k in syre_flags] + (
            ["--syre-targets"] if self.syre_targets else []
        )
        name = self.method or ("syre" if self.syre else "l2" if self.weight_decay is not None else "vanilla")
        if self.syre and name not in ("syre", "syre-ar"):
            raise ValueError(f"--syre and --method {self.method} are different methods; choose one")
        if given and name not in ("syre", "syre-ar"):
            raise ValueError(f"{', '.join(given)} given without --syre; add --syre or drop them")
        if self.weight_decay is not None:
            if name != "l2":
                raise ValueError(f"--weight-decay is the l2 method; it cannot go with method {name}")
            syre_flags["gamma"] = self.weight_decay
        if name == "vanilla" and self.targets:
            raise ValueError("--targets given with the vanilla method, which acts on nothing; drop it")
        values = {**self.method_args, **syre_flags}
        name = canonical_name(name, {**preset.method_settings, **values})
        defaults = method_defaults(name)
        values = {**{k: v for k, v in preset.method_settings.items() if k in defaults}, **values}
        if "seed" in defaults:
            values.setdefault("seed", self.seed)
        default = ALGORITHMS[preset.algo][1].DEFAULT_TARGETS
        targets = ",".join(parse_targets(self.targets or self.syre_targets or default))
        return name, method_settings(name, values), targets

    def policy_kwargs(self) -> dict[str, Any]:
        """The ``policy_kwargs`` of this (resolved) config: the preset's, and the method with its settings and
        targets (vanilla: the same policy class and networks, with nothing attached)."""
        return {
            **self.hyperparameters.policy_objects(),
            "method": self.method,
            "method_kwargs": self.method_settings,
            "method_targets": self.targets,
        }

    def hparams(self) -> dict[str, Any]:
        """What TensorBoard's HParams tab shows for the run beyond what the model says itself (algorithm, policy,
        method, its targets and settings: :class:`syre_rl.callbacks.HParamsCallback`): env, preset, seed, label."""
        return {"env": self.env, "preset": self.preset or "default", "seed": self.seed, "label": self.label}


def build_model(cfg: TrainConfig, env: VecEnv) -> BaseAlgorithm:
    """The agent of the resolved ``cfg`` on ``env``: the algorithm and its syre_rl policy class, hyperparameters
    from ``cfg.hyperparameters``."""
    algorithm, policy = ALGORITHMS[cfg.algo]
    return algorithm(
        policy,
        env,
        seed=cfg.seed,
        device=cfg.device,
        verbose=cfg.verbose,
        policy_kwargs=cfg.policy_kwargs(),
        **cfg.hyperparameters.algo_kwargs,
    )


class CheckpointCallback(BaseCallback):
    """Every ``every`` env steps, once the rollout is trained on, saves ``RUN_DIR/checkpoint.ckpt``: the model, the
    VecNormalize statistics and (off-policy algorithms) the replay buffer in one file verified by its SHA-256, the
    previous one kept until it is complete (:func:`syre_rl.agents.runs.write_verified`). A resumed run continues
    from there (weights, optimizer, the methods' state, friction phase) but not bit-exactly: SB3 reseeds its random
    streams and resets the envs on load."""

    def __init__(self, run_dir: Path, every: int):
        super().__init__()
        self.run_dir, self.every, self.last = run_dir, every, 0

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        # At a rollout start every collected step has been trained on (SB3 calls on_rollout_end before train()).
        if self.num_timesteps - self.last >= self.every:
            self._save()

    def _on_training_end(self) -> None:
        self._save()

    def _save(self) -> None:
        self.last = self.num_timesteps
        model = io.BytesIO()
        self.model.save(model)
        normalize = self.training_env if isinstance(self.training_env, VecNormalize) else None
        payload = {
            "model": model.getvalue(),
            "normalize": pickle.dumps(normalize) if normalize else None,
            "replay_buffer": None,
        }
        if isinstance(self.model, OffPolicyAlgorithm):  # an off-policy run resumes with the data it learnt from
            buffer = io.BytesIO()
            self.model.save_replay_buffer(buffer)
            payload["replay_buffer"] = buffer.getvalue()
        write_verified(self.run_dir / CHECKPOINT, pickle.dumps(payload))

    def _on_step(self) -> bool:
        return True


class TensorBoardFrom(TensorBoardOutputFormat):
    """SB3's TensorBoard output, with earlier events after ``step`` hidden (``purge_step``): a resumed run redoes
    the steps after its checkpoint, and TensorBoard then shows each step once."""

    def __init__(self, folder: str, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=folder, purge_step=step + 1 if step else None)
        self._is_closed = False


def trim_progress(run_dir: Path, step: int) -> None:
    """Drop the rows after ``step`` from a run's ``progress*.csv`` files (the steps a resumed run redoes)."""
    for path in run_dir.glob("progress*.csv"):
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "time/total_timesteps" not in rows[0]:
            continue
        kept = [r for r in rows if r["time/total_timesteps"] == "" or float(r["time/total_timesteps"]) <= step]
        if len(kept) < len(rows):
            atomic_write(path, lambda tmp, kept=kept: _write_csv(tmp, kept))


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _permute_seed(cfg: TrainConfig) -> int | None:
    """The seed of the observation permutations, when the run has permuted-observation tasks: the run's seed,
    so that task k of a continual run and a fresh run on task k see the same permutation."""
    return cfg.seed if cfg.permute_every is not None or cfg.first_task is not None else None


def _build(cfg: TrainConfig) -> tuple[BaseAlgorithm, VecEnv]:
    """A new model on new envs; SB3's assertions (e.g. DQN given a Box action space) become one-line errors."""
    env = make_env(
        cfg.env,
        n_envs=cfg.n_envs,
        seed=cfg.seed,
        vec=cfg.vec,
        normalize=cfg.hyperparameters.normalize,
        permute_seed=_permute_seed(cfg),
    )
    try:
        return build_model(cfg, env), env
    except AssertionError as error:
        env.close()
        raise ValueError(f"{cfg.algo} on {cfg.env}: {error}") from None
    except Exception:
        env.close()
        raise


def _load(cfg: TrainConfig, run_dir: Path) -> tuple[BaseAlgorithm, VecEnv] | None:
    """The model and envs of a run's last verified checkpoint, or None when it has none (it was stopped before)."""
    path = run_dir / CHECKPOINT
    if not (path.is_file() or previous(path).is_file()):
        return None
    payload = pickle.loads(read_verified(path))
    env = make_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed, vec=cfg.vec, permute_seed=_permute_seed(cfg))
    if payload["normalize"] is not None:
        normalize = pickle.loads(payload["normalize"])
        normalize.set_venv(env)
        env = normalize
    model = ALGORITHMS[cfg.algo][0].load(io.BytesIO(payload["model"]), env=env, device=cfg.device)
    if payload.get("replay_buffer") is not None:
        model.load_replay_buffer(io.BytesIO(payload["replay_buffer"]))
    return model, env


def train(config: TrainConfig, callbacks: Sequence[BaseCallback] = ()) -> dict[str, Any]:
    """Train one run (or resume one): TensorBoard + CSV logs (scalars and hparams), verified checkpoints, the
    final model and VecNormalize statistics in the run folder, which this process owns while it trains.

    :param callbacks: more SB3 callbacks for ``learn``, after the run's own
    :return: summary with ``algo``, ``method``, ``seed``, ``timesteps``, ``mean_return`` (over the last <= 100
        episodes), ``episodes``, ``steps_per_s``, ``wall_s``, ``run_dir``, ``model`` (also written to summary.json)
    :raises ValueError: bad input, a run in use, a damaged checkpoint, a finished run, or a non-finite value
        met in training (the last checkpoint is then the last good state)
    """
    cfg = config.resolved()
    torch.set_num_threads(cfg.torch_threads)
    if cfg.resume:
        run_dir = latest_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed, CONFIG)
        with owned(run_dir):
            check_unchanged(run_dir, cfg.to_dict(), RESUMABLE, "--resume", NEWER_DEFAULTS)
            loaded = _load(cfg, run_dir)
            model, env = loaded if loaded is not None else _build(cfg)
            if model.num_timesteps >= cfg.timesteps and (run_dir / "summary.json").is_file():
                env.close()
                raise ValueError(
                    f"--resume: the run in {run_dir} is finished at {model.num_timesteps} steps; give "
                    f"--timesteps above {model.num_timesteps} to continue it"
                )
            # (trained to the end but stopped before its summary: _train learns 0 steps and writes it)
            return _train(cfg, model, env, run_dir, callbacks)
    model, env = _build(cfg)  # before the run folder: a policy refusing its settings leaves nothing
    run_dir = new_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed, cfg.to_dict())
    with owned(run_dir):
        return _train(cfg, model, env, run_dir, callbacks)


def _train(
    cfg: TrainConfig, model: BaseAlgorithm, env: VecEnv, run_dir: Path, extra: Sequence[BaseCallback]
) -> dict[str, Any]:
    """The training of :func:`train`, in a run folder this process owns."""
    guard = None
    try:
        step = model.num_timesteps
        trim_progress(run_dir, step)
        # A resumed run writes its CSV beside the earlier ones, and TensorBoard hides the steps it redoes.
        csv_name = f"progress_from_{step}.csv" if step else "progress.csv"
        formats = [TensorBoardFrom(str(run_dir), step), CSVOutputFormat(str(run_dir / csv_name))]
        if cfg.verbose:
            formats.append(make_output_format("stdout", str(run_dir)))
        model.set_logger(Logger(str(run_dir), formats))
        # off-policy "rollouts" are train_freq steps: measure every METRICS_STEPS env steps per --metrics-every
        per = (
            1
            if not isinstance(model, OffPolicyAlgorithm)
            else max(1, METRICS_STEPS // (cfg.hyperparameters.rollout(cfg.n_envs) or METRICS_STEPS))
        )
        callbacks: list[BaseCallback] = [HParamsCallback(cfg.hparams()), MethodLoggerCallback(every=per)]
        if cfg.metrics_every:
            callbacks.append(
                PlasticityCallback(
                    every=cfg.metrics_every * per,
                    probe_size=cfg.probe_size,
                    tau=cfg.tau,
                    duplicate_threshold=cfg.duplicate_threshold,
                )
            )
        if cfg.friction_every is not None:
            schedule = FrictionSchedule(cfg.friction_every, cfg.friction_low, cfg.friction_high, seed=cfg.seed)
            callbacks.append(FrictionScheduleCallback(schedule))
        if _permute_seed(cfg) is not None:
            callbacks.append(TaskScheduleCallback(cfg.permute_every, cfg.first_task or 0))
        if cfg.checkpoint_every:
            callbacks.append(CheckpointCallback(run_dir, cfg.checkpoint_every))
        callbacks += list(extra)
        if cfg.guard:
            guard = NonFiniteGuard(model.policy, model.policy._optimizers(), lambda: f"env step {model.num_timesteps}")
        start = time.perf_counter()
        model.learn(
            max(0, cfg.timesteps - step), callback=callbacks, progress_bar=cfg.progress, reset_num_timesteps=not step
        )
        wall = time.perf_counter() - start
        model.logger.dump(model.num_timesteps)  # SB3 dumps train/* one iteration late: flush the last ones
        model_path = Path(cfg.save) if cfg.save else run_dir / "model.zip"
        atomic_write(model_path, model.save)
        save_normalization(env, model_path.parent)
    finally:
        if guard is not None:
            guard.remove()
        env.close()
    returns = [ep["r"] for ep in model.ep_info_buffer]
    summary = {
        "algo": cfg.algo,
        "method": cfg.method,
        "seed": cfg.seed,
        "env": cfg.env,
        "timesteps": model.num_timesteps,
        "mean_return": float(np.mean(returns)) if returns else None,
        "episodes": len(returns),
        "steps_per_s": (model.num_timesteps - step) / max(wall, 1e-9),
        "wall_s": wall,
        "run_dir": str(run_dir),
        "model": str(model_path),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def cli(argv: list[str] | None, description: str, prog: str) -> dict[str, Any]:
    """What ``scripts/train.py`` and ``scripts/train_ppo.py`` run: flags into a :class:`TrainConfig`, one run, a
    one-line summary; bad input exits with one line (``prog: error: ...``) before anything is built."""
    config = parse_dataclass(TrainConfig, description, argv, prog)
    try:
        summary = train(config)
    except ValueError as err:
        raise SystemExit(f"{prog}: error: {err}") from None
    print(
        f"{summary['algo']} {summary['method']} seed {summary['seed']}: mean return {summary['mean_return']} over "
        f"the last {summary['episodes']} episodes, {summary['steps_per_s']:.0f} steps/s; run in {summary['run_dir']}"
    )
    return summary
