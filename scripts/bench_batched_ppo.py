"""Benchmark: K seeds of PPO trained as one batched learner (agents/rl/batched.py, ``scripts/train.py --seeds``)
against the same K seeds trained one after another by SB3's PPO, side by side in one run, for each K asked for.
Each side trains every seed for the same number of rollouts of the preset (default ``cartpole-tasks``: 8 envs x
32 steps, 20 epochs of one minibatch of 256), without logs, metrics or checkpoints; each side's models are built
before its clock starts. Each measurement runs in a fresh process, the sides alternating, so that memory is each
side's own (peak resident memory above the process's after its imports) and a busy spell hits both.

    python scripts/bench_batched_ppo.py                       # K = 1, 4, 16, 32 on CPU
    python scripts/bench_batched_ppo.py --ks 64 --device cuda # a GPU: K = 64 against one seed

It prints, per K: steps/s of each side (env steps of all seeds per second), the throughput ratio, memory per seed,
the batch's wall time over one SB3 seed's (for the same steps per seed), and where the batched side's time goes
(stepping the envs; the rest of the rollout: forward passes and sampling; the update). Goals (issue 20): K = 16 at
>= 8x the throughput of 16 sequential SB3 runs on 2 CPU cores; on a GPU, K = 64 in <= 2x the wall time of one seed.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import time
from dataclasses import dataclass, field

from syre_rl.agents.config import parse_dataclass, parse_seeds
from syre_rl.agents.kinds import check_device
from syre_rl.methods import METHODS
from syre_rl.settings import Settings


@dataclass(frozen=True)
class BenchConfig(Settings):
    owner = "bench_batched_ppo"
    ks: str = field(default="1,4,16,32", metadata={"help": "numbers of seeds to time, comma-separated"})
    rollouts: int = field(default=20, metadata={"help": "rollouts each seed trains per measurement"})
    repeats: int = field(default=2, metadata={"help": "measurements per side; the fastest counts (noisy machines)"})
    preset: str = field(default="cartpole-tasks", metadata={"help": "PPO preset (name or YAML path)"})
    method: str = field(default="vanilla", metadata={"help": "plasticity method", "choices": list(METHODS)})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:N"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads of each side (the harness's default: 1)"})

    def check(self) -> None:
        check_device(self.device)
        parse_seeds(self.ks)
        for name in ("rollouts", "repeats", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")


def _rss_mib() -> float:
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def _sequential(cfg: BenchConfig, k: int, out) -> None:
    """K SB3 runs one after another (each its single run's model and envs, as scripts/train.py --seed makes)."""
    import torch

    from syre_rl.agents.rl import TrainConfig
    from syre_rl.agents.rl.training import build_model, run_env

    torch.set_num_threads(cfg.threads)
    base = _rss_mib()
    seconds = 0.0
    for seed in range(k):
        run = TrainConfig(preset=cfg.preset, seed=seed, method=cfg.method, device=cfg.device).resolved()
        env = run_env(run)
        model = build_model(run, env)
        steps = cfg.rollouts * run.hyperparameters.rollout(run.n_envs)
        start = time.perf_counter()
        model.learn(steps)
        seconds += time.perf_counter() - start
        env.close()
    out.put({"seconds": seconds, "steps": k * steps, "memory_mib": _rss_mib() - base})


def _batched(cfg: BenchConfig, k: int, out) -> None:
    """The K seeds as one batched learner (as scripts/train.py --seeds makes it)."""
    import torch

    from syre_rl.agents.rl import TrainConfig
    from syre_rl.agents.rl.batched import keep_freed_memory
    from syre_rl.agents.rl.seeds import make_batch

    torch.set_num_threads(cfg.threads)
    keep_freed_memory()
    base = _rss_mib()
    run = TrainConfig(preset=cfg.preset, seeds=list(range(k)), method=cfg.method, device=cfg.device).resolved()
    batch, envs, _ = make_batch([run.member(seed) for seed in range(k)])
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    batch.reset()
    for _ in range(cfg.rollouts):
        batch.collect_rollout()
        batch.train(batch.progress_remaining(run.timesteps))
    if cfg.device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    envs.close()
    timings = dict(batch.timings)
    out.put(
        {
            "seconds": seconds,
            "steps": batch.num_timesteps * k,
            "memory_mib": (_rss_mib() - base) / k,
            "env_s": timings.get("env", 0.0),
            "forward_s": timings.get("rollout", 0.0) - timings.get("env", 0.0),
            "update_s": timings.get("update", 0.0),
        }
    )


def measure(side, cfg: BenchConfig, k: int) -> dict:
    """One measurement of one side, in a fresh process."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=side, args=(cfg, k, out))
    process.start()
    result = out.get()
    process.join()
    return result


def main(argv: list[str] | None = None) -> list[dict]:
    cfg = parse_dataclass(BenchConfig, __doc__, argv, "bench_batched_ppo.py")
    print(
        f"preset {cfg.preset}, method {cfg.method}, device {cfg.device}, {cfg.threads} torch thread(s) per side, "
        f"{cfg.rollouts} rollouts per seed, fastest of {cfg.repeats} alternating measurements per side"
    )
    print(
        f"{'K':>3} | {'sequential steps/s':>18} {'batched steps/s':>15} {'ratio':>7} | {'MiB/seed seq':>12} "
        f"{'MiB/seed batch':>14} | {'wall / 1 seed':>13} | batched time: env / forward / update"
    )
    rows = []
    for k in parse_seeds(cfg.ks):
        sequential, batched = [], []
        for _ in range(cfg.repeats):
            sequential.append(measure(_sequential, cfg, k))
            batched.append(measure(_batched, cfg, k))
        seq = min(sequential, key=lambda r: r["seconds"])
        bat = min(batched, key=lambda r: r["seconds"])
        row = {
            "k": k,
            "sequential_steps_per_s": seq["steps"] / seq["seconds"],
            "batched_steps_per_s": bat["steps"] / bat["seconds"],
            "sequential_mib_per_seed": seq["memory_mib"],
            "batched_mib_per_seed": bat["memory_mib"],
            **{key: bat[key] / bat["seconds"] for key in ("env_s", "forward_s", "update_s")},
        }
        row["throughput_ratio"] = row["batched_steps_per_s"] / row["sequential_steps_per_s"]
        row["wall_over_one_seed"] = k / row["throughput_ratio"]  # the batch's wall time / one SB3 seed's
        rows.append(row)
        print(
            f"{k:>3} | {row['sequential_steps_per_s']:>18.0f} {row['batched_steps_per_s']:>15.0f} "
            f"{row['throughput_ratio']:>6.2f}x | {row['sequential_mib_per_seed']:>12.1f} "
            f"{row['batched_mib_per_seed']:>14.2f} | {row['wall_over_one_seed']:>12.2f}x | {row['env_s']:.0%} / "
            f"{row['forward_s']:.0%} / "
            f"{row['update_s']:.0%}",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
