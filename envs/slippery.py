"""Slippery Ant: PyBullet Ant whose foot friction changes over training (Dohare et al., 2024).

Three pieces, one per job:

- ``SlipperyAntBulletEnv`` (id ``SlipperyAntBulletEnv-v0``): ``AntBulletEnv`` with a settable lateral friction on
  its four feet, changed either now (``set_friction``) or at the next episode boundary (``request_friction``).
- ``FrictionSchedule``: a seeded, piecewise-constant friction over global training steps; each phase draws its
  friction log-uniformly from ``[low, high]``.
- ``FrictionScheduleCallback``: applies a schedule to the envs of an SB3 training run and logs ``env/friction``
  and ``env/friction_phase``.

Bullet multiplies the two frictions of a contact, so the foot values here combine with the floor's 0.8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from syre_rl.envs.options import EnvOptions
from syre_rl.envs.vec import silenced

with silenced(1, 2):  # importing pybullet prints its build time from C
    from pybullet_envs_gymnasium.gym_locomotion_envs import AntBulletEnv

DEFAULT_FOOT_FRICTION = 1.5  # lateral friction of the Ant's feet in ant.xml


def _check_positive(name: str, value: float) -> float:
    """``value`` as a float; ValueError naming ``name`` unless it is a finite real number > 0."""
    is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class SlipperyAntBulletEnv(AntBulletEnv):
    """PyBullet Ant with a settable lateral friction on its four feet.

    ``info["friction"]`` in ``reset()`` and ``step()`` is the foot friction in effect. The methods are reachable
    through gymnasium wrappers and SB3 VecEnvs: ``venv.env_method("set_friction", 0.1)``.

    :param friction: lateral friction of every foot from the first reset on (finite, > 0; Ant's default 1.5)
    :param render_mode: as for ``AntBulletEnv``
    """

    def __init__(self, friction: float = DEFAULT_FOOT_FRICTION, render_mode: str | None = None):
        self._friction = _check_positive("friction", friction)
        self._pending: float | None = None
        super().__init__(render_mode=render_mode)

    @property
    def friction(self) -> float:
        """The foot friction in effect (before the first reset: the one the first reset applies)."""
        return self._friction

    def set_friction(self, mu: float) -> None:
        """Set the foot friction now, mid-episode if need be, and drop any pending ``request_friction``.

        :param mu: lateral friction of every foot (finite, > 0); applied at the first reset if the simulator does
            not exist yet
        """
        self._friction = _check_positive("friction", mu)
        self._pending = None
        if self.physicsClientId >= 0:
            self._apply_friction()

    def request_friction(self, mu: float) -> None:
        """Switch the foot friction to ``mu`` at the next ``reset()``, so that no episode mixes two frictions.

        :param mu: lateral friction of every foot (finite, > 0); a later request replaces an earlier one
        """
        self._pending = _check_positive("friction", mu)

    def read_friction(self) -> list[float]:
        """The lateral friction of the four feet as the simulator has it (needs a first ``reset()``)."""
        if self.physicsClientId < 0:
            raise RuntimeError("the simulator starts at the first reset(); call reset() before read_friction()")
        return [float(self._p.getDynamicsInfo(body, link)[1]) for body, link in self._feet()]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        # SB3 VecEnvs reset inside step() when an episode ends, so a requested friction has to land here.
        if self._pending is not None:
            self._friction, self._pending = self._pending, None
        obs, info = super().reset(seed=seed, options=options)
        # The first reset loads the feet; later resets keep the set friction, and re-applying costs 4 calls.
        self._apply_friction()
        return obs, {**info, "friction": self._friction}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = super().step(action)
        return obs, reward, terminated, truncated, {**info, "friction": self._friction}

    def _feet(self) -> list[tuple[int, int]]:
        """(body id, link index) of each foot."""
        return [(f.bodies[f.bodyIndex], f.bodyPartIndex) for f in self.robot.feet]

    def _apply_friction(self) -> None:
        for body, link in self._feet():
            self._p.changeDynamics(body, link, lateralFriction=self._friction)


class FrictionSchedule:
    """Piecewise-constant foot friction over global training steps.

    Phase ``k`` covers steps ``[k * every, (k + 1) * every)``; its friction is drawn log-uniformly from
    ``[low, high]`` by a numpy generator seeded with ``seed``, one draw per phase in order, so the same seed gives
    the same sequence. ``initial`` replaces phase 0's draw and leaves the later phases unchanged.

    :param every: steps per phase (>= 1)
    :param low: smallest friction (finite, > 0)
    :param high: largest friction (finite, >= low)
    :param seed: seed of the draws
    :param initial: friction of phase 0 (finite, > 0), e.g. Ant's default 1.5; None draws it like the others
    """

    def __init__(self, every: int, low: float = 0.02, high: float = 2.0, seed: int = 0, initial: float | None = None):
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1 (steps per phase), got {every!r}")
        low, high = _check_positive("low", low), _check_positive("high", high)
        if low > high:
            raise ValueError(f"low must be <= high, got low={low!r} > high={high!r}")
        self.every, self.low, self.high, self.seed = int(every), low, high, seed
        self.initial = None if initial is None else _check_positive("initial", initial)
        self._rng = np.random.default_rng(seed)
        self._values: list[float] = []

    def phase(self, step: int) -> int:
        """The phase that global step ``step`` (>= 0) falls in."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}")
        return int(step) // self.every

    def value(self, step: int) -> float:
        """The friction at global step ``step`` (>= 0)."""
        return self.values(self.phase(step) + 1)[-1]

    def values(self, n: int) -> list[float]:
        """The frictions of phases ``0 .. n-1``."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be an integer >= 0, got {n!r}")
        # Drawn lazily and cached, so the k-th value is the generator's k-th draw however calls interleave.
        while len(self._values) < n:
            draw = float(np.exp(self._rng.uniform(math.log(self.low), math.log(self.high))))
            self._values.append(self.initial if not self._values and self.initial is not None else draw)
        return self._values[:n]

    def __repr__(self) -> str:
        return (
            f"FrictionSchedule(every={self.every}, low={self.low}, high={self.high}, seed={self.seed}, "
            f"initial={self.initial})"
        )


class FrictionScheduleCallback(BaseCallback):
    """Drive the foot friction of every training env by a ``FrictionSchedule`` over ``model.num_timesteps``.

    At training start every env is set to the schedule's current value at once (a resumed run, whose
    ``num_timesteps`` is restored, continues in its phase). When a new phase starts, every env is asked to switch
    at its own next episode boundary (``request_friction``). At each rollout end it records ``env/friction``
    (the friction in effect in env 0, from the latest step's ``info``) and ``env/friction_phase``.

    :param schedule: the friction over global steps
    :param verbose: SB3 verbosity
    """

    def __init__(self, schedule: FrictionSchedule, verbose: int = 0):
        if not isinstance(schedule, FrictionSchedule):
            raise ValueError(f"schedule must be a FrictionSchedule, got {schedule!r}")
        super().__init__(verbose)
        self.schedule = schedule
        self._phase = -1

    def _on_training_start(self) -> None:
        self._phase = self.schedule.phase(self.num_timesteps)
        self.training_env.env_method("set_friction", self.schedule.value(self.num_timesteps))

    def _on_step(self) -> bool:
        phase = self.schedule.phase(self.num_timesteps)
        if phase != self._phase:
            self._phase = phase
            self.training_env.env_method("request_friction", self.schedule.value(self.num_timesteps))
        return True

    def _on_rollout_end(self) -> None:
        self.logger.record("env/friction", self.locals["infos"][0]["friction"])
        self.logger.record("env/friction_phase", self._phase)


@dataclass(frozen=True)
class FrictionOptions(EnvOptions):
    """The slippery Ant's friction schedule as run settings (``--friction-every`` and its range)."""

    friction_every: int | None = field(
        default=None,
        metadata={"help": "SlipperyAntBulletEnv-v0: change the foot friction every K global steps (at episode ends)"},
    )
    friction_low: float = field(default=0.02, metadata={"help": "lowest friction of the schedule"})
    friction_high: float = field(default=2.0, metadata={"help": "highest friction of the schedule"})

    def check(self) -> None:
        if self.friction_every is not None:
            FrictionSchedule(self.friction_every, self.friction_low, self.friction_high)  # checks the values
        super().check()

    def check_env(self, env_id: str) -> None:
        if self.friction_every is not None and not env_id.startswith("SlipperyAnt"):
            raise ValueError(f"--friction-every needs a slippery env (SlipperyAntBulletEnv-v0), not {env_id}")

    def callbacks(self, seed: int) -> list[Any]:
        if self.friction_every is None:
            return []
        schedule = FrictionSchedule(self.friction_every, self.friction_low, self.friction_high, seed=seed)
        return [FrictionScheduleCallback(schedule)]
