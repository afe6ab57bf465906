"""The environments of K seeds trained as one (``scripts/train.py --seeds``): K x N environments stepped as one
vector environment, member k's N environments exactly those of its single run (SB3's ``make_vec_env`` seeds env
``i`` with ``seed + i``), with SB3's VecEnv conventions: an episode's end returns the next episode's first
observation and keeps the last one as the terminal observation, a time-limit truncation is told apart from a
termination (SB3 bootstraps it), and every finished episode is reported with its return and length (as SB3's
``Monitor``).

- CartPole-v1 steps as gymnasium's native vectorised CartPole (one numpy program for all K x N envs, about 100x
  faster than K x N Python envs): :class:`CartPoleMembers`.
- Any other gymnasium or PyBullet id steps as K SB3 vec envs, one per member, made as the single run makes its
  own (:func:`syre_rl.envs.vec.make_env`): :class:`VecEnvMembers`.

Each member's permuted-observation tasks (:class:`~syre_rl.envs.permuted.PermutedObservation`) are its own:
``set_task(member, task)``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv
from gymnasium.utils import seeding

from syre_rl.envs.permuted import task_permutation


@dataclass
class EpisodeEnd:
    """An episode of member ``member``'s env ``env`` that ended at this step: its last observation, whether it was
    cut by a time limit (not terminated), its return and length (SB3's ``Monitor``: return rounded to 6 digits)."""

    member: int
    env: int
    terminal_observation: np.ndarray
    truncated: bool
    episode_return: float
    length: int


class MemberEnvs(Protocol):
    """K members' envs as one: observations ``(K, N, *obs_shape)``, actions ``(K, N, *action_shape)``."""

    members: int
    n_envs: int
    observation_space: gym.spaces.Space
    action_space: gym.spaces.Space

    def reset(self) -> np.ndarray: ...

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[EpisodeEnd]]:
        """Observations, rewards ``(K, N)`` float32, dones ``(K, N)`` and the episodes that ended."""
        ...

    def set_task(self, member: int, task: int) -> None: ...

    def close(self) -> None: ...


def make_member_envs(
    env_id: str,
    seeds: Sequence[int],
    n_envs: int,
    permuted: bool = False,
    normalize: bool | dict = False,
    vec: str = "dummy",
) -> MemberEnvs:
    """The envs of members with ``seeds``, ``n_envs`` each: :class:`CartPoleMembers` for CartPole-v1 without
    VecNormalize; otherwise :class:`VecEnvMembers` of vec envs made as each member's single run makes its own
    (:func:`syre_rl.envs.vec.make_env`: monitored, seeded ``seed + i``, VecNormalize if asked, permuted
    observations with the member's seed)."""
    if env_id == "CartPole-v1" and not normalize:
        return CartPoleMembers(seeds, n_envs, permuted)
    from syre_rl.envs.vec import make_env

    venvs = []
    try:
        for seed in seeds:
            venvs.append(make_env(env_id, n_envs, seed, vec, normalize, **({"permute_seed": seed} if permuted else {})))
    except BaseException:
        for venv in venvs:
            venv.close()
        raise
    return VecEnvMembers(venvs, permuted)


class _Permutations:
    """Each member's current observation permutation (its task's, :func:`task_permutation` of its seed)."""

    def __init__(self, seeds: Sequence[int], size: int, permuted: bool):
        self.seeds, self.size, self.permuted = list(seeds), size, permuted
        self.tasks = [0] * len(self.seeds)
        self.index = np.tile(np.arange(size), (len(self.seeds), 1))  # (K, size)

    def set_task(self, member: int, task: int) -> None:
        if not self.permuted:
            raise ValueError("these envs have no permuted-observation tasks")
        self.tasks[member] = task
        self.index[member] = task_permutation(self.size, task, self.seeds[member])

    def apply(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` (K, N, size) with each member's entries permuted (``x[..., perm]``, as PermutedObservation)."""
        if not any(self.tasks):
            return obs
        return np.take_along_axis(obs, self.index[:, None, :], axis=2)


class CartPoleMembers:
    """K x N CartPole-v1 envs as gymnasium's native :class:`CartPoleVectorEnv`, with SB3's conventions: an
    episode that ends is reset at once, from the env's own generator (seeded ``seed + i`` as gymnasium seeds a
    single CartPole-v1 reset with that seed), so each member's envs start every episode where its single run's
    do; the vector env's own next-step reset is never used.

    :param seeds: the members' seeds
    :param n_envs: envs per member
    :param permuted: observations permuted by each member's task (``set_task``)
    """

    def __init__(self, seeds: Sequence[int], n_envs: int, permuted: bool = False):
        self.members, self.n_envs = len(seeds), n_envs
        self.env = CartPoleVectorEnv(num_envs=self.members * n_envs)
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space
        self.rngs = [seeding.np_random(seed + i)[0] for seed in seeds for i in range(n_envs)]
        self.permutations = _Permutations(seeds, 4, permuted)
        self.returns = np.zeros(self.members * n_envs)
        self.started = np.full(self.members * n_envs, time.time())

    def _fresh(self, i: int) -> np.ndarray:
        low, high = self.env.low, self.env.high
        return self.rngs[i].uniform(low=low, high=high, size=(4,))

    def reset(self) -> np.ndarray:
        self.env.reset()
        assert self.env.state is not None
        self.env.state = np.stack([self._fresh(i) for i in range(len(self.rngs))], axis=1)
        self.returns[:] = 0
        return self._obs()

    def _obs(self) -> np.ndarray:
        assert self.env.state is not None
        obs = self.env.state.T.astype(np.float32).reshape(self.members, self.n_envs, 4)
        return self.permutations.apply(obs)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[EpisodeEnd]]:
        flat = np.asarray(actions).reshape(-1)
        raw, rewards, terminated, truncated, _ = self.env.step(flat)
        self.returns += rewards
        done = terminated | truncated
        ends = []
        if done.any():
            last = self.permutations.apply(raw.reshape(self.members, self.n_envs, 4))
            assert self.env.state is not None
            for j in np.flatnonzero(done):
                k, i = divmod(int(j), self.n_envs)
                ends.append(
                    EpisodeEnd(
                        k,
                        i,
                        last[k, i].copy(),
                        bool(truncated[j] and not terminated[j]),
                        round(float(self.returns[j]), 6),
                        int(self.env.steps[j]),
                    )
                )
                self.env.state[:, j] = self._fresh(int(j))
                self.env.steps[j] = 0
                self.returns[j] = 0
            self.env.prev_done[:] = False  # reset here, at once: never at the next step
        shape = (self.members, self.n_envs)
        return self._obs(), rewards.reshape(shape), done.reshape(shape), ends

    def set_task(self, member: int, task: int) -> None:
        self.permutations.set_task(member, task)

    def close(self) -> None:
        self.env.close()


class VecEnvMembers:
    """K SB3 vec envs as one, member k's ``venvs[k]`` (:func:`make_member_envs` makes them as the single runs do).

    :param venvs: one vec env per member, ``n_envs`` each
    :param permuted: their envs are wrapped in :class:`~syre_rl.envs.permuted.PermutedObservation`
    """

    def __init__(self, venvs: Sequence[Any], permuted: bool = False):
        self.venvs, self.permuted = list(venvs), permuted
        self.members, self.n_envs = len(self.venvs), self.venvs[0].num_envs
        self.observation_space = self.venvs[0].observation_space
        self.action_space = self.venvs[0].action_space

    def reset(self) -> np.ndarray:
        return np.stack([venv.reset() for venv in self.venvs])

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[EpisodeEnd]]:
        obs, rewards, dones, ends = [], [], [], []
        for k, (venv, member_actions) in enumerate(zip(self.venvs, actions)):
            o, r, d, infos = venv.step(member_actions)
            obs.append(o)
            rewards.append(r)
            dones.append(d)
            for i in np.flatnonzero(d):
                info = infos[i]
                episode = info.get("episode", {"r": float("nan"), "l": 0})
                truncated = bool(info.get("TimeLimit.truncated", False))
                ends.append(EpisodeEnd(k, int(i), info["terminal_observation"], truncated, episode["r"], episode["l"]))
        return np.stack(obs), np.stack(rewards).astype(np.float32), np.stack(dones), ends

    def set_task(self, member: int, task: int) -> None:
        if not self.permuted:
            raise ValueError("these envs have no permuted-observation tasks")
        self.venvs[member].env_method("set_task", task)

    def close(self) -> None:
        for venv in self.venvs:
            venv.close()
