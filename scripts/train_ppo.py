"""Train PPO (vanilla, syre or the L2 baseline) on a PyBullet env with TensorBoard logs.

    python scripts/train_ppo.py --syre                      # syre on AntBulletEnv-v0, preset ant-zoo
    python scripts/train_ppo.py                             # the vanilla twin
    python scripts/train_ppo.py --weight-decay 1e-3         # the L2 baseline
    tensorboard --logdir runs/                              # overlay them
"""

from syre_rl.agents import TrainConfig, train
from syre_rl.agents.config import parse_dataclass


def main(argv: list[str] | None = None) -> dict:
    config = parse_dataclass(TrainConfig, __doc__, argv)
    try:
        summary = train(config)
    except ValueError as err:  # bad input: one clear line, no traceback
        raise SystemExit(f"train_ppo.py: error: {err}") from None
    print(f"{summary['method']} seed {summary['seed']}: mean return {summary['mean_return']} over the last "
          f"{summary['episodes']} episodes, {summary['steps_per_s']:.0f} steps/s; run in {summary['run_dir']}")
    return summary


if __name__ == "__main__":
    main()
