"""RL runs of every SB3 and sb3-contrib algorithm, vanilla or with any plasticity method, from named
hyperparameter presets: :mod:`~syre_rl.agents.rl.presets` (presets and algorithms), :mod:`~syre_rl.agents.rl.config`
(the run's settings), :mod:`~syre_rl.agents.rl.checkpoints` (checkpoint and resume) and
:mod:`~syre_rl.agents.rl.training` (build, train, the command line)."""

from syre_rl.agents.rl.checkpoints import CheckpointCallback, TensorBoardFrom, load_checkpoint, trim_progress
from syre_rl.agents.rl.config import METRICS_STEPS, TrainConfig
from syre_rl.agents.rl.presets import ALGORITHMS, DEFAULT_PRESETS, Preset, available_presets, load_preset
from syre_rl.agents.rl.training import build_model, cli, train

__all__ = [
    "ALGORITHMS",
    "DEFAULT_PRESETS",
    "METRICS_STEPS",
    "CheckpointCallback",
    "Preset",
    "TensorBoardFrom",
    "TrainConfig",
    "available_presets",
    "build_model",
    "cli",
    "load_checkpoint",
    "load_preset",
    "train",
    "trim_progress",
]
