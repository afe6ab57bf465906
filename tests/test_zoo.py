"""rl-zoo3 as a drop-in: its own train entry point with our policy classes (dotted paths in its hyperparameter
YAML, or SB3's string names with ``--gym-packages syre_rl.policies``), continuing with -i, enjoy, and a reload
that keeps the anchors; the shipped YAMLs (agents/zoo) parse."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).parent.parent
CASES = {  # name: (algo, env, hyperparameters)
    "ppo-syre": (
        "ppo",
        "CartPole-v1",
        {
            "policy": "syre_rl.SyreActorCriticPolicy",
            "n_timesteps": 256,
            "n_steps": 64,
            "batch_size": 32,
            "n_epochs": 1,
            "policy_kwargs": "dict(syre_gamma=1e-3, net_arch=dict(pi=[16], vf=[16]))",
        },
    ),
    "ppo-redo": (
        "ppo",
        "CartPole-v1",
        {
            "policy": "syre_rl.MethodActorCriticPolicy",
            "n_timesteps": 256,
            "n_steps": 64,
            "batch_size": 32,
            "n_epochs": 1,
            "policy_kwargs": "dict(method='redo', method_kwargs=dict(tau=0.1, every=2), "
            "net_arch=dict(pi=[16, 16], vf=[16, 16]))",
        },
    ),
    "ppo-syre-by-name": (
        "ppo",
        "CartPole-v1",
        {  # SB3's string name; --gym-packages imports syre_rl.policies
            "policy": "SyreMlpPolicy",
            "n_timesteps": 256,
            "n_steps": 64,
            "batch_size": 32,
            "n_epochs": 1,
            "policy_kwargs": "dict(syre_gamma=1e-3, net_arch=dict(pi=[16], vf=[16]))",
        },
    ),
    "sac-syre": (
        "sac",
        "Pendulum-v1",
        {
            "policy": "syre_rl.SyreSACPolicy",
            "n_timesteps": 300,
            "learning_starts": 100,
            "buffer_size": 1000,
            "batch_size": 32,
            "policy_kwargs": "dict(syre_gamma=1e-3, net_arch=[16, 16])",
        },
    ),
}


def zoo(module, *args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", f"rl_zoo3.{module}", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


# ppo-syre in `make test`; the others (about 17 s each) with the slow tests (string names are also tested without
# rl-zoo3, in test_algorithms)
@pytest.mark.parametrize("case", [c if c == "ppo-syre" else pytest.param(c, marks=pytest.mark.slow) for c in CASES])
def test_rl_zoo3_trains_continues_enjoys_and_reloads_our_policies(case, tmp_path):
    from stable_baselines3 import PPO, SAC

    algo, env, hyperparameters = CASES[case]
    (tmp_path / "hp.yml").write_text(yaml.safe_dump({env: hyperparameters}))
    common = [
        "--algo",
        algo,
        "--env",
        env,
        "-conf",
        "hp.yml",
        "-f",
        "logs",
        "--seed",
        "0",
        "--device",
        "cpu",
        "--gym-packages",
        "syre_rl.policies",
    ]
    zoo("train", *common, cwd=tmp_path)
    first = tmp_path / "logs" / algo / f"{env}_1" / f"{env}.zip"
    zoo("train", *common, "-i", first, cwd=tmp_path)  # continue training from the saved agent
    second = tmp_path / "logs" / algo / f"{env}_2" / f"{env}.zip"
    out = zoo(
        "enjoy",
        "--algo",
        algo,
        "--env",
        env,
        "-f",
        "logs",
        "--exp-id",
        2,
        "-n",
        400,
        "--no-render",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    assert "Episode Reward:" in out  # enjoy loaded the continued agent and played at least one whole episode
    model_class = {"ppo": PPO, "sac": SAC}[algo]
    before, after = (model_class.load(path, device="cpu").policy for path in (first, second))
    named = hyperparameters["policy"].split(".")[-1]
    assert type(after).__name__ == {"SyreMlpPolicy": "SyreActorCriticPolicy"}.get(named, named)
    anchors = {k: v for k, v in before.state_dict().items() if k.endswith("_syre_anchor")}
    later = after.state_dict()
    assert all(torch.equal(v, later[k]) for k, v in anchors.items())  # the continued run kept its anchors
    assert (len(anchors) > 0) == ("syre" in case)
    if case == "ppo-redo":
        assert after.methods["critic"].steps > before.methods["critic"].steps  # ReDo's state went on counting


@pytest.mark.parametrize("name", ["ppo.yml", "sac.yml"])
def test_shipped_zoo_hyperparameters_name_our_policies(name):
    hyperparameters = yaml.safe_load((ROOT / "agents" / "zoo" / name).read_text())["AntBulletEnv-v0"]
    import syre_rl

    assert hyperparameters["policy"].startswith("syre_rl.")
    assert hasattr(syre_rl, hyperparameters["policy"].split(".")[1])
    assert "syre_gamma=1e-3" in hyperparameters["policy_kwargs"]


OFF_POLICY = {"n_timesteps": 200, "learning_starts": 64, "buffer_size": 500, "batch_size": 32}
EVERY_ALGO = {  # rl-zoo3 name: (env, policy, model class, hyperparameters)
    "a2c": ("CartPole-v1", "SyreActorCriticPolicy", "stable_baselines3.A2C", {"n_timesteps": 160, "n_steps": 16}),
    "td3": ("Pendulum-v1", "SyreTD3Policy", "stable_baselines3.TD3", OFF_POLICY),
    "ddpg": ("Pendulum-v1", "SyreTD3Policy", "stable_baselines3.DDPG", OFF_POLICY),
    "dqn": ("CartPole-v1", "SyreDQNPolicy", "stable_baselines3.DQN", OFF_POLICY),
    "tqc": ("Pendulum-v1", "SyreTQCPolicy", "sb3_contrib.TQC", OFF_POLICY),
    "qrdqn": ("CartPole-v1", "SyreQRDQNPolicy", "sb3_contrib.QRDQN", OFF_POLICY),
    "ppo_lstm": (
        "CartPole-v1",
        "SyreRecurrentActorCriticPolicy",
        "sb3_contrib.RecurrentPPO",
        {"n_timesteps": 128, "n_steps": 64, "batch_size": 32, "n_epochs": 1},
    ),
}  # rl-zoo3 2.9.2 has no MaskablePPO


@pytest.mark.slow
@pytest.mark.parametrize("algo", list(EVERY_ALGO))
def test_rl_zoo3_trains_and_reloads_every_algorithm(algo, tmp_path):
    import importlib

    env, policy, model_class, hyperparameters = EVERY_ALGO[algo]
    (tmp_path / "hp.yml").write_text(yaml.safe_dump({env: {"policy": f"syre_rl.{policy}", **hyperparameters}}))
    zoo(
        "train",
        "--algo",
        algo,
        "--env",
        env,
        "-conf",
        "hp.yml",
        "-f",
        "logs",
        "--seed",
        "0",
        "--device",
        "cpu",
        cwd=tmp_path,
    )
    module, name = model_class.rsplit(".", 1)
    model = getattr(importlib.import_module(module), name).load(
        tmp_path / "logs" / algo / f"{env}_1" / f"{env}.zip", device="cpu"
    )
    assert type(model.policy).__name__ == policy and model.num_timesteps >= hyperparameters["n_timesteps"]
    assert any(k.endswith("_syre_anchor") for k in model.policy.state_dict())
