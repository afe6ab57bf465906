"""Benchmark: what syre costs PPO and SAC. For each algorithm, times `train()` on data collected once and shared
(PPO: one rollout; SAC: one filled replay buffer) and single-observation `predict()`, syre's policy against SB3's
own (same networks, same seed), alternating the two in one run; a ratio is the median of per-round ratios.

    python scripts/bench_overhead.py            # targets: train() ratio <= 1.03 (PPO and SAC), predict <= 1.01
    python scripts/bench_overhead.py --algos sac --rounds 50
"""

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger

from syre_rl import SyreActorCriticPolicy, SyreSACPolicy
from syre_rl.agents.config import parse_assignments, parse_dataclass
from syre_rl.envs import make_env
from syre_rl.settings import Settings

BLOCK = 200  # predict() calls timed together


@dataclass(frozen=True)
class BenchConfig(Settings):
    owner = "bench_overhead"
    algos: str = field(default="ppo,sac", metadata={"help": "algorithms to time, comma-separated from ppo,sac"})
    env: str = field(default="AntBulletEnv-v0", metadata={"help": "gymnasium env id"})
    n_steps: int = field(default=2048, metadata={"help": "PPO rollout length (one env); SAC replay buffer size"})
    batch_size: int = field(default=64, metadata={"help": "PPO minibatch size (SAC: rl-zoo3's 256)"})
    n_epochs: int = field(default=1, metadata={"help": "PPO epochs per train() (1: short calls, many pairs)"})
    gradient_steps: int = field(default=8, metadata={"help": "SAC gradient steps per train() (rl-zoo3's 8)"})
    rounds: int = field(default=200, metadata={"help": "train() calls per policy, alternating"})
    predicts: int = field(
        default=4000,
        metadata={"help": f"predict() calls per policy, in alternating blocks of {BLOCK} (at least one block)"},
    )
    torch_threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    device: str = field(default="cpu", metadata={"help": "torch device"})
    seed: int = field(default=0, metadata={"help": "seed of both models"})
    method_args: dict = field(
        default_factory=dict,
        metadata={
            "help": "syre settings (default gamma 1e-3, scale 1.0: the cost does not depend on them)",
            "parse": parse_assignments,
        },
    )

    def check(self) -> None:
        if self.rounds < 1 or self.predicts < BLOCK:
            raise ValueError(f"--rounds must be >= 1 and --predicts >= {BLOCK}, got {self.rounds} and {self.predicts}")
        unknown = set(self.algos.split(",")) - {"ppo", "sac"}
        if unknown:
            raise ValueError(f"--algos takes ppo and sac, got {sorted(unknown)}")


def models_ppo(cfg: BenchConfig, env) -> dict[str, BaseAlgorithm]:
    """SB3's MlpPolicy and SyreActorCriticPolicy ([256, 256] ReLU actor and critic) sharing one rollout."""

    def build(policy, **extra):
        return PPO(
            policy,
            env,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch_size,
            n_epochs=cfg.n_epochs,
            seed=cfg.seed,
            device=cfg.device,
            policy_kwargs=dict(net_arch=dict(pi=[256, 256], vf=[256, 256]), activation_fn=torch.nn.ReLU, **extra),
        )

    models = {"sb3": build("MlpPolicy"), "syre": build(SyreActorCriticPolicy, **syre_kwargs(cfg))}
    _, callback = models["sb3"]._setup_learn(cfg.n_steps)
    models["sb3"].collect_rollouts(env, callback, models["sb3"].rollout_buffer, cfg.n_steps)
    models["syre"].rollout_buffer = models["sb3"].rollout_buffer
    return models


def models_sac(cfg: BenchConfig, env) -> dict[str, BaseAlgorithm]:
    """SB3's MlpPolicy and SyreSACPolicy (rl-zoo3's Ant net [400, 300]) sharing one replay buffer of random steps."""

    def build(policy, **extra):
        return SAC(
            policy,
            env,
            buffer_size=cfg.n_steps,
            batch_size=256,
            learning_starts=cfg.n_steps,
            gradient_steps=cfg.gradient_steps,
            seed=cfg.seed,
            device=cfg.device,
            policy_kwargs=dict(net_arch=[400, 300], **extra),
        )

    models = {"sb3": build("MlpPolicy"), "syre": build(SyreSACPolicy, **syre_kwargs(cfg))}
    collector = models["sb3"]
    _, callback = collector._setup_learn(cfg.n_steps)
    collector.collect_rollouts(
        env, callback, collector.train_freq, collector.replay_buffer, learning_starts=cfg.n_steps
    )  # random actions until the buffer is full
    while not collector.replay_buffer.full:
        collector.collect_rollouts(
            env, callback, collector.train_freq, collector.replay_buffer, learning_starts=cfg.n_steps
        )
    models["syre"].replay_buffer = collector.replay_buffer
    return models


def syre_kwargs(cfg: BenchConfig) -> dict:
    return {f"syre_{k}": v for k, v in {"gamma": 1e-3, **cfg.method_args}.items()}


def train_call(model: BaseAlgorithm, cfg: BenchConfig) -> Callable[[], None]:
    if isinstance(model, SAC):
        return lambda: model.train(gradient_steps=cfg.gradient_steps, batch_size=256)
    return model.train


def alternate(calls: dict[str, Callable[[], None]], rounds: int, repeat: int = 1) -> dict[str, list[float]]:
    """Seconds per call of each, ``rounds`` rounds of ``repeat`` calls, order alternating; round 0 dropped."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds + 1):
        for name in list(calls) if r % 2 else list(calls)[::-1]:
            start = time.perf_counter()
            for _ in range(repeat):
                calls[name]()
            if r:
                times[name].append((time.perf_counter() - start) / repeat)
    return times


def measure(name: str, models: dict[str, BaseAlgorithm], cfg: BenchConfig, env) -> dict:
    for model in models.values():
        model.set_logger(Logger(folder=None, output_formats=[]))
    train_s = alternate({k: train_call(m, cfg) for k, m in models.items()}, cfg.rounds)
    obs = env.reset()
    predict_s = alternate(
        {k: (lambda m=m: m.predict(obs, deterministic=False)) for k, m in models.items()}, cfg.predicts // BLOCK, BLOCK
    )
    # Each round times both policies back to back: the median of the per-round ratios cancels slow drift of
    # the machine's speed that would bias a ratio of two separate medians.
    ratio = {
        k: statistics.median(a / b for a, b in zip(d["syre"], d["sb3"]))
        for k, d in (("train", train_s), ("predict", predict_s))
    }
    med = {k: {m: statistics.median(v) for m, v in d.items()} for k, d in (("train", train_s), ("predict", predict_s))}
    spread = np.percentile([a / b for a, b in zip(train_s["syre"], train_s["sb3"])], [10, 90])
    print(
        f"{name}: train() SB3 {med['train']['sb3']:.4f} s  syre {med['train']['syre']:.4f} s  ratio "
        f"{ratio['train']:.3f} (target <= 1.03; per-round 10th-90th percentile {spread[0]:.3f} .. {spread[1]:.3f})"
    )
    print(
        f"{name}: predict() SB3 {med['predict']['sb3'] * 1e3:.4f} ms  syre {med['predict']['syre'] * 1e3:.4f} ms  "
        f"ratio {ratio['predict']:.3f} (target <= 1.01)"
    )
    return {
        "train_ratio": ratio["train"],
        "predict_ratio": ratio["predict"],
        "train_s": med["train"],
        "predict_ms": {k: v * 1e3 for k, v in med["predict"].items()},
    }


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_dataclass(BenchConfig, __doc__, argv)
    torch.set_num_threads(cfg.torch_threads)
    env = make_env(cfg.env, seed=cfg.seed)
    print(
        f"{cfg.env}, {cfg.torch_threads} torch threads, {cfg.device}, {cfg.rounds} alternating rounds; PPO: rollout "
        f"{cfg.n_steps}, batch {cfg.batch_size}, {cfg.n_epochs} epoch(s), [256, 256]; SAC: buffer {cfg.n_steps}, "
        f"batch 256, {cfg.gradient_steps} gradient steps per train(), [400, 300]"
    )
    builders = {"ppo": models_ppo, "sac": models_sac}
    results = {name: measure(name.upper(), builders[name](cfg, env), cfg, env) for name in cfg.algos.split(",")}
    env.close()
    return results


if __name__ == "__main__":
    main()
