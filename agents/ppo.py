"""PPO agents from named hyperparameter presets, vanilla or with syre or L2, and their training run.

A syre run and its vanilla twin differ only in syre: same preset, same seed, same initial weights (the anchors
come from their own random streams), same environment stream. The L2 baseline is the same policy with anchor
scale 0: coupled weight decay toward zero on exactly the parameters syre decays toward its anchors.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from envs import auto_vec, check_env_id, make_env, save_normalization
from syre_rl.policies import DEFAULT_RL_GAMMA, DEFAULT_TARGETS, SyreActorCriticPolicy, SyreLoggerCallback, parse_targets
from syre_rl.syre import DEFAULT_SCALE, check_syre_settings

PRESET_DIR = Path(__file__).parent / "presets"
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "leaky_relu": nn.LeakyReLU, "gelu": nn.GELU}
METHODS = ("vanilla", "l2", "syre", "syre-ar")


def available_presets() -> list[str]:
    """Names of the presets shipped in ``agents/presets``."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    """Read a preset by name (``ant-zoo``, ``dohare``) or by path to a YAML file of the same form.

    :raises ValueError: naming the preset and the available ones when it does not exist
    """
    path = Path(name) if name.endswith((".yaml", ".yml")) else PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets())} "
                         "(or a path to a .yaml file)")
    preset = yaml.safe_load(path.read_text())
    preset.setdefault("ppo", {})
    preset.setdefault("policy_kwargs", {})
    preset.setdefault("syre", {})
    return preset


def policy_kwargs_from_preset(preset: dict[str, Any]) -> dict[str, Any]:
    """The preset's ``policy_kwargs`` with names turned into objects (``activation_fn: relu`` -> ``nn.ReLU``)."""
    kwargs = dict(preset["policy_kwargs"])
    if "activation_fn" in kwargs:
        name = kwargs["activation_fn"]
        if name not in ACTIVATIONS:
            raise ValueError(f"unknown activation_fn {name!r}; choose one of {sorted(ACTIVATIONS)}")
        kwargs["activation_fn"] = ACTIVATIONS[name]
    opt = dict(kwargs.get("optimizer_kwargs") or {})
    if "betas" in opt:
        opt["betas"] = tuple(opt["betas"])
    if opt:
        kwargs["optimizer_kwargs"] = opt
    return kwargs


@dataclass
class TrainConfig:
    """Settings of one PPO run (``scripts/train_ppo.py --help`` shows them all)."""

    env: str | None = field(default=None, metadata={"help": "gymnasium env id (default: the preset's env)"})
    preset: str = field(default="ant-zoo", metadata={"help": "hyperparameter preset name or YAML path"})
    timesteps: int | None = field(default=None, metadata={"help": "env steps to train (default: preset's)"})
    seed: int = field(default=0, metadata={"help": "seed of networks, anchors and environments"})
    n_envs: int | None = field(default=None, metadata={"help": "parallel envs (default: preset's)"})
    vec: str = field(default="auto", metadata={
        "help": "env vectorisation; auto: subproc with >= 4 envs and >= 4 cores, else dummy",
        "choices": ["auto", "dummy", "subproc"]})
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda, cuda:N"})
    torch_threads: int | None = field(default=None, metadata={
        "help": "torch CPU threads (default: 1 with subproc envs, else min(cores, 4))"})
    logdir: str = field(default="runs", metadata={"help": "TensorBoard root; runs go to LOGDIR/ENV/METHOD_sSEED"})
    save: str | None = field(default=None, metadata={"help": "model path (default: RUN_DIR/model.zip)"})
    syre: bool = field(default=False, metadata={"help": "train with syre (otherwise the vanilla twin)"})
    syre_gamma: float | None = field(default=None, metadata={"help": "syre decay strength (preset's, or 1e-3)"})
    syre_scale: float | None = field(default=None, metadata={
        "help": f"anchor scale c, std c/sqrt(fan_in) (preset's, or {DEFAULT_SCALE})"})
    syre_ar_eps: float | None = field(default=None, metadata={"help": "syre-ar: D ~ U(1-eps, 1+eps); 0 = syre"})
    syre_targets: str | None = field(default=None, metadata={
        "help": f"networks under syre, comma-separated from actor,critic,features (default: "
                f"{','.join(DEFAULT_TARGETS)})"})
    syre_decoupled: bool | None = field(default=None, metadata={"help": "AdamW-style decoupled decay"})
    weight_decay: float | None = field(default=None, metadata={
        "help": "L2 baseline: coupled weight decay toward 0 on the parameters syre would cover"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1 prints the logger's table)"})

    @property
    def method(self) -> str:
        if self.syre:
            return "syre-ar" if (self.syre_ar_eps or 0) > 0 else "syre"
        return "l2" if self.weight_decay is not None else "vanilla"

    def resolved(self) -> TrainConfig:
        """A copy with the preset's and the machine's defaults filled in, every value checked.

        :raises ValueError: naming the bad value and what is allowed, before anything is built
        """
        preset = load_preset(self.preset)
        syre_opts = {f: getattr(self, f) for f in
                     ("syre_gamma", "syre_scale", "syre_ar_eps", "syre_targets", "syre_decoupled")}
        given = [f"--{k.replace('_', '-')}" for k, v in syre_opts.items() if v is not None]
        if given and not self.syre:
            raise ValueError(f"{', '.join(given)} given without --syre; add --syre or drop them")
        if self.syre and self.weight_decay is not None:
            raise ValueError("--syre and --weight-decay are different methods; choose one")
        if self.weight_decay is not None and not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"--weight-decay must be a finite number >= 0, got {self.weight_decay}")
        cfg = dataclasses.replace(self, env=self.env or preset.get("env", "AntBulletEnv-v0"))
        check_env_id(cfg.env)
        cfg.timesteps = self.timesteps if self.timesteps is not None else int(preset.get("timesteps", 1_000_000))
        cfg.n_envs = self.n_envs if self.n_envs is not None else int(preset.get("n_envs", 1))
        for name in ("timesteps", "n_envs"):
            if getattr(cfg, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(cfg, name)}")
        _check_device(cfg.device)
        cfg.vec = auto_vec(cfg.n_envs) if self.vec == "auto" else self.vec
        cfg.torch_threads = self.torch_threads or (1 if cfg.vec == "subproc" else min(os.cpu_count() or 1, 4))
        if self.syre:
            defaults = preset["syre"]
            cfg.syre_gamma = _first(self.syre_gamma, defaults.get("gamma"), DEFAULT_RL_GAMMA)
            cfg.syre_scale = _first(self.syre_scale, defaults.get("scale"), DEFAULT_SCALE)
            cfg.syre_ar_eps = _first(self.syre_ar_eps, defaults.get("ar_eps"), 0.0)
            cfg.syre_decoupled = bool(_first(self.syre_decoupled, defaults.get("decoupled"), False))
            cfg.syre_targets = ",".join(parse_targets(_first(self.syre_targets, defaults.get("targets"),
                                                             ",".join(DEFAULT_TARGETS))))
            check_syre_settings(gamma=cfg.syre_gamma, scale=cfg.syre_scale, ar_eps=cfg.syre_ar_eps)
        return cfg

    def policy_and_kwargs(self, preset: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The SB3 policy (class or alias) and its ``policy_kwargs`` for this (resolved) config's method."""
        kwargs = policy_kwargs_from_preset(preset)
        if self.method == "vanilla":
            return "MlpPolicy", kwargs
        if self.method == "l2":  # syre with anchors at 0: coupled weight decay on the same parameters
            kwargs.update(syre_gamma=self.weight_decay, syre_scale=0.0, syre_seed=self.seed)
        else:
            kwargs.update(syre_gamma=self.syre_gamma, syre_scale=self.syre_scale, syre_ar_eps=self.syre_ar_eps,
                          syre_decoupled=self.syre_decoupled, syre_targets=self.syre_targets,
                          syre_seed=self.seed)
        return SyreActorCriticPolicy, kwargs


def _check_device(device: str) -> None:
    if device == "auto":
        return
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"unknown --device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but no CUDA GPU is visible; use --device cpu or auto")


def _first(*values):
    return next(v for v in values if v is not None)


def build_ppo(cfg: TrainConfig, env: VecEnv) -> PPO:
    """A PPO agent for the resolved ``cfg`` on ``env``, hyperparameters from ``cfg.preset``."""
    preset = load_preset(cfg.preset)
    policy, policy_kwargs = cfg.policy_and_kwargs(preset)
    return PPO(policy, env, seed=cfg.seed, device=cfg.device, verbose=cfg.verbose, policy_kwargs=policy_kwargs,
               **preset["ppo"])


def new_run_dir(logdir: str | Path, env_id: str, method: str, seed: int) -> Path:
    """``logdir/env_id/method_sSEED``, with ``_2``, ``_3``... appended when that run exists already."""
    base = Path(logdir) / env_id / f"{method}_s{seed}"
    run, k = base, 1
    while run.exists():
        k += 1
        run = base.with_name(f"{base.name}_{k}")
    run.mkdir(parents=True)
    return run


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def train(config: TrainConfig) -> dict[str, Any]:
    """Train one PPO run: TensorBoard + CSV logs, model and VecNormalize statistics in the run folder.

    :return: summary with ``method``, ``seed``, ``timesteps``, ``mean_return`` (over the last <= 100 episodes),
        ``episodes``, ``steps_per_s``, ``wall_s``, ``run_dir``, ``model`` (also written to summary.json)
    """
    cfg = config.resolved()
    preset = load_preset(cfg.preset)
    torch.set_num_threads(cfg.torch_threads)
    env = make_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed, vec=cfg.vec, normalize=preset.get("normalize", False))
    try:
        model = build_ppo(cfg, env)  # before the run folder: a policy that refuses its settings leaves nothing
        run_dir = new_run_dir(cfg.logdir, cfg.env, cfg.method, cfg.seed)
        write_json_atomic(run_dir / "config.json", {**dataclasses.asdict(cfg), "method": cfg.method})
        model.set_logger(configure(str(run_dir), ["stdout", "csv", "tensorboard"] if cfg.verbose else
                                   ["csv", "tensorboard"]))
        callbacks = [SyreLoggerCallback()] if isinstance(model.policy, SyreActorCriticPolicy) else []
        start = time.perf_counter()
        model.learn(cfg.timesteps, callback=callbacks, progress_bar=cfg.progress)
        wall = time.perf_counter() - start
        model.logger.dump(model.num_timesteps)  # SB3 dumps train/* one iteration late: flush the last ones
        model_path = Path(cfg.save) if cfg.save else run_dir / "model.zip"
        model_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = model_path.with_name(model_path.stem + ".tmp.zip")
        model.save(tmp)
        os.replace(tmp, model_path)
        save_normalization(env, model_path.parent)
    finally:
        env.close()
    returns = [ep["r"] for ep in model.ep_info_buffer]
    summary = {
        "method": cfg.method, "seed": cfg.seed, "env": cfg.env, "timesteps": model.num_timesteps,
        "mean_return": float(np.mean(returns)) if returns else None, "episodes": len(returns),
        "steps_per_s": model.num_timesteps / wall, "wall_s": wall, "run_dir": str(run_dir),
        "model": str(model_path),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return summary
