"""Environments and task streams for syre_rl experiments. Submodules load on first use (PyBullet and SB3 are
slow to import and the supervised tasks need neither)."""

import importlib

from syre_rl.extras import require

require("harness", "syre_rl.envs")  # one line naming the extra to install

import gymnasium as gym  # noqa: E402

# Registered here (cheap: the entry point is imported by gym.make only), so `import envs` is enough for
# gym.make("SlipperyAntBulletEnv-v0"); gym.make("syre_rl.envs:SlipperyAntBulletEnv-v0") works without any import.
if "SlipperyAntBulletEnv-v0" not in gym.registry:
    gym.register(
        id="SlipperyAntBulletEnv-v0", entry_point="syre_rl.envs.slippery:SlipperyAntBulletEnv", max_episode_steps=1000
    )

_EXPORTS = {
    name: f"syre_rl.envs.{module}"
    for module, names in {
        "mnist": ("MnistData", "MnistNotFoundError", "load_mnist"),
        "permuted": (
            "OffsetObservation",
            "PermutedObservation",
            "PermutedTasks",
            "TaskObservation",
            "distinct_permutation",
            "task_offset",
            "task_permutation",
        ),
        "tasks": ("TaskScheduleCallback",),
        "slippery": ("FrictionSchedule", "FrictionScheduleCallback", "SlipperyAntBulletEnv"),
        "vec": ("auto_vec", "check_env_id", "make_env", "register_envs", "save_normalization"),
    }.items()
    for name in names
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'syre_rl.envs' has no attribute {name!r}")
