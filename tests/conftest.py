"""Shared test helpers (imported as ``from tests.conftest import ...``), and the GPU marker: tests marked ``gpu`` run
where CUDA is available (scripts/gpu_check.sh runs them all) and are skipped here."""

import contextlib
import math
import subprocess
import sys

import gymnasium as gym
import pytest
import torch
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from sb3_contrib.common.envs import InvalidActionEnvDiscrete
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3
from torch import nn

import syre_rl


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


# The continual harness: data without a data set, a run folder held by another process
def synthetic_digits(n_train=600, n_test=200, seed=0):
    """Ten noisy prototypes in 784 pixels (a :class:`~syre_rl.envs.mnist.MnistData`): learnable in a few steps, no
    data set needed."""
    import numpy as np

    from syre_rl.envs.mnist import MnistData  # the harness: only the tests that use it need it

    rng = np.random.default_rng(seed)
    protos = rng.random((10, 784)).astype(np.float32)

    def make(n):
        y = rng.integers(0, 10, n)
        x = np.clip(protos[y] + 0.3 * rng.standard_normal((n, 784)), 0, 1).astype(np.float32)
        return x, y.astype(np.int64)

    return MnistData(*make(n_train), *make(n_test))


@contextlib.contextmanager
def held_by_another_process(run):
    """``run`` owned by a second process (killed at the end: the OS releases its lock)."""
    code = (
        "import sys, time\nfrom syre_rl.agents.runs import owned\n"
        "with owned(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(30)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()


# Every method, with settings under which it acts within tens of steps (ReDo and CBP with both moment resets): the
# cases of the batching tests (tests/test_members.py, tests/test_seeds.py)
METHOD_CASES = [
    ("vanilla", {}),
    ("l2", {"gamma": 1e-2}),
    ("l2", {"gamma": 1e-2, "decoupled": True}),
    ("syre", {"gamma": 1e-2}),
    ("syre-ar", {"gamma": 1e-2, "ar_eps": 0.1}),
    ("l2-init", {"gamma": 1e-2}),
    ("jitter", {"gamma": 1e-2}),
    ("shrink-perturb", {"shrink": 1e-3, "noise": 1e-3}),
    ("redo", {"every": 10, "tau": 0.3}),
    ("redo", {"every": 10, "tau": 0.3, "moment_reset": "mean"}),
    ("cbp", {"replacement_rate": 0.05, "maturity": 5}),
    ("cbp", {"replacement_rate": 0.05, "maturity": 5, "moment_reset": "mean"}),
]


# K seeds in one model: a small run, and records compared to float32 rounding
SMALL = dict(tasks=3, hidden="32,32", probe_size=100, batch_size=32, progress=False, online=True)
RTOL = 1e-5


def close(a, b, path="") -> list[str]:
    """Where ``a`` and ``b`` (records: nested dicts, lists, numbers) differ by more than RTOL relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        return [d for k in a for d in close(a[k], b[k], f"{path}/{k}")]
    if isinstance(a, list):
        assert len(a) == len(b), path
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in close(x, y, f"{path}[{i}]")]
    if (
        isinstance(a, float)
        and not (math.isnan(a) and math.isnan(b))
        and not math.isclose(a, b, rel_tol=RTOL, abs_tol=1e-7)
    ):
        return [f"{path}: {a} != {b}"]
    return [] if isinstance(a, float) or a == b else [f"{path}: {a} != {b}"]


def without_wall(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


# Every method: settings under which each changes a run within a few steps, a small network and its steps
ACTIVE = {
    "vanilla": {},
    "l2": dict(gamma=0.1),
    "syre": dict(gamma=0.1),
    "syre-ar": dict(gamma=0.1, ar_eps=0.5),
    "l2-init": dict(gamma=0.1),
    "jitter": dict(gamma=0.1),
    "shrink-perturb": dict(shrink=0.01, noise=0.01),
    "redo": dict(tau=0.9, every=2),
    "cbp": dict(replacement_rate=0.2, maturity=2),
}


def mlp(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 3))


def step(net, opt, n=1, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x, y = torch.randn(32, 6, generator=gen), torch.randn(32, 3, generator=gen)
        opt.zero_grad()
        nn.functional.mse_loss(net(x), y).backward()
        opt.step()


# Every SB3 and sb3-contrib algorithm with its syre_rl policy, small
OFF = dict(learning_starts=32, batch_size=16, buffer_size=1000, train_freq=4, gradient_steps=2)


NET2 = dict(net_arch=[16, 16])


AC = dict(net_arch=dict(pi=[16, 16], vf=[16, 16]))


# algorithm, family, SB3's own policy, env, algorithm kwargs, policy kwargs
ALGOS = {
    "ppo": (PPO, "ActorCritic", "MlpPolicy", "Pendulum-v1", dict(n_steps=64, batch_size=32, n_epochs=1), AC),
    "a2c": (A2C, "ActorCritic", "MlpPolicy", "Pendulum-v1", dict(n_steps=16), AC),
    "sac": (SAC, "SAC", "MlpPolicy", "Pendulum-v1", OFF, NET2),
    "td3": (TD3, "TD3", "MlpPolicy", "Pendulum-v1", OFF, NET2),
    "ddpg": (DDPG, "TD3", "MlpPolicy", "Pendulum-v1", OFF, NET2),
    "dqn": (DQN, "DQN", "MlpPolicy", "CartPole-v1", dict(OFF, target_update_interval=20), NET2),
    "recurrent-ppo": (
        RecurrentPPO,
        "RecurrentActorCritic",
        "MlpLstmPolicy",
        "CartPole-v1",
        dict(n_steps=32, batch_size=16, n_epochs=1),
        dict(AC, lstm_hidden_size=8),
    ),
    "maskable-ppo": (
        MaskablePPO,
        "MaskableActorCritic",
        "MlpPolicy",
        "invalid-action",
        dict(n_steps=32, batch_size=16, n_epochs=1),
        AC,
    ),
    "tqc": (TQC, "TQC", "MlpPolicy", "Pendulum-v1", OFF, dict(NET2, n_quantiles=5)),
    "qrdqn": (
        QRDQN,
        "QRDQN",
        "MlpPolicy",
        "CartPole-v1",
        dict(OFF, target_update_interval=20),
        dict(NET2, n_quantiles=5),
    ),
}


def make_env(name, instance=False):
    """The env of a test (an id SB3 makes, or an instance: ``<Algo>.load`` takes no id)."""
    if name == "invalid-action":
        return InvalidActionEnvDiscrete(dim=20, n_invalid_actions=5)
    return gym.make(name) if instance else name


def build(algo, policy=None, seed=0, **policy_kwargs):
    cls, family, own, env, kwargs, net = ALGOS[algo]
    policy = policy or getattr(syre_rl, f"Syre{family}Policy")
    return cls(policy, make_env(env), seed=seed, device="cpu", policy_kwargs={**net, **policy_kwargs}, **kwargs)


def hook_acts(method, gamma):
    """The coupled hook of ``method`` adds gamma * (p - anchor) to a zero gradient at its optimizer's step."""
    p, anchor = method.params()[0], method.anchors()[0]
    before = p.detach().clone()
    for group in method.optimizer.param_groups:
        for q in group["params"]:
            q.grad = torch.zeros_like(q)
    method.optimizer.step()
    return torch.allclose(p.grad, gamma * (before - anchor)) and float((before - anchor).abs().max()) > 0
