"""Environments for syre_rl experiments."""

from envs.mnist import MnistData, MnistNotFoundError, load_mnist
from envs.permuted import PermutedObservation, PermutedTasks, task_permutation
from envs.slippery import FrictionSchedule, FrictionScheduleCallback, SlipperyAntBulletEnv
from envs.vec import auto_vec, check_env_id, make_env, register_envs, save_normalization

__all__ = ["FrictionSchedule", "FrictionScheduleCallback", "MnistData", "MnistNotFoundError", "PermutedObservation",
           "PermutedTasks", "SlipperyAntBulletEnv", "auto_vec", "check_env_id", "load_mnist", "make_env",
           "register_envs", "save_normalization", "task_permutation"]
