"""Vectorised environments for training: PyBullet ids registered in every process, seeding, VecNormalize."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import operator
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
from gymnasium.wrappers import TransformReward
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from syre_rl.envs.permuted import OFFSET_SCALE, TaskObservation
from syre_rl.files import atomic_write

VEC_KINDS = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
NORMALIZE_FILE = "vecnormalize.pkl"


STREAMS = {1: "stdout", 2: "stderr"}


def _flush_c_streams() -> None:
    """C's ``fflush(NULL)``, where the C library can be loaded by name (Linux, macOS)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, TypeError, AttributeError):
        pass


def _fileno(stream) -> int | None:
    """The file descriptor under a Python stream; None for one without (pytest's capture, StringIO)."""
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.contextmanager
def silenced(*fds: int) -> Iterator[None]:
    """Send what C code writes to file descriptors ``fds`` (1 stdout, 2 stderr) to /dev/null meanwhile, while
    Python's own ``sys.stdout`` and ``sys.stderr`` (prints, warnings, progress bars) still reach where they went:
    PyBullet prints its build time from C when it is imported and ``argv[0]=`` when a bullet client connects."""
    for fd in fds:
        getattr(sys, STREAMS[fd]).flush()
    saved = {fd: os.dup(fd) for fd in fds}
    python = {fd: getattr(sys, STREAMS[fd]) for fd in fds}
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in fds:
            if _fileno(python[fd]) == fd:  # a real stream on this fd: Python's writes go to its copy meanwhile
                setattr(sys, STREAMS[fd], open(os.dup(saved[fd]), "w", buffering=1, encoding=python[fd].encoding))
            os.dup2(devnull, fd)
        yield
    finally:
        _flush_c_streams()  # what C buffered goes to /dev/null, not to the terminal once it is back
        for fd in fds:
            if getattr(sys, STREAMS[fd]) is not python[fd]:
                getattr(sys, STREAMS[fd]).close()
                setattr(sys, STREAMS[fd], python[fd])
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
        os.close(devnull)


class QuietBullet(gym.Wrapper):
    """A PyBullet env whose first reset (which connects its bullet client and prints ``argv[0]=`` from C) prints
    nothing, so a run prints only its own lines and the progress bar."""

    def reset(self, **kwargs):
        if getattr(self, "_connected", False):
            return self.env.reset(**kwargs)
        with silenced(1, 2):
            result = self.env.reset(**kwargs)
        self._connected = True
        return result


def register_envs() -> None:
    """Register the PyBullet ``*BulletEnv-v0`` ids and ``SlipperyAntBulletEnv-v0`` with gymnasium (idempotent)."""
    import pybullet_envs_gymnasium  # noqa: F401  (registers on import)

    import syre_rl.envs  # noqa: F401  (registers SlipperyAntBulletEnv-v0; SubprocVecEnv workers start without it)


def check_env_id(env_id: str) -> None:
    """Raise ValueError naming ``env_id`` and the registered PyBullet ids when gymnasium does not know it."""
    register_envs()
    if env_id not in gym.registry:
        bullet = sorted(k for k in gym.registry if "Bullet" in k)
        raise ValueError(
            f"unknown environment id {env_id!r}; PyBullet ids: {', '.join(bullet)} "
            "(or any other id registered with gymnasium)"
        )
    entry = gym.spec(env_id).entry_point
    if isinstance(entry, str) and "Bullet" not in env_id:  # (PyBullet is the harness's own dependency)
        from gymnasium.envs import registration

        load = getattr(registration, "load_env_creator", None) or registration.load
        try:
            load(entry)  # imports the env's module, which names a missing dependency
        except gym.error.DependencyNotInstalled as error:
            raise ValueError(f"environment {env_id} needs a package that is not installed here: {error}") from None


def _make_one(
    env_id: str,
    task_seed: int | None = None,
    task_shift: str | None = None,
    offset_scale: float = OFFSET_SCALE,
    **kwargs,
) -> gym.Env:
    register_envs()  # runs inside SubprocVecEnv workers too, which do not inherit the parent's imports
    if "Bullet" not in env_id:
        env = gym.make(env_id, **kwargs)
    else:
        with silenced(1, 2):  # the first PyBullet env of a process imports pybullet, which prints its build time
            env = QuietBullet(gym.make(env_id, **kwargs))
    if task_seed is not None:
        env = TaskObservation(env, task_shift or "permute", task_seed, scale=offset_scale)
    return env


def auto_vec(n_envs: int, cpus: int | None = None) -> str:
    """``subproc`` when there are cores to spare for several env processes, else ``dummy`` (faster on 2 cores,
    where SubprocVecEnv's processes oversubscribe the cores: scripts/bench_throughput.py measures both)."""
    cpus = cpus or os.cpu_count() or 1
    return "subproc" if n_envs >= 4 and cpus >= 4 else "dummy"


def make_env(
    env_id: str,
    n_envs: int = 1,
    seed: int = 0,
    vec: str = "dummy",
    normalize: bool | dict = False,
    env_kwargs: dict | None = None,
    task_seed: int | None = None,
    task_shift: str | None = None,
    offset_scale: float = OFFSET_SCALE,
    reward_scale: float = 1.0,
) -> VecEnv:
    """Make ``n_envs`` monitored copies of ``env_id`` in a DummyVecEnv or SubprocVecEnv.

    :param env_id: a gymnasium id; the PyBullet ids are registered automatically
    :param n_envs: number of parallel environments (>= 1)
    :param seed: env ``i`` is seeded with ``seed + i``
    :param vec: ``dummy`` (one process) or ``subproc`` (one process per env)
    :param normalize: wrap in VecNormalize: True for SB3's defaults, or a dict of VecNormalize kwargs
    :param env_kwargs: keyword arguments for ``gym.make``
    :param task_seed: wrap every env in :class:`~syre_rl.envs.permuted.TaskObservation` with this seed (task 0,
        the original observation, until its ``set_task``)
    :param task_shift: that wrapper's stream (``permute``, ``offset``, ``permute-repeating``; default ``permute``)
    :param offset_scale: standard deviation of the ``offset`` tasks' shifts
    :param reward_scale: rewards are multiplied by it for learning (after the Monitor, which records the env's
        own returns)
    """
    check_env_id(env_id)
    if vec not in VEC_KINDS:
        raise ValueError(f"unknown vec kind {vec!r}; choose one of {sorted(VEC_KINDS)}")
    if not (isinstance(n_envs, int) and n_envs >= 1):
        raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
    if not (isinstance(reward_scale, (int, float)) and reward_scale > 0 and math.isfinite(reward_scale)):
        raise ValueError(f"reward_scale must be a finite number > 0, got {reward_scale!r}")
    scaled = {
        "wrapper_class": TransformReward,
        "wrapper_kwargs": {"func": functools.partial(operator.mul, reward_scale)},
    }
    venv = make_vec_env(
        functools.partial(_make_one, env_id, task_seed, task_shift, offset_scale),
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        vec_env_cls=VEC_KINDS[vec],
        **(scaled if reward_scale != 1 else {}),
    )
    if normalize:
        venv = VecNormalize(venv, **(normalize if isinstance(normalize, dict) else {}))
    return venv


def save_normalization(venv: VecEnv, folder: str | Path, name: str = NORMALIZE_FILE) -> Path | None:
    """Write VecNormalize statistics as ``folder/name`` (atomically); None if ``venv`` has none."""
    if not isinstance(venv, VecNormalize):
        return None
    path = Path(folder) / name
    atomic_write(path, lambda tmp: venv.save(str(tmp)))
    return path
