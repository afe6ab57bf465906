"""Task switches for RL runs: the observation permutation of :class:`~syre_rl.envs.permuted.PermutedObservation`
changed by global steps (in its own module: the supervised harness imports ``permuted`` without SB3)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback

from syre_rl.envs.options import EnvOptions


class TaskScheduleCallback(BaseCallback):
    """Switch every training env's :class:`PermutedObservation` task by global steps: task
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


@dataclass(frozen=True)
class PermutedTaskOptions(EnvOptions):
    """Permuted-observation tasks for any env: its observation entries permuted anew every ``permute_every`` global
    steps (task k uses permutation k of the run's seed, so task k of a continual run and a fresh run on task k see
    the same permutation); ``first_task`` alone trains on that one task, a fresh network's reference."""

    permute_every: int | None = field(
        default=None,
        metadata={
            "help": "permuted-observation tasks: every K global steps the observation entries are permuted anew (task "
            "k uses permutation k of the run's seed; envs.PermutedObservation)"
        },
    )
    first_task: int | None = field(
        default=None,
        metadata={
            "help": "the permuted-observation task of step 0 (default 0); alone, without --permute-every, the run "
            "trains on that one task: a fresh network's reference for task k"
        },
    )

    def check(self) -> None:
        if self.permute_every is not None and self.permute_every < 1:
            raise ValueError(f"--permute-every must be >= 1, got {self.permute_every}")
        if self.first_task is not None and self.first_task < 0:
            raise ValueError(f"--first-task must be >= 0, got {self.first_task}")
        super().check()

    def permuted(self) -> bool:
        return self.permute_every is not None or self.first_task is not None

    def make_env_kwargs(self, seed: int) -> dict[str, Any]:
        return {"permute_seed": seed} if self.permuted() else {}

    def callbacks(self, seed: int) -> list[Any]:
        return [TaskScheduleCallback(self.permute_every, self.first_task or 0)] if self.permuted() else []
