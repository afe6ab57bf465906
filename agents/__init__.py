"""Learners and their hyperparameter presets. Submodules load on first use, so that the supervised learner does
not pull in Stable-Baselines3 and PyBullet."""

import importlib

_EXPORTS = {
    "METHODS": "agents.ppo", "TrainConfig": "agents.ppo", "available_presets": "agents.ppo",
    "build_ppo": "agents.ppo", "load_preset": "agents.ppo", "train": "agents.ppo",
    "SupervisedLearner": "agents.supervised", "fcn": "agents.supervised",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
