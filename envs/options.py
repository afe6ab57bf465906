"""What an environment module declares for the RL runs that use it: its settings (:class:`EnvOptions`, fields a
training config inherits, so they are flags of ``scripts/train.py``), checked by the module itself, and how they
act: keyword arguments of :func:`~syre_rl.envs.vec.make_env` and SB3 callbacks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syre_rl.settings import Settings


@dataclass(frozen=True)
class EnvOptions(Settings):
    """Base of an environment's run settings. A subclass's :meth:`check` checks its values (and calls
    ``super().check()``); the three methods below are called once per options class of a run."""

    def check_env(self, env_id: str) -> None:
        """Refuse these settings for an environment they do not apply to (they are unset by default)."""

    def make_env_kwargs(self, seed: int) -> dict[str, Any]:
        """More keyword arguments of :func:`~syre_rl.envs.vec.make_env` for the run of ``seed``."""
        return {}

    def callbacks(self, seed: int) -> list[Any]:
        """SB3 callbacks that apply the settings during training (e.g. a schedule of environment changes)."""
        return []
