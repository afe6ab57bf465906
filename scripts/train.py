"""Train any SB3 or sb3-contrib algorithm (vanilla, syre or any plasticity method) with TensorBoard logs.

python scripts/train.py --algo sac --syre                 # SAC + syre on AntBulletEnv-v0, preset sac-zoo
python scripts/train.py --algo sac                        # its vanilla twin
python scripts/train.py --algo ppo --method redo          # PPO (preset ant-zoo) with ReDo
python scripts/train.py --algo dqn --env CartPole-v1 --timesteps 50000 --syre    # SB3's defaults for DQN
tensorboard --logdir runs/                                # overlay them (Scalars and HParams)
"""

from syre_rl.agents.rl import cli


def main(argv: list[str] | None = None) -> dict:
    return cli(argv, __doc__, "train.py")


if __name__ == "__main__":
    main()
