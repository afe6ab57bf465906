"""Environments and task streams for syre_rl experiments. Submodules load on first use (PyBullet and SB3 are
slow to import and the supervised tasks need neither)."""

import importlib

import gymnasium as gym

# Registered here (cheap: the entry point is imported by gym.make only), so `import envs` is enough for
# gym.make("SlipperyAntBulletEnv-v0"); gym.make("envs:SlipperyAntBulletEnv-v0") works without any import.
if "SlipperyAntBulletEnv-v0" not in gym.registry:
    gym.register(id="SlipperyAntBulletEnv-v0", entry_point="envs.slippery:SlipperyAntBulletEnv", max_episode_steps=1000)

_EXPORTS = {
    "MnistData": "envs.mnist", "MnistNotFoundError": "envs.mnist", "load_mnist": "envs.mnist",
    "PermutedObservation": "envs.permuted", "PermutedTasks": "envs.permuted", "task_permutation": "envs.permuted",
    "FrictionSchedule": "envs.slippery", "FrictionScheduleCallback": "envs.slippery",
    "SlipperyAntBulletEnv": "envs.slippery",
    "auto_vec": "envs.vec", "check_env_id": "envs.vec", "make_env": "envs.vec", "register_envs": "envs.vec",
    "save_normalization": "envs.vec",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")
