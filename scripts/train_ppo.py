"""Train PPO (vanilla, syre or the L2 baseline) on a PyBullet env with TensorBoard logs (scripts/train.py with
PPO's presets; every flag of train.py works here too).

    python scripts/train_ppo.py --syre                      # syre on AntBulletEnv-v0, preset ant-zoo
    python scripts/train_ppo.py                             # the vanilla twin
    python scripts/train_ppo.py --weight-decay 1e-3         # the L2 baseline
    tensorboard --logdir runs/                              # overlay them
"""

from syre_rl.agents.rl import cli


def main(argv: list[str] | None = None) -> dict:
    return cli(argv, __doc__, "train_ppo.py")


if __name__ == "__main__":
    main()
