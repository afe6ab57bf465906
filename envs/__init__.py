"""Environments for syre_rl experiments."""

from envs.vec import auto_vec, check_env_id, make_env, register_envs, save_normalization

__all__ = ["auto_vec", "check_env_id", "make_env", "register_envs", "save_normalization"]
