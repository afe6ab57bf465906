"""Benchmark: K seeds trained as one batched network (agents/supervised.py) against the same K seeds trained one after
another, side by side in one run, for each network, minibatch size and K asked for. Each side trains every seed
on one task of EXAMPLES random 784-pixel examples (a permuted task, the learner of scripts/continual.py with
Adam and the chosen method); each side's networks are made before its clock starts.

    python scripts/bench_seeds.py                                  # CPU: paper FCN and a small net, K = 8
    python scripts/bench_seeds.py --device cuda --ks 1,8,32        # GPU: K = 32 against one seed
Goals (issue 11): K=8 at >= 3x the throughput of 8 sequential runs on 2 CPU cores; on a GPU, K=32 in <= 2x the
wall time of one seed.
"""

import functools
import time
from dataclasses import dataclass, field

import torch

from syre_rl.agents.config import parse_dataclass, parse_seeds
from syre_rl.agents.continual import hidden_widths
from syre_rl.agents.kinds import check_device
from syre_rl.agents.supervised import SupervisedLearner, fcn
from syre_rl.envs.permuted import PermutedTasks
from syre_rl.methods import METHODS
from syre_rl.settings import Settings


@dataclass(frozen=True)
class BenchConfig(Settings):
    owner = "bench_seeds"
    nets: str = field(
        default="300,300,300,300;100,100",
        metadata={"help": "hidden widths of each network to time, networks separated by ';'"},
    )
    batch_sizes: str = field(default="64,16", metadata={"help": "minibatch sizes to time, comma-separated"})
    ks: str = field(default="8", metadata={"help": "numbers of seeds to time, comma-separated (e.g. 1,8,32)"})
    examples: int = field(default=4000, metadata={"help": "training examples per seed and measurement"})
    repeats: int = field(default=3, metadata={"help": "measurements per side; the fastest counts (noisy machines)"})
    method: str = field(default="syre", metadata={"help": "plasticity method", "choices": list(METHODS)})
    fused: str = field(
        default="false,true",
        metadata={"help": "optimizer steps to time: false (torch's default Adam step), true (fused Adam), or both"},
    )
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:N"})
    threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's)"})

    def check(self) -> None:
        check_device(self.device)
        for net in self.nets.split(";"):
            hidden_widths(net)
        for name in ("examples", "repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1, got {getattr(self, name)}")


def learner(seeds: list[int], hidden: tuple[int, ...], batch_size: int, method: str, data, device: str, fused: bool):
    """The learner of ``seeds`` (one network, or one batched network of several) and their tasks, as
    scripts/continual.py makes them."""
    tasks, nets = [], []
    for seed in seeds:
        tasks.append(PermutedTasks(*data, n_tasks=2, seed=seed))
        torch.manual_seed(seed)
        nets.append(fcn(784, hidden, 10).to(device))
    own = "seed" in METHODS[method].Settings.__dataclass_fields__
    settings = [METHODS[method].Settings.from_dict({"seed": seed} if own else {}) for seed in seeds]
    return SupervisedLearner(nets, method, settings, batch_size=batch_size, seeds=seeds, fused=fused), tasks


def parse_flags(text: str) -> list[bool]:
    flags = {"false": False, "true": True}
    if any(part not in flags for part in text.split(",")):
        raise SystemExit(f"bench_seeds.py: error: --fused takes false, true or false,true, got {text!r}")
    return [flags[part] for part in text.split(",")]


def timed(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> list[dict]:
    cfg = parse_dataclass(BenchConfig, __doc__, argv, "bench_seeds.py")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    gen = torch.Generator().manual_seed(0)
    data = (
        torch.rand(cfg.examples, 784, generator=gen).to(cfg.device),
        torch.randint(0, 10, (cfg.examples,), generator=gen).to(cfg.device),
        torch.rand(100, 784, generator=gen).to(cfg.device),
        torch.randint(0, 10, (100,), generator=gen).to(cfg.device),
    )
    print(
        f"device {cfg.device}, {torch.get_num_threads()} torch threads, method {cfg.method}, {cfg.examples} "
        f"examples per seed, fastest of {cfg.repeats} measurements per side"
    )
    print(
        f"{'network':>18} {'batch':>5} {'Adam':>7} {'K':>3} | {'sequential s':>12} {'batched s':>10} | "
        f"{'throughput ratio':>16} {'batched / 1 seed':>16}"
    )
    rows = []
    settings = [
        (net, batch_size, fused, k)
        for net in cfg.nets.split(";")
        for batch_size in parse_seeds(cfg.batch_sizes)
        for fused in parse_flags(cfg.fused)
        for k in parse_seeds(cfg.ks)
    ]
    for net, batch_size, fused, k in settings:
        make = functools.partial(
            learner,
            hidden=hidden_widths(net),
            batch_size=batch_size,
            method=cfg.method,
            data=data,
            device=cfg.device,
            fused=fused,
        )
        for seeds in ([0], [1, 2]):  # warm-up, both paths
            warm, tasks = make(seeds)
            warm.train_task(tasks, 1)
        sequential, stacked = [], []
        for _ in range(cfg.repeats):  # alternating sides, so a busy spell hits both
            singles = [make([seed]) for seed in range(k)]
            sequential.append(sum(timed(lambda lr=lr, t=t: lr.train_task(t, 1), cfg.device) for lr, t in singles))
            batch, tasks = make(list(range(k)))
            stacked.append(timed(lambda b=batch, t=tasks: b.train_task(t, 1), cfg.device))
        row = {
            "network": net,
            "batch_size": batch_size,
            "fused": fused,
            "k": k,
            "sequential_s": min(sequential),
            "batched_s": min(stacked),
            "throughput_ratio": min(sequential) / min(stacked),
            "batched_over_one_seed": min(stacked) / (min(sequential) / k),
        }
        rows.append(row)
        print(
            f"{net:>18} {batch_size:>5} {'fused' if fused else 'default':>7} {k:>3} | {row['sequential_s']:>12.2f} "
            f"{row['batched_s']:>10.2f} | {row['throughput_ratio']:>15.2f}x {row['batched_over_one_seed']:>15.2f}x",
            flush=True,
        )
    return rows


if __name__ == "__main__":
    main()
