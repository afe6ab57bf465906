"""The settings of one RL run (:class:`TrainConfig`): the fields every run kind shares, the environments' own
settings (the slippery Ant's friction schedule, permuted-observation tasks), the algorithm, preset and syre
shorthands; :meth:`TrainConfig.resolved` fills in the preset's and the machine's defaults."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from syre_rl.agents.config import parse_seeds
from syre_rl.agents.kinds import RunConfig, check_seeds, check_writable, resolve_method
from syre_rl.agents.rl.presets import ALGORITHMS, Preset, load_preset
from syre_rl.agents.runs import read_json
from syre_rl.envs.slippery import FrictionOptions
from syre_rl.envs.tasks import ObservationTaskOptions
from syre_rl.envs.vec import auto_vec, check_env_id
from syre_rl.methods import METHODS
from syre_rl.policies import parse_targets
from syre_rl.settings import Settings
from syre_rl.syre import DEFAULT_SCALE

METRICS_STEPS = 2048  # off-policy algorithms: one "rollout" of --metrics-every counts this many env steps
ENV_OPTIONS = (FrictionOptions, ObservationTaskOptions)  # the environments' settings, flags of every RL run
SYRE_FLAGS = ("syre_gamma", "syre_scale", "syre_ar_eps", "syre_decoupled")
EXPLORING = ("dqn", "qrdqn")  # the algorithms with an exploration schedule (exploration_fraction, --explore-per-task)


@dataclass(frozen=True)
class TrainConfig(*ENV_OPTIONS, RunConfig):  # type: ignore[misc]
    """Settings of one RL run (``scripts/train.py --help`` shows them all), checked when made; :meth:`resolved`
    fills in the preset's and the machine's defaults and the method's typed settings."""

    owner = "train"
    kind = "rl"
    RESUMABLE = RunConfig.RESUMABLE + (  # logging, speed, length: not what the run learns
        "timesteps",
        "verbose",
        "vec",
        "save",
        "checkpoint_every",
        "metrics_every",
        "probe_size",
        "tau",
        "duplicate_threshold",
        "seeds",
    )
    # issue 12 (tasks); issue 20 (batched seeds); issue 21 (task_every was permute_every; offset tasks)
    NEWER_DEFAULTS = {
        **RunConfig.NEWER_DEFAULTS,
        "task_every": None,
        "first_task": None,
        "batched": False,
        "offset_scale": ObservationTaskOptions.offset_scale,
        "explore_per_task": False,
    }
    RENAMED = {"permute_every": "task_every"}
    SWEEP_SET = RunConfig.SWEEP_SET + (
        "hyperparameters",
        "save",
        "syre",
        "syre_targets",
        "weight_decay",
        "seeds",
        "batched",
        *SYRE_FLAGS,
    )

    seed: int = field(default=0, metadata={"help": "seed of networks, anchors and environments"})
    seeds: list[int] | None = field(
        default=None,
        metadata={
            "help": "PPO: train these seeds as one batched network (e.g. 0-15 or 0,3,5; agents/rl/batched.py), each "
            "in its own run folder as its single run (instead of --seed)",
            "parse": parse_seeds,
            "metavar": "SEEDS",
        },
    )
    batched: bool = field(
        default=False,
        metadata={"cli": False, "help": "trained with other seeds as one batched network (set in each seed's config)"},
    )
    method: str | None = field(
        default=None,
        metadata={
            "help": f"plasticity method: {', '.join(METHODS)} (default vanilla; --syre = --method syre)",
            "choices": list(METHODS),
            "metavar": "NAME",
        },
    )
    targets: str | None = field(
        default=None,
        metadata={
            "help": "networks under the method, comma-separated from actor,critic,features,lstm (default: "
            "actor,critic; dqn and qrdqn: critic)"
        },
    )
    device: str = field(default="auto", metadata={"help": "torch device: auto, cpu, cuda, cuda:N"})
    threads: int | None = field(
        default=None,
        metadata={
            "help": "torch CPU threads (default 1: on 2 cores a second thread gains 9-15%% when the machine is quiet "
            "and costs 1.5-2.8x when one core is busy; scripts/bench_throughput.py)",
            "aliases": ("--torch-threads",),
        },
    )
    logdir: str = field(default="runs", metadata={"help": "TensorBoard root; runs go to LOGDIR/ENV/LABEL_sSEED"})
    resume: bool = field(
        default=False,
        metadata={"help": "continue the latest run of this env, method and seed from its checkpoint up to --timesteps"},
    )
    probe_size: int = field(default=1000, metadata={"help": "recent observations in the metrics' probe batch"})
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
    n_envs: int | None = field(default=None, metadata={"help": "parallel envs (default: preset's)"})
    vec: Literal["auto", "dummy", "subproc"] = field(
        default="auto", metadata={"help": "env vectorisation; auto: subproc with >= 4 envs and >= 4 cores, else dummy"}
    )
    save: str | None = field(default=None, metadata={"help": "model path (default: RUN_DIR/model.zip)"})
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
    checkpoint_every: int = field(
        default=100_000,
        metadata={
            "help": "save RUN_DIR/checkpoint.ckpt (verified, the previous kept) every N env steps, between rollouts "
            "(0: never)"
        },
    )
    metrics_every: int = field(
        default=1,
        metadata={
            "help": f"log plasticity metrics every N rollouts (off-policy: N x {METRICS_STEPS} env steps; 0: never)"
        },
    )
    verbose: int = field(default=0, metadata={"help": "SB3 verbosity (1 prints the logger's table)"})
    hyperparameters: Preset | None = field(
        default=None, metadata={"cli": False, "help": "the preset's values, filled in by resolved()"}
    )

    @classmethod
    def upgraded(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """As :meth:`RunConfig.upgraded`; besides, a run made before ``task_shift`` existed had the permutations
        that may repeat (``permute-repeating``) if it had tasks, and its preset had no ``env_kwargs`` and
        ``reward_scale`` (their defaults)."""
        out = super().upgraded(saved)
        if "task_shift" not in saved:
            tasks = out.get("task_every") is not None or out.get("first_task") is not None
            out["task_shift"] = "permute-repeating" if tasks else ObservationTaskOptions.task_shift
        if isinstance(out.get("hyperparameters"), dict):
            out["hyperparameters"] = {**Preset.NEWER_DEFAULTS, **out["hyperparameters"]}
        return out

    def check(self) -> None:
        for name in ("timesteps", "n_envs"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {value}")
        for name in ("metrics_every", "checkpoint_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0 (0: never), got {getattr(self, name)}")
        super().check()  # the environments' settings, then the fields every run shares
        check_seeds(self.seeds, self.seed)
        if self.seeds is not None:
            if self.save is not None:
                raise ValueError("--save names one model; with --seeds each seed's model goes to its run folder")
            if self.friction_every is not None:
                raise ValueError(
                    "--seeds does not batch the slippery Ant's friction schedule; run its seeds one by one"
                )
        if self.save is not None:
            check_writable(Path(self.save).parent, "--save")

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
        for options in ENV_OPTIONS:
            options.check_env(self, env)
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
        if self.explore_per_task and preset.algo not in EXPLORING:
            raise ValueError(
                f"--explore-per-task restarts an exploration schedule, which {preset.algo} has not; it is for "
                f"{', '.join(EXPLORING)}"
            )
        if self.seeds is not None and preset.algo != "ppo":
            raise ValueError(f"--seeds trains PPO batched; {preset.algo} trains one seed at a time: give --seed")
        method, settings, targets = self._method_settings(preset)
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
            vec=auto_vec(n_envs) if self.vec == "auto" else self.vec,
            hyperparameters=preset,
            threads=self.threads or 1,
        )

    def _method_settings(self, preset: Preset) -> tuple[str, Settings, str]:
        """(method name, its complete typed settings, targets) from the flags, the preset and the defaults."""
        syre_flags = {k.removeprefix("syre_"): getattr(self, k) for k in SYRE_FLAGS if getattr(self, k) is not None}
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
        name, settings = resolve_method(name, {**self.method_args, **syre_flags}, self.seed, preset.method_settings)
        default = ALGORITHMS[preset.algo][1].DEFAULT_TARGETS
        targets = ",".join(parse_targets(self.targets or self.syre_targets or default))
        return name, settings, targets

    def make_env_kwargs(self) -> dict[str, Any]:
        """What the preset (``gym.make`` arguments, the reward scale) and the environments' settings add to
        :func:`~syre_rl.envs.vec.make_env`'s arguments (of a resolved config)."""
        preset = self.hyperparameters
        assert preset is not None, "make_env_kwargs of a resolved config"
        out: dict[str, Any] = {"env_kwargs": dict(preset.env_kwargs) or None, "reward_scale": preset.reward_scale}
        return out | {k: v for options in ENV_OPTIONS for k, v in options.make_env_kwargs(self, self.seed).items()}

    def env_callbacks(self) -> list[Any]:
        """The SB3 callbacks that apply the environments' settings (schedules)."""
        return [c for options in ENV_OPTIONS for c in options.callbacks(self, self.seed)]

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

    def group(self) -> str:
        return self.env

    def finished(self, run_dir: Path) -> bool:
        summary = run_dir / "summary.json"
        return summary.is_file() and read_json(summary).get("timesteps", -1) >= self.timesteps

    def member(self, seed: int) -> TrainConfig:
        """The resolved config of seed ``seed`` of a batch (``seeds``): its single run's, marked ``batched``, its
        method seeded by ``seed`` unless the method's seed was given."""
        return dataclasses.replace(
            self,
            seed=seed,
            seeds=None,
            batched=True,
            hyperparameters=None,
            method_settings=None,
            targets=None if self.method == "vanilla" else self.targets,  # (resolved() fills in the default)
        ).resolved()

    def batch_of_seeds(self, seeds: list[int]) -> TrainConfig | None:
        if self.algo != "ppo" or self.friction_every is not None or self.save is not None:
            return None
        return dataclasses.replace(self, seed=0, seeds=list(seeds))

    # what a batch's members may differ in (beside the method's per-member settings)
    MEMBER_FIELDS = ("seed", "seeds", "label", "batched", "resume", "method_args", "syre", "weight_decay", *SYRE_FLAGS)

    def batch_key(self) -> str | None:
        """As :meth:`RunConfig.batch_key`: every resolved value but the seed, the label and the method's
        per-member settings (the flags that give them, too); None where PPO's batch cannot take this run."""
        cfg = self.resolved()
        if cfg.batch_of_seeds([cfg.seed]) is None:
            return None
        assert cfg.method is not None and cfg.method_settings is not None  # resolved
        shared = {k: v for k, v in cfg.to_dict().items() if k not in self.MEMBER_FIELDS}
        per_member = ("seed", *METHODS[cfg.method].PER_MEMBER)
        shared["method_settings"] = {k: v for k, v in cfg.method_settings.to_dict().items() if k not in per_member}
        return json.dumps(shared, sort_keys=True, default=str)

    @classmethod
    def run_batch(cls, runs: Sequence[RunConfig], resume: bool) -> str:
        """As :meth:`RunConfig.run_batch`: any runs of one :meth:`batch_key` (a grid point's seeds, or a tuning
        grid's points and seeds) as one batched PPO (:func:`syre_rl.agents.rl.seeds.train_members`)."""
        from syre_rl.agents.rl.seeds import train_members

        members = [r.member(r.seed) for r in runs if isinstance(r, TrainConfig)]
        return f"{len(members)} runs batched: {_returns(train_members(members, resume))}"

    def execute(self) -> str:
        if self.seeds is not None:
            from syre_rl.agents.rl.seeds import train_seeds

            summaries = train_seeds(self)
            return f"{len(summaries)} seeds batched: {_returns(summaries)}"
        from syre_rl.agents.rl.training import train

        summary = train(self)
        return f"mean return {summary['mean_return']} at {summary['timesteps']} steps"


def _returns(summaries: Sequence[dict[str, Any]]) -> str:
    """A batch's runs in a sweep's line: each one's mean return, or where it stopped; and the steps trained."""
    said = [f"stopped at env step {s['timesteps']}" if "stopped" in s else f"{s['mean_return']}" for s in summaries]
    steps = max(s["timesteps"] for s in summaries)
    return f"mean returns {', '.join(said)} at {steps} steps"
