"""Task switches for RL runs: the observation task of :class:`~syre_rl.envs.permuted.TaskObservation` (entries
permuted or shifted) changed by global steps (in its own module: the supervised harness imports ``permuted``
without SB3)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from syre_rl.envs.options import EnvOptions
from syre_rl.envs.permuted import OFFSET_SCALE, TASK_SHIFTS


class TaskScheduleCallback(BaseCallback):
    """Switch every training env's :class:`~syre_rl.envs.permuted.TaskObservation` task by global steps: task
    ``first_task + num_timesteps // every`` (``every`` None: ``first_task`` throughout, a fresh network's
    reference run on that task). The switch happens at once in every env, mid-episode if need be (a new task is
    a new input mapping, the episode goes on). A resumed run, whose ``num_timesteps`` is restored, continues in
    its task. At each rollout end it records ``env/task``.

    :param every: global steps per task (>= 1), or None for one task
    :param first_task: the task of step 0 (>= 0)
    """

    def __init__(self, every: int | None, first_task: int = 0, verbose: int = 0):
        if every is not None and not (isinstance(every, int) and every >= 1):
            raise ValueError(f"every must be an integer >= 1 or None, got {every!r}")
        if not (isinstance(first_task, int) and first_task >= 0):
            raise ValueError(f"first_task must be an integer >= 0, got {first_task!r}")
        super().__init__(verbose)
        self.every, self.first_task, self._task = every, first_task, -1

    def task(self, step: int) -> int:
        """The task at global step ``step``."""
        return self.first_task + (step // self.every if self.every else 0)

    def _on_training_start(self) -> None:
        self._switch()

    def _on_step(self) -> bool:
        if self.every and self.task(self.num_timesteps) != self._task:
            self._switch()
        return True

    def _switch(self) -> None:
        self._task = self.task(self.num_timesteps)
        self.training_env.env_method("set_task", self._task)

    def _on_rollout_end(self) -> None:
        self.logger.record("env/task", self._task)


class TaskExploration:
    """An off-policy algorithm's exploration schedule (SB3's ``exploration_schedule``, a function of the progress
    remaining) run within each task: at global step ``t`` it is ``base`` at the progress ``(t % every) / every``,
    so that every task explores as a fresh network on that task does. Picklable (it is saved with the model).

    :param base: the run's own schedule
    :param every: global steps per task
    :param total: the run's total steps (SB3's ``_total_timesteps``), which turn progress back into steps
    """

    def __init__(self, base: Callable[[float], float], every: int, total: int):
        self.base, self.every, self.total = base, every, total

    def __call__(self, progress_remaining: float) -> float:
        step = round((1 - progress_remaining) * self.total)
        return self.base(1 - (step % self.every) / self.every)


class TaskExplorationCallback(BaseCallback):
    """Run the model's exploration schedule within each task of ``every`` global steps (:class:`TaskExploration`),
    from the start of training (a resumed run's saved schedule is unwrapped first, so it is wrapped once)."""

    def __init__(self, every: int, verbose: int = 0):
        super().__init__(verbose)
        self.every = every

    def _on_training_start(self) -> None:
        schedule = self.model.exploration_schedule
        base = schedule.base if isinstance(schedule, TaskExploration) else schedule
        self.model.exploration_schedule = TaskExploration(base, self.every, self.model._total_timesteps)

    def _on_step(self) -> bool:
        return True


@dataclass(frozen=True)
class ObservationTaskOptions(EnvOptions):
    """Observation tasks for any env with a 1-D Box observation: every ``task_every`` global steps the observation
    changes to the next task of the stream ``task_shift`` (:class:`~syre_rl.envs.permuted.TaskObservation`): its
    entries permuted anew (``permute``: distinct permutations, never the identity after task 0), or every entry
    shifted by a fixed N(0, ``offset_scale``^2) draw per task (``offset``, C-CHAIN's continual classic control), or
    the permutations of experiments 5 and 6 (``permute-repeating``, which may repeat). Task k of a seed is the same
    in every run of that seed, so task k of a continual run and a fresh run on task k see the same task;
    ``first_task`` alone trains on that one task, a fresh network's reference."""

    task_every: int | None = field(
        default=None,
        metadata={
            "help": "observation tasks: every K global steps the observation changes to the next task of "
            "--task-shift (task k of the run's seed; envs.TaskObservation)",
            "aliases": ("--permute-every",),
            "metavar": "K",
        },
    )
    first_task: int | None = field(
        default=None,
        metadata={
            "help": "the observation task of step 0 (default 0); alone, without --task-every, the run trains on "
            "that one task: a fresh network's reference for task k"
        },
    )
    task_shift: str = field(
        default="permute",
        metadata={
            "help": "what a task does to the observation: permute (distinct permutations of its entries), offset "
            "(every entry shifted by a fixed normal draw per task) or permute-repeating (experiments 5 and 6's "
            "permutations, which may repeat)",
            "choices": list(TASK_SHIFTS),
        },
    )
    offset_scale: float = field(
        default=OFFSET_SCALE,
        metadata={"help": "standard deviation of the offset tasks' shifts (C-CHAIN's: 2)"},
    )
    explore_per_task: bool = field(
        default=False,
        metadata={
            "help": "DQN, QR-DQN: the exploration schedule starts again at every task switch (each task explores "
            "as a fresh network on it does; default: once, over the run's first exploration_fraction)"
        },
    )

    def check(self) -> None:
        if self.task_every is not None and self.task_every < 1:
            raise ValueError(f"--task-every must be >= 1, got {self.task_every}")
        if self.first_task is not None and self.first_task < 0:
            raise ValueError(f"--first-task must be >= 0, got {self.first_task}")
        if self.task_shift not in TASK_SHIFTS:
            raise ValueError(f"--task-shift must be one of {', '.join(TASK_SHIFTS)}, got {self.task_shift!r}")
        if not (self.offset_scale > 0 and self.offset_scale < float("inf")):
            raise ValueError(f"--offset-scale must be a finite number > 0, got {self.offset_scale}")
        if self.explore_per_task and self.task_every is None:
            raise ValueError("--explore-per-task restarts exploration at task switches: give --task-every too")
        super().check()

    def has_tasks(self) -> bool:
        return self.task_every is not None or self.first_task is not None

    def make_env_kwargs(self, seed: int) -> dict[str, Any]:
        if not self.has_tasks():
            return {}
        return {"task_seed": seed, "task_shift": self.task_shift, "offset_scale": self.offset_scale}

    def callbacks(self, seed: int) -> list[Any]:
        if not self.has_tasks():
            return []
        explore = [TaskExplorationCallback(self.task_every)] if self.explore_per_task and self.task_every else []
        return [TaskScheduleCallback(self.task_every, self.first_task or 0), *explore]
