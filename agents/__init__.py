"""The harness (``syre_rl.agents``, the repo's ``agents/`` folder): learners and their hyperparameter presets,
the continual runner, sweeps, run folders, settings from the command line and YAML, and the comparison tool.
It builds on the library (``syre_rl``'s method, methods, metrics, policies and callbacks), which never imports
it. Submodules load on first use, so that the supervised learner does not pull in Stable-Baselines3 and
PyBullet."""

import importlib

_EXPORTS = {
    "Preset": "syre_rl.agents.ppo", "TrainConfig": "syre_rl.agents.ppo", "available_presets": "syre_rl.agents.ppo",
    "build_ppo": "syre_rl.agents.ppo", "load_preset": "syre_rl.agents.ppo", "train": "syre_rl.agents.ppo",
    "SupervisedLearner": "syre_rl.agents.supervised", "fcn": "syre_rl.agents.supervised",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'syre_rl.agents' has no attribute {name!r}")
