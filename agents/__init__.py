"""The harness (``syre_rl.agents``, the repo's ``agents/`` folder): learners and their hyperparameter presets,
the continual runner, sweeps, run folders, settings from the command line and YAML, and the comparison tool.
It builds on the library (``syre_rl``'s method, methods, metrics, policies and callbacks), which never imports
it. Submodules load on first use, so that the supervised learner does not pull in Stable-Baselines3 and
PyBullet."""

import importlib

from syre_rl.extras import require

require("harness", "syre_rl.agents")  # one line naming the extra, not a bare "No module named 'yaml'"

_EXPORTS = {
    name: f"syre_rl.agents.{module}"
    for module, names in {
        "rl": ("ALGORITHMS", "Preset", "TrainConfig", "available_presets", "build_model", "load_preset", "train"),
        "supervised": ("SupervisedLearner", "fcn"),
    }.items()
    for name in names
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'syre_rl.agents' has no attribute {name!r}")
