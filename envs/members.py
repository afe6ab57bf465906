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

Each member's observation tasks (:class:`~syre_rl.envs.permuted.TaskObservation`: permuted or offset entries)
are its own: ``set_task(member, task)``.
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

from syre_rl.envs.permuted import OFFSET_SCALE, observation_task


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
    tasks: str | None = None,
    normalize: bool | dict = False,
    vec: str = "dummy",
    env_kwargs: dict[str, Any] | None = None,
    reward_scale: float = 1.0,
    offset_scale: float = OFFSET_SCALE,
) -> MemberEnvs:
    """The envs of members with ``seeds``, ``n_envs`` each: :class:`CartPoleMembers` for CartPole-v1 without
    VecNormalize (and without ``gym.make`` arguments other than ``max_episode_steps``); otherwise
    :class:`VecEnvMembers` of vec envs made as each member's single run makes its own
    (:func:`syre_rl.envs.vec.make_env`: monitored, seeded ``seed + i``, VecNormalize if asked, observation tasks
    of the member's seed).

    :param tasks: the observation-task stream (one of :data:`~syre_rl.envs.permuted.TASK_SHIFTS`), or None
    :param env_kwargs: keyword arguments of ``gym.make``
    :param reward_scale: rewards are multiplied by it for learning; episode returns are the env's own
    :param offset_scale: standard deviation of the ``offset`` tasks' shifts
    """
    env_kwargs = dict(env_kwargs or {})
    if env_id == "CartPole-v1" and not normalize and set(env_kwargs) <= {"max_episode_steps"}:
        return CartPoleMembers(seeds, n_envs, tasks, reward_scale, offset_scale, **env_kwargs)
    from syre_rl.envs.vec import make_env

    venvs = []
    try:
        for seed in seeds:
            task_kwargs = {"task_seed": seed, "task_shift": tasks, "offset_scale": offset_scale} if tasks else {}
            venvs.append(
                make_env(env_id, n_envs, seed, vec, normalize, env_kwargs, reward_scale=reward_scale, **task_kwargs)
            )
    except BaseException:
        for venv in venvs:
            venv.close()
        raise
    return VecEnvMembers(venvs, tasks is not None)


class _Tasks:
    """Each member's current observation task (its seed's task of the stream ``shift``, ``observation_task``)."""

    def __init__(self, seeds: Sequence[int], size: int, shift: str | None, scale: float):
        self.seeds, self.size, self.shift, self.scale = list(seeds), size, shift, scale
        self.tasks = [0] * len(self.seeds)
        self.index = np.tile(np.arange(size), (len(self.seeds), 1))  # (K, size)
        self.offset = np.zeros((len(self.seeds), 1, size))  # (K, 1, size)
        if shift is not None:
            observation_task(shift, size, 0, 0, scale)  # refuses a bad shift or scale first

    def set_task(self, member: int, task: int) -> None:
        if self.shift is None:
            raise ValueError("these envs have no observation tasks")
        transform = observation_task(self.shift, self.size, task, self.seeds[member], self.scale)
        self.tasks[member] = task
        self.index[member], self.offset[member, 0] = transform.permutation, transform.offset

    def apply(self, obs: np.ndarray) -> np.ndarray:
        """``obs`` (K, N, size) as each member's task shows it (as TaskObservation: ``x[..., perm] + offset``)."""
        if not any(self.tasks):
            return obs
        out = np.take_along_axis(obs, self.index[:, None, :], axis=2)
        return (out + self.offset).astype(obs.dtype) if self.shift == "offset" else out


class CartPoleMembers:
    """K x N CartPole-v1 envs as gymnasium's native :class:`CartPoleVectorEnv`, with SB3's conventions: an
    episode that ends is reset at once, from the env's own generator (seeded ``seed + i`` as gymnasium seeds a
    single CartPole-v1 reset with that seed), so each member's envs start every episode where its single run's
    do; the vector env's own next-step reset is never used.

    :param seeds: the members' seeds
    :param n_envs: envs per member
    :param tasks: observations shown by each member's task of this stream (``set_task``), or None
    :param reward_scale: rewards are multiplied by it (episode returns are the env's own)
    :param offset_scale: standard deviation of the ``offset`` tasks' shifts
    :param max_episode_steps: the time limit (CartPole-v1's: 500)
    """

    def __init__(
        self,
        seeds: Sequence[int],
        n_envs: int,
        tasks: str | None = None,
        reward_scale: float = 1.0,
        offset_scale: float = OFFSET_SCALE,
        max_episode_steps: int = 500,
    ):
        self.members, self.n_envs, self.reward_scale = len(seeds), n_envs, reward_scale
        self.env = CartPoleVectorEnv(num_envs=self.members * n_envs, max_episode_steps=max_episode_steps)
        self.observation_space = self.env.single_observation_space
        self.action_space = self.env.single_action_space
        self.rngs = [seeding.np_random(seed + i)[0] for seed in seeds for i in range(n_envs)]
        self.tasks = _Tasks(seeds, 4, tasks, offset_scale)
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
        return self.tasks.apply(obs)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[EpisodeEnd]]:
        flat = np.asarray(actions).reshape(-1)
        raw, rewards, terminated, truncated, _ = self.env.step(flat)
        self.returns += rewards
        done = terminated | truncated
        ends = []
        if done.any():
            last = self.tasks.apply(raw.reshape(self.members, self.n_envs, 4))
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
        scaled = rewards if self.reward_scale == 1 else rewards * self.reward_scale
        return self._obs(), scaled.reshape(shape), done.reshape(shape), ends

    def set_task(self, member: int, task: int) -> None:
        self.tasks.set_task(member, task)

    def close(self) -> None:
        self.env.close()


class VecEnvMembers:
    """K SB3 vec envs as one, member k's ``venvs[k]`` (:func:`make_member_envs` makes them as the single runs do).

    :param venvs: one vec env per member, ``n_envs`` each
    :param has_tasks: their envs are wrapped in :class:`~syre_rl.envs.permuted.TaskObservation`
    """

    def __init__(self, venvs: Sequence[Any], has_tasks: bool = False):
        self.venvs, self.has_tasks = list(venvs), has_tasks
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
        if not self.has_tasks:
            raise ValueError("these envs have no observation tasks")
        self.venvs[member].env_method("set_task", task)

    def close(self) -> None:
        for venv in self.venvs:
            venv.close()
