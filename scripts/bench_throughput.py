"""Benchmark: how close RL training gets to the raw environment rate, and where its time goes. For each preset,
in one run: raw env steps/s (the preset's envs, random actions), then training steps/s with the time split into
rollout, update and plasticity metrics (at the default frequency), for each torch thread count asked for.

    python scripts/bench_throughput.py                          # dohare and ant-zoo, 1 and 2 torch threads
    python scripts/bench_throughput.py --presets dohare --threads 1 --rollouts 4
Goals (issue 11): dohare training >= 60% of the raw rate; metrics <= 5% of a run.
"""

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback

from syre_rl.agents.config import parse_dataclass
from syre_rl.agents.rl import TrainConfig, build_model
from syre_rl.agents.rl.training import run_env
from syre_rl.callbacks import PlasticityCallback
from syre_rl.envs import make_env
from syre_rl.settings import Settings


@dataclass(frozen=True)
class BenchConfig(Settings):
    owner = "bench_throughput"
    presets: str = field(default="dohare,ant-zoo", metadata={"help": "presets to time, comma-separated"})
    threads: str = field(default="1,2", metadata={"help": "torch thread counts to time, comma-separated"})
    rollouts: int = field(default=3, metadata={"help": "timed training rollouts per preset and thread count"})
    raw_steps: int = field(default=8192, metadata={"help": "env steps of the raw-rate measurement"})
    seed: int = field(default=0, metadata={"help": "seed"})
    validate_args: bool = field(
        default=True,
        metadata={
            "help": "torch.distributions' argument checks, on as in SB3 (--no-validate-args times the run without them)"
        },
    )

    def check(self) -> None:
        if self.rollouts < 1 or self.raw_steps < 1:
            raise ValueError(f"--rollouts and --raw-steps must be >= 1, got {self.rollouts} and {self.raw_steps}")
        if not all(t.strip().isdigit() and int(t) >= 1 for t in self.threads.split(",")):
            raise ValueError(f"--threads must be positive integers like 1,2, got {self.threads!r}")


class Clock(BaseCallback):
    """Times the phases of learn(): ``mark`` at a rollout's start and end (placed first), ``stop`` after the
    metrics (placed after the PlasticityCallback)."""

    def __init__(self, times: dict[str, float], role: str):
        super().__init__()
        self.times, self.role = times, role

    def _on_rollout_start(self) -> None:
        if self.role == "mark":
            now = time.perf_counter()
            if self.times.get("_updated") is not None:
                self.times["update"] += now - self.times["_updated"]
            self.times["_start"] = now

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        if self.role == "mark":
            self.times["rollout"] += now - self.times["_start"]
            self.times["_metrics"] = now
        else:
            self.times["metrics"] += now - self.times["_metrics"]
            self.times["_updated"] = now

    def _on_training_end(self) -> None:
        if self.role == "mark" and self.times.get("_updated") is not None:
            self.times["update"] += time.perf_counter() - self.times["_updated"]

    def _on_step(self) -> bool:
        return True


def raw_rate(cfg: TrainConfig, steps: int, seed: int) -> float:
    env = make_env(cfg.env, n_envs=cfg.n_envs, seed=seed, vec=cfg.vec)
    env.reset()
    actions = np.stack([env.action_space.sample() for _ in range(cfg.n_envs)])
    start = time.perf_counter()
    for _ in range(steps // cfg.n_envs):
        env.step(actions)
    rate = (steps // cfg.n_envs) * cfg.n_envs / (time.perf_counter() - start)
    env.close()
    return rate


def train_rate(cfg: TrainConfig, rollouts: int) -> dict[str, float]:
    torch.set_num_threads(cfg.threads)
    env = run_env(cfg)
    model = build_model(cfg, env)
    steps = cfg.hyperparameters.rollout(cfg.n_envs) * rollouts
    times = {"rollout": 0.0, "update": 0.0, "metrics": 0.0}
    callbacks = [Clock(times, "mark"), PlasticityCallback(every=cfg.metrics_every), Clock(times, "stop")]
    start = time.perf_counter()
    model.learn(steps, callback=callbacks)
    wall = time.perf_counter() - start
    env.close()
    return {"steps_per_s": steps / wall, "wall": wall, **{k: v for k, v in times.items() if not k.startswith("_")}}


def main(argv: list[str] | None = None) -> dict:
    bench = parse_dataclass(BenchConfig, __doc__, argv)
    torch.distributions.Distribution.set_default_validate_args(bench.validate_args)
    results = {}
    print(
        f"{'preset':9} {'threads':>7} {'raw steps/s':>11} {'train steps/s':>13} {'ratio':>6} {'rollout':>8} "
        f"{'update':>7} {'metrics':>8}"
    )
    for preset in bench.presets.split(","):
        for threads in map(int, bench.threads.split(",")):
            cfg = TrainConfig(preset=preset, seed=bench.seed, threads=threads, device="cpu", progress=False).resolved()
            raw = raw_rate(cfg, bench.raw_steps, bench.seed)
            run = train_rate(cfg, bench.rollouts)
            split = {k: run[k] / run["wall"] for k in ("rollout", "update", "metrics")}
            results[(preset, threads)] = {"raw_steps_per_s": raw, **run}
            print(
                f"{preset:9} {threads:>7} {raw:>11.0f} {run['steps_per_s']:>13.0f} {run['steps_per_s'] / raw:>6.2f} "
                f"{split['rollout']:>8.0%} {split['update']:>7.0%} {split['metrics']:>8.1%}",
                flush=True,
            )
    return results


if __name__ == "__main__":
    main()
