"""Environments and task streams for syre_rl experiments. Submodules load on first use (PyBullet and SB3 are
slow to import and the supervised tasks need neither)."""

import importlib

import gymnasium as gym

# Registered here (cheap: the entry point is imported by gym.make only), so `import envs` is enough for
# gym.make("SlipperyAntBulletEnv-v0"); gym.make("syre_rl.envs:SlipperyAntBulletEnv-v0") works without any import.
if "SlipperyAntBulletEnv-v0" not in gym.registry:
    gym.register(id="SlipperyAntBulletEnv-v0", entry_point="syre_rl.envs.slippery:SlipperyAntBulletEnv", max_episode_steps=1000)

_EXPORTS = {
    "MnistData": "syre_rl.envs.mnist", "MnistNotFoundError": "syre_rl.envs.mnist", "load_mnist": "syre_rl.envs.mnist",
    "PermutedObservation": "syre_rl.envs.permuted", "PermutedTasks": "syre_rl.envs.permuted", "task_permutation": "syre_rl.envs.permuted",
    "FrictionSchedule": "syre_rl.envs.slippery", "FrictionScheduleCallback": "syre_rl.envs.slippery",
    "SlipperyAntBulletEnv": "syre_rl.envs.slippery",
    "auto_vec": "syre_rl.envs.vec", "check_env_id": "syre_rl.envs.vec", "make_env": "syre_rl.envs.vec", "register_envs": "syre_rl.envs.vec",
    "save_normalization": "syre_rl.envs.vec",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'syre_rl.envs' has no attribute {name!r}")
