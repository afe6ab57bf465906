"""For every SB3 and sb3-contrib policy family: is the policy made from SB3's string name (``"SyreMlpPolicy"``, ...),
does a ``copy.deepcopy`` and a ``pickle`` round trip of it still decay toward the same anchors, and is the original
left alone? Prints a markdown table of what it measured (tests/test_copies.py asserts the same, for every method).

    python scripts/check_copies.py
"""

from __future__ import annotations

import copy
import pickle

import gymnasium as gym
import torch
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from sb3_contrib.common.envs import InvalidActionEnvDiscrete
from stable_baselines3 import A2C, DDPG, DQN, PPO, SAC, TD3

import syre_rl.policies  # noqa: F401  (registers the string names)

GAMMA = 0.05
CASES = [
    (PPO, "MlpPolicy", "Pendulum-v1"),
    (A2C, "MlpPolicy", "Pendulum-v1"),
    (SAC, "MlpPolicy", "Pendulum-v1"),
    (TD3, "MlpPolicy", "Pendulum-v1"),
    (DDPG, "MlpPolicy", "Pendulum-v1"),
    (DQN, "MlpPolicy", "CartPole-v1"),
    (RecurrentPPO, "MlpLstmPolicy", "CartPole-v1"),
    (MaskablePPO, "MlpPolicy", "invalid-action"),
    (TQC, "MlpPolicy", "Pendulum-v1"),
    (QRDQN, "MlpPolicy", "CartPole-v1"),
]


def decays(policy) -> bool:
    """A zero-gradient step of each method's optimizer adds exactly ``gamma * (p - anchor)`` to every covered
    gradient (the decay hook is on that optimizer), and some weights are away from their anchors."""
    ok = True
    for method in policy.methods.values():
        before = [p.detach().clone() for p in method.params()]
        for group in method.optimizer.param_groups:
            for p in group["params"]:
                p.grad = torch.zeros_like(p)
        method.optimizer.step()
        triples = list(zip(method.params(), before, method.anchors()))
        ok &= all(torch.allclose(p.grad, GAMMA * (b - a)) for p, b, a in triples)
        ok &= any(bool((b - a).abs().max() > 0) for _, b, a in triples)  # (biases SB3 starts at 0 sit on theirs)
    return ok


def main() -> None:
    print("| algorithm | string name -> class | deepcopy decays | pickle round trip decays | original untouched |")
    print("| --- | --- | --- | --- | --- |")
    for algorithm, name, env_id in CASES:
        env = InvalidActionEnvDiscrete(dim=20, n_invalid_actions=5) if env_id == "invalid-action" else gym.make(env_id)
        model = algorithm(f"Syre{name}", env, device="cpu", seed=0, policy_kwargs=dict(syre_gamma=GAMMA))
        policy = model.policy
        original = {k: v.clone() for k, v in policy.state_dict().items() if isinstance(v, torch.Tensor)}
        results = [decays(copy.deepcopy(policy)), decays(pickle.loads(pickle.dumps(policy)))]
        untouched = all(torch.equal(v, policy.state_dict()[k]) for k, v in original.items())
        yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
        print(
            f"| {algorithm.__name__} | `Syre{name}` -> `{type(policy).__name__}` | {yes(results[0])} | "
            f"{yes(results[1])} | {yes(untouched)} |"
        )


if __name__ == "__main__":
    main()
