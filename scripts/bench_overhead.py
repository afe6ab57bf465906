"""Benchmark: what syre costs PPO. Times `train()` on one shared rollout and single-observation `predict()` for
SyreActorCriticPolicy against MlpPolicy (same [256, 256] nets, same seed), alternating the two in one run.

    python scripts/bench_overhead.py            # targets: update ratio <= 1.03, predict ratio <= 1.01
"""

import statistics
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger

from syre_rl import SyreActorCriticPolicy
from syre_rl.agents.config import parse_dataclass
from syre_rl.envs import make_env
from syre_rl.settings import Settings

BLOCK = 200  # predict() calls timed together


@dataclass(frozen=True)
class BenchConfig(Settings):
    owner = "bench_overhead"
    env: str = field(default="AntBulletEnv-v0", metadata={"help": "gymnasium env id"})
    n_steps: int = field(default=2048, metadata={"help": "rollout length (one env)"})
    batch_size: int = field(default=64, metadata={"help": "PPO minibatch size"})
    n_epochs: int = field(default=1, metadata={"help": "PPO epochs per train() (1: short calls, many pairs)"})
    rounds: int = field(default=200, metadata={"help": "train() calls per policy, alternating"})
    predicts: int = field(default=4000, metadata={
        "help": f"predict() calls per policy, in alternating blocks of {BLOCK} (at least one block)"})
    torch_threads: int = field(default=2, metadata={"help": "torch CPU threads"})
    device: str = field(default="cpu", metadata={"help": "torch device"})
    seed: int = field(default=0, metadata={"help": "seed of both models"})

    def check(self) -> None:
        if self.rounds < 1 or self.predicts < BLOCK:
            raise ValueError(f"--rounds must be >= 1 and --predicts >= {BLOCK}, got {self.rounds} and {self.predicts}")


def build(policy, cfg: BenchConfig, env) -> PPO:
    kwargs = dict(net_arch=dict(pi=[256, 256], vf=[256, 256]), activation_fn=torch.nn.ReLU)
    if policy is SyreActorCriticPolicy:
        kwargs.update(syre_gamma=1e-3)  # the default anchor scale; the cost does not depend on it
    model = PPO(policy, env, n_steps=cfg.n_steps, batch_size=cfg.batch_size, n_epochs=cfg.n_epochs,
                seed=cfg.seed, device=cfg.device, policy_kwargs=kwargs)
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def main(argv: list[str] | None = None) -> dict:
    cfg = parse_dataclass(BenchConfig, __doc__, argv)
    torch.set_num_threads(cfg.torch_threads)
    env = make_env(cfg.env, seed=cfg.seed)
    models = {"mlp": build("MlpPolicy", cfg, env), "syre": build(SyreActorCriticPolicy, cfg, env)}
    # One rollout, collected once and shared: both policies train on exactly the same data.
    collector = models["mlp"]
    _, callback = collector._setup_learn(cfg.n_steps)
    collector.collect_rollouts(env, callback, collector.rollout_buffer, cfg.n_steps)
    models["syre"].rollout_buffer = collector.rollout_buffer

    train_s = {name: [] for name in models}
    for r in range(cfg.rounds + 1):  # round 0 warms up and is dropped
        for name in (list(models) if r % 2 else list(models)[::-1]):
            start = time.perf_counter()
            models[name].train()
            if r:
                train_s[name].append(time.perf_counter() - start)

    obs = env.reset()
    block = BLOCK
    predict_s = {name: [] for name in models}
    for b in range(cfg.predicts // block + 1):
        for name in (list(models) if b % 2 else list(models)[::-1]):
            start = time.perf_counter()
            for _ in range(block):
                models[name].predict(obs, deterministic=False)
            if b:
                predict_s[name].append((time.perf_counter() - start) / block)
    env.close()

    # Each round times both policies back to back: the median of the per-round ratios cancels slow drift of
    # the machine's speed that would bias a ratio of two separate medians.
    ratios = {k: statistics.median(a / b for a, b in zip(d["syre"], d["mlp"]))
              for k, d in (("train", train_s), ("predict", predict_s))}
    med = {k: {name: statistics.median(v) for name, v in d.items()} for k, d in
           (("train", train_s), ("predict", predict_s))}
    result = {
        "update_ratio": ratios["train"], "predict_ratio": ratios["predict"],
        "train_s": med["train"], "predict_ms": {k: v * 1e3 for k, v in med["predict"].items()},
    }
    updates = cfg.n_epochs * (cfg.n_steps // cfg.batch_size)
    print(f"{cfg.env}, [256, 256] ReLU actor and critic, rollout {cfg.n_steps}, batch {cfg.batch_size}, "
          f"{cfg.n_epochs} epochs ({updates} updates per train()), {cfg.torch_threads} torch threads, "
          f"{cfg.device}; {cfg.rounds} alternating rounds, ratio = median of per-round ratios")
    print(f"train():   MlpPolicy {med['train']['mlp']:.3f} s   syre {med['train']['syre']:.3f} s   "
          f"ratio {result['update_ratio']:.3f}  (target <= 1.03)")
    print(f"predict(): MlpPolicy {result['predict_ms']['mlp']:.4f} ms  syre {result['predict_ms']['syre']:.4f} ms"
          f"  ratio {result['predict_ratio']:.3f}  (target <= 1.01)")
    spread = np.percentile([a / b for a, b in zip(train_s["syre"], train_s["mlp"])], [10, 90])
    print(f"noise: per-round train() ratio, 10th-90th percentile = {spread[0]:.3f} .. {spread[1]:.3f}")
    return result


if __name__ == "__main__":
    main()
