"""Demo: a short vanilla PPO and its syre twin on AntBulletEnv-v0, side by side in TensorBoard.

python scripts/demo.py            # what `make demo` runs (about 3-4 minutes on 2 cores)
"""

from dataclasses import dataclass, field

from syre_rl.agents import TrainConfig, train
from syre_rl.agents.config import parse_dataclass


@dataclass
class DemoConfig:
    timesteps: int = field(default=106_496, metadata={"help": "env steps per run (13 rollouts of the ant-zoo preset)"})
    seed: int = field(default=0, metadata={"help": "seed shared by both runs"})
    preset: str = field(default="ant-zoo", metadata={"help": "hyperparameter preset"})
    logdir: str = field(default="runs/demo", metadata={"help": "TensorBoard root"})
    progress: bool = field(default=True, metadata={"help": "show progress bars"})


def main(argv: list[str] | None = None) -> list[dict]:
    demo = parse_dataclass(DemoConfig, __doc__, argv)
    summaries = []
    for syre in (False, True):
        print(f"training {'syre' if syre else 'vanilla'} PPO for {demo.timesteps} steps ...", flush=True)
        summaries.append(
            train(
                TrainConfig(
                    preset=demo.preset,
                    timesteps=demo.timesteps,
                    seed=demo.seed,
                    logdir=demo.logdir,
                    syre=syre,
                    progress=demo.progress,
                )
            )
        )
    print(f"\n{'method':<8} {'seed':>4} {'mean return (last episodes)':>28} {'episodes':>8} {'steps/s':>8}")
    for s in summaries:
        ret = "n/a" if s["mean_return"] is None else f"{s['mean_return']:.1f}"
        print(f"{s['method']:<8} {s['seed']:>4} {ret:>28} {s['episodes']:>8} {s['steps_per_s']:>8.0f}")
    print(f"\nLook at both runs overlaid:  .venv/bin/tensorboard --logdir {demo.logdir} --host 127.0.0.1")
    return summaries


if __name__ == "__main__":
    main()
