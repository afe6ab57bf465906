"""PPO agents from named hyperparameter presets, vanilla or with syre or L2, and their training run.

A syre run and its vanilla twin differ only in syre: same preset, same seed, same initial weights (the anchors
come from their own random streams), same environment stream. The L2 baseline is the same policy with anchor
scale 0: coupled weight decay toward zero on exactly the parameters syre decays toward its anchors.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

from syre_rl.agents.config import load_yaml, parse_assignments
from syre_rl.agents.runs import (
    atomic_write,
    check_device,
    check_label,
    check_probe,
    check_threads,
    latest_run_dir,
    new_run_dir,
    write_json_atomic,
)
from syre_rl.callbacks import PlasticityCallback
from syre_rl.envs import (
    FrictionSchedule,
    FrictionScheduleCallback,
    auto_vec,
    check_env_id,
    make_env,
    save_normalization,
)
from syre_rl.methods import METHODS, canonical_name, method_defaults, method_settings, setting_names
from syre_rl.policies import (
    DEFAULT_TARGETS,
    MethodActorCriticPolicy,
    MethodLoggerCallback,
    check_policy_kwargs,
    parse_targets,
)
from syre_rl.settings import Settings, check_keys, check_kwargs, check_value, field_types
from syre_rl.syre import DEFAULT_SCALE

PRESET_DIR = Path(__file__).parent / "presets"
CHECKPOINT, CHECKPOINT_NORMALIZE = "checkpoint.zip", "checkpoint_vecnormalize.pkl"
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}
# PPO arguments the training run sets itself; a preset's `ppo` section holds the others
RUN_SET = ("policy", "env", "seed", "device", "verbose", "policy_kwargs", "tensorboard_log", "_init_setup_model")


def available_presets() -> list[str]:
    """Names of the presets shipped in ``agents/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Preset(Settings):
    """A hyperparameter preset (``agents/presets/*.yaml``), checked key by key when made.

    :param env: gymnasium id the preset was tuned for
    :param timesteps: env steps of a run
    :param n_envs: parallel environments
    :param normalize: wrap the envs in VecNormalize (SB3's defaults), saved beside the model
    :param ppo: ``stable_baselines3.PPO`` arguments (``n_steps``, ``batch_size``, ``learning_rate``, ...)
    :param policy_kwargs: ``ActorCriticPolicy`` arguments; ``activation_fn`` by name (relu, tanh, elu,
        leaky_relu, gelu)
    :param method_settings: settings for any method that takes them (``--method-args`` and ``--syre-*`` override)
    """

    owner = "preset"
    env: str = "AntBulletEnv-v0"
    timesteps: int = 1_000_000
    n_envs: int = 1
    normalize: bool = False
    ppo: dict[str, Any] = field(default_factory=dict)
    policy_kwargs: dict[str, Any] = field(default_factory=dict)
    method_settings: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        for name in ("timesteps", "n_envs"):
            if getattr(self, name) < 1:
                raise ValueError(f"preset {name} must be >= 1, got {getattr(self, name)}")
        check_kwargs("preset ppo", PPO.__init__, self.ppo, skip=RUN_SET)
        if self.timesteps % self.rollout(self.n_envs):
            raise ValueError(f"preset timesteps {self.timesteps} is not a whole number of rollouts of "
                             f"{self.rollout(self.n_envs)} steps (n_steps x n_envs)")
        activation = self.policy_kwargs.get("activation_fn", "relu")
        if activation not in ACTIVATIONS:
            raise ValueError(f"preset policy_kwargs activation_fn must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        check_policy_kwargs(self.policy_objects(), "preset policy_kwargs")
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

    def rollout(self, n_envs: int) -> int:
        """Env steps per PPO rollout: ``n_steps`` (the preset's, else PPO's default) times ``n_envs``."""
        return self.ppo.get("n_steps", inspect.signature(PPO.__init__).parameters["n_steps"].default) * n_envs


def load_preset(name: str) -> Preset:
    """Read a preset by name (``ant-zoo``, ``dohare``) or by path to a YAML file of the same form.

    :raises ValueError: one line: an unknown preset (and the available ones), malformed YAML (file and line), an
        unknown key (and the closest valid one) or a badly typed value
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets())} "
                         "(or a path to a .yaml file)")
    data = load_yaml(path, "preset")
    try:
        return Preset.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


@dataclass(frozen=True)
class TrainConfig(Settings):
    """Settings of one PPO run (``scripts/train_ppo.py --help`` shows them all), checked when made;
    :meth:`resolved` fills in the preset's and the machine's defaults and the method's typed settings."""

    owner = "train_ppo"
    env: str | None = field(default=None, metadata={"help": "gymnasium env id (default: the preset's env)"})
    preset: str = field(default="ant-zoo", metadata={"help": "hyperparameter preset name or YAML path"})
    timesteps: int | None = field(default=None, metadata={
        "help": "env steps to train, a whole number of rollouts (default: preset's)"})
    seed: int = field(default=0, metadata={"help": "seed of networks, anchors and environments"})
    n_envs: int | None = field(default=None, metadata={"help": "parallel envs (default: preset's)"})
    vec: Literal["auto", "dummy", "subproc"] = field(default="auto", metadata={
        "help": "env vectorisation; auto: subproc with >= 4 envs and >= 4 cores, else dummy"})
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda, cuda:N"})
    torch_threads: int | None = field(default=None, metadata={
        "help": "torch CPU threads (default: 1 with subproc envs, else min(cores, 4))"})
    logdir: str = field(default="runs", metadata={"help": "TensorBoard root; runs go to LOGDIR/ENV/LABEL_sSEED"})
    save: str | None = field(default=None, metadata={"help": "model path (default: RUN_DIR/model.zip)"})
    method: str | None = field(default=None, metadata={
        "help": f"plasticity method: {', '.join(METHODS)} (default vanilla; --syre = --method syre)",
        "choices": list(METHODS), "metavar": "NAME"})
    method_args: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "the method's settings as key=value,... (e.g. gamma=1e-3,scale=0.1; see syre_rl.methods)",
        "parse": parse_assignments, "metavar": "K=V,..."})
    label: str | None = field(default=None, metadata={
        "help": "name of this variant in run folders and comparisons (default: the method), e.g. syre-scale0.1"})
    targets: str | None = field(default=None, metadata={
        "help": f"networks under the method, comma-separated from actor,critic,features (default: "
                f"{','.join(DEFAULT_TARGETS)})"})
    syre: bool = field(default=False, metadata={"help": "train with syre (shorthand for --method syre)"})
    syre_gamma: float | None = field(default=None, metadata={"help": "syre decay strength (preset's, or 1e-3)"})
    syre_scale: float | None = field(default=None, metadata={
        "help": f"anchor scale c, std c/sqrt(fan_in) (preset's, or {DEFAULT_SCALE})"})
    syre_ar_eps: float | None = field(default=None, metadata={"help": "syre-ar: D ~ U(1-eps, 1+eps); 0 = syre"})
    syre_targets: str | None = field(default=None, metadata={"help": "networks under syre (same as --targets)"})
    syre_decoupled: bool | None = field(default=None, metadata={"help": "AdamW-style decoupled decay"})
    weight_decay: float | None = field(default=None, metadata={
        "help": "L2 baseline (shorthand for --method l2 --method-args gamma=X): coupled weight decay toward 0 "
                "on the parameters syre would cover"})
    friction_every: int | None = field(default=None, metadata={
        "help": "SlipperyAntBulletEnv-v0: change the foot friction every K global steps (at episode ends)"})
    friction_low: float = field(default=0.02, metadata={"help": "lowest friction of the schedule"})
    friction_high: float = field(default=2.0, metadata={"help": "highest friction of the schedule"})
    checkpoint_every: int = field(default=100_000, metadata={
        "help": "save RUN_DIR/checkpoint.zip (atomically) every N env steps, between rollouts (0: never)"})
    resume: bool = field(default=False, metadata={
        "help": "continue the latest run of this env, method and seed from its checkpoint up to --timesteps"})
    metrics_every: int = field(default=1, metadata={
        "help": "log plasticity metrics of actor and critic every N rollouts (0: never)"})
    probe_size: int = field(default=1000, metadata={"help": "recent observations in the metrics' probe batch"})
    tau: float = field(default=0.025, metadata={"help": "dormancy threshold of the dormant_ratio metric"})
    duplicate_threshold: float = field(default=0.99, metadata={
        "help": "cosine similarity above which two units count as copies (duplicate_units)"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1 prints the logger's table)"})
    method_settings: Settings | None = field(default=None, metadata={
        "cli": False, "help": "the method's complete typed settings, filled in by resolved()"})
    hyperparameters: Preset | None = field(default=None, metadata={
        "cli": False, "help": "the preset's values, filled in by resolved()"})

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
        check_device(self.device)
        check_threads(self.torch_threads, "--torch-threads")
        check_probe(self.tau, self.duplicate_threshold)
        check_label(self.label)

    def resolved(self) -> TrainConfig:
        """A copy with the preset's and the machine's defaults filled in, every value checked: ``method``,
        ``method_settings`` and ``targets`` hold the complete method settings, ``hyperparameters`` the preset.

        :raises ValueError: naming the bad value and what is allowed, before anything is built
        """
        preset = load_preset(self.preset)
        env = self.env or preset.env
        check_env_id(env)
        if self.friction_every is not None and not env.startswith("SlipperyAnt"):
            raise ValueError(f"--friction-every needs a slippery env (SlipperyAntBulletEnv-v0), not {env}")
        timesteps = self.timesteps if self.timesteps is not None else preset.timesteps
        n_envs = self.n_envs if self.n_envs is not None else preset.n_envs
        rollout = preset.rollout(n_envs)
        if timesteps % rollout:
            fewer, more = timesteps // rollout * rollout, (timesteps // rollout + 1) * rollout
            raise ValueError(f"--timesteps {timesteps} is not a whole number of rollouts of {rollout} steps "
                             f"(n_steps {rollout // n_envs} x {n_envs} envs), and PPO only stops between rollouts; "
                             f"use {fewer or more}" + (f" or {more}" if fewer else ""))
        method, settings, targets = self._method_settings(preset)
        vec = auto_vec(n_envs) if self.vec == "auto" else self.vec
        return dataclasses.replace(
            self, env=env, timesteps=timesteps, n_envs=n_envs, method=method, method_settings=settings,
            targets=targets, label=self.label or method, vec=vec, hyperparameters=preset,
            torch_threads=self.torch_threads or (1 if vec == "subproc" else min(os.cpu_count() or 1, 4)))

    def _method_settings(self, preset: Preset) -> tuple[str, Settings, str]:
        """(method name, its complete typed settings, targets) from the flags, the preset and the defaults."""
        syre_flags = {"gamma": self.syre_gamma, "scale": self.syre_scale, "ar_eps": self.syre_ar_eps,
                      "decoupled": self.syre_decoupled}
        syre_flags = {k: v for k, v in syre_flags.items() if v is not None}
        given = [f"--syre-{k.replace('_', '-')}" for k in syre_flags] + (["--syre-targets"] if self.syre_targets
                                                                          else [])
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
        targets = ",".join(parse_targets(self.targets or self.syre_targets or ",".join(DEFAULT_TARGETS)))
        return name, method_settings(name, values), targets

    def policy_and_kwargs(self) -> tuple[Any, dict[str, Any]]:
        """The SB3 policy (class or alias) and its ``policy_kwargs`` for this (resolved) config's method: the
        plain ``MlpPolicy`` for vanilla, else :class:`MethodActorCriticPolicy` (the same networks)."""
        kwargs = self.hyperparameters.policy_objects()
        if self.method == "vanilla":
            return "MlpPolicy", kwargs
        kwargs.update(method=self.method, method_kwargs=self.method_settings, method_targets=self.targets)
        return MethodActorCriticPolicy, kwargs


def build_ppo(cfg: TrainConfig, env: VecEnv) -> PPO:
    """A PPO agent for the resolved ``cfg`` on ``env``, hyperparameters from ``cfg.hyperparameters``."""
    policy, policy_kwargs = cfg.policy_and_kwargs()
    return PPO(policy, env, seed=cfg.seed, device=cfg.device, verbose=cfg.verbose, policy_kwargs=policy_kwargs,
               **cfg.hyperparameters.ppo)


class CheckpointCallback(BaseCallback):
    """Every ``every`` env steps, once the rollout is trained on, saves ``RUN_DIR/checkpoint.zip`` and the
    VecNormalize statistics ``RUN_DIR/checkpoint_vecnormalize.pkl``, each atomically (one rolling checkpoint).
    A resumed run continues from there (weights, optimizer, the methods' state, friction phase) but not
    bit-exactly: SB3 reseeds its random streams and resets the envs on load."""

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
        atomic_write(self.run_dir / CHECKPOINT, self.model.save)
        save_normalization(self.training_env, self.run_dir, CHECKPOINT_NORMALIZE)

    def _on_step(self) -> bool:
        return True


def _open_run(cfg: TrainConfig) -> tuple[PPO, VecEnv, Path]:
    """A new model and run folder, or (``cfg.resume``) the latest checkpointed run's model and folder."""
    if not cfg.resume:
        env = make_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed, vec=cfg.vec, normalize=cfg.hyperparameters.normalize)
        try:
            model = build_ppo(cfg, env)  # before the run folder: a policy that refuses its settings leaves nothing
        except Exception:
            env.close()
            raise
        run_dir = new_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed)
        write_json_atomic(run_dir / "config.json", cfg.to_dict())
        return model, env, run_dir
    run_dir = latest_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed, CHECKPOINT)
    env = make_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed, vec=cfg.vec)
    if (run_dir / CHECKPOINT_NORMALIZE).is_file():
        env = VecNormalize.load(str(run_dir / CHECKPOINT_NORMALIZE), env)
    model = PPO.load(run_dir / CHECKPOINT, env=env, device=cfg.device)
    return model, env, run_dir


def train(config: TrainConfig) -> dict[str, Any]:
    """Train one PPO run (or resume one): TensorBoard + CSV logs, checkpoints, the final model and VecNormalize
    statistics in the run folder.

    :return: summary with ``method``, ``seed``, ``timesteps``, ``mean_return`` (over the last <= 100 episodes),
        ``episodes``, ``steps_per_s``, ``wall_s``, ``run_dir``, ``model`` (also written to summary.json)
    """
    cfg = config.resolved()
    torch.set_num_threads(cfg.torch_threads)
    model, env, run_dir = _open_run(cfg)
    try:
        # A resumed run writes its CSV beside the first one's; TensorBoard appends a new events file.
        csv_name = f"progress_from_{model.num_timesteps}.csv" if cfg.resume else "progress.csv"
        formats = [make_output_format("tensorboard", str(run_dir)), CSVOutputFormat(str(run_dir / csv_name))]
        if cfg.verbose:
            formats.append(make_output_format("stdout", str(run_dir)))
        model.set_logger(Logger(str(run_dir), formats))
        callbacks: list[BaseCallback] = []
        if isinstance(model.policy, MethodActorCriticPolicy):
            callbacks.append(MethodLoggerCallback())
        if cfg.metrics_every:
            callbacks.append(PlasticityCallback(every=cfg.metrics_every, probe_size=cfg.probe_size, tau=cfg.tau,
                                                duplicate_threshold=cfg.duplicate_threshold))
        if cfg.friction_every is not None:
            schedule = FrictionSchedule(cfg.friction_every, cfg.friction_low, cfg.friction_high, seed=cfg.seed)
            callbacks.append(FrictionScheduleCallback(schedule))
        if cfg.checkpoint_every:
            callbacks.append(CheckpointCallback(run_dir, cfg.checkpoint_every))
        start, start_steps = time.perf_counter(), model.num_timesteps
        model.learn(max(0, cfg.timesteps - model.num_timesteps), callback=callbacks, progress_bar=cfg.progress,
                    reset_num_timesteps=not cfg.resume)
        wall = time.perf_counter() - start
        model.logger.dump(model.num_timesteps)  # SB3 dumps train/* one iteration late: flush the last ones
        model_path = Path(cfg.save) if cfg.save else run_dir / "model.zip"
        atomic_write(model_path, model.save)
        save_normalization(env, model_path.parent)
    finally:
        env.close()
    returns = [ep["r"] for ep in model.ep_info_buffer]
    summary = {
        "method": cfg.method, "seed": cfg.seed, "env": cfg.env, "timesteps": model.num_timesteps,
        "mean_return": float(np.mean(returns)) if returns else None, "episodes": len(returns),
        "steps_per_s": (model.num_timesteps - start_steps) / wall, "wall_s": wall, "run_dir": str(run_dir),
        "model": str(model_path),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return summary
