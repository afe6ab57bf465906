"""Learners and their hyperparameter presets."""

from agents.ppo import METHODS, TrainConfig, available_presets, build_ppo, load_preset, train

__all__ = ["METHODS", "TrainConfig", "available_presets", "build_ppo", "load_preset", "train"]
