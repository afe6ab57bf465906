"""Friction phases and continual tasks: where ``env/friction`` (or ``env/task``) changes, and a run's return at
the end of each phase or task. Every function is pure: scalars in, numbers out."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from syre_rl.agents.analysis.runs import FRICTION, RETURN, TASK, Run, Scalars

PHASE_TAIL = 0.25  # a friction phase's return: mean over this last fraction of the phase's points


def friction_changes(steps: np.ndarray, friction: np.ndarray) -> list[tuple[float, float]]:
    """(x, new friction) wherever the logged ``env/friction`` differs from its previous point."""
    changed = np.flatnonzero(friction[1:] != friction[:-1]) + 1
    return [(float(steps[i]), float(friction[i])) for i in changed]


def friction_marks(runs: Sequence[Scalars]) -> list[tuple[float, float | None]]:
    """Where to mark friction changes on a plot of several runs: the k-th change at the mean of the runs' k-th
    change steps, with its friction when every run that changed k times changed to the same value (runs of one
    seed share a schedule), else None (seeds draw their own frictions)."""
    changes = [friction_changes(*run[FRICTION]) for run in runs if FRICTION in run]
    marks = []
    for k in range(max(map(len, changes), default=0)):
        kth = [c[k] for c in changes if len(c) > k]
        values = {value for _, value in kth}
        marks.append((float(np.mean([x for x, _ in kth])), values.pop() if len(values) == 1 else None))
    return marks


def phase_returns(
    scalars: Scalars, fraction: float = PHASE_TAIL, tag: str = FRICTION, value: str = RETURN
) -> np.ndarray:
    """One run's return at the end of each friction phase: the mean ``rollout/ep_rew_mean`` over the last
    ``fraction`` of the points inside the phase (from one ``env/friction`` change to the next; the first phase
    starts with the run, the last ends with its last return point). The last phase counts only when it is
    complete, at least 90% as long as the median of the earlier ones: a run stopped mid-phase, or a change at
    its very end, would otherwise report a phase it did not finish. A phase without return points is NaN.

    :param tag: the scalar whose changes end the phases: ``env/friction``, or ``env/task`` (:func:`task_returns`)
    :param value: the scalar averaged (default the return; e.g. ``train/entropy_loss``)
    :return: shape (phases,)
    """
    steps, returns = scalars[value]
    starts = [float(steps[0])] + ([x for x, _ in friction_changes(*scalars[tag])] if tag in scalars else [])
    ends = starts[1:] + [float(steps[-1]) + 1]
    spans = np.subtract(ends, starts)
    if len(spans) > 1 and spans[-1] < 0.9 * np.median(spans[:-1]):
        starts, ends = starts[:-1], ends[:-1]
    out = []
    for lo, hi in zip(starts, ends):
        inside = returns[(steps >= lo) & (steps < hi)]
        out.append(float(np.mean(inside[-max(1, int(len(inside) * fraction)) :])) if len(inside) else np.nan)
    return np.array(out)


def task_returns(scalars: Scalars, fraction: float = PHASE_TAIL, value: str = RETURN) -> dict[int, float]:
    """One run's return in each observation task (``env/task``), keyed by the task: at its end (the last
    ``fraction`` of its points), or over the whole task (``fraction`` 1: the area under the learning curve, which
    counts learning speed). A continual run's task k and a fresh network's run on task k (``train.py
    --first-task k``) land in the same summary column (``return_task<k>``, ``mean_return_task<k>``). Phases as in
    :func:`phase_returns`; ``value``: the scalar averaged instead of the return."""
    steps, tasks = scalars[TASK]
    labels = [int(tasks[0])] + [int(task) for _, task in friction_changes(steps, tasks)]
    return {k: float(v) for k, v in zip(labels, phase_returns(scalars, fraction, TASK, value)) if np.isfinite(v)}


def phase_samples(runs: list[Run], scalars: dict[Run, Scalars]) -> list[dict[int, float]]:
    """Per friction phase, seed -> :func:`phase_returns` of the runs that have it (NaNs left out); runs that
    logged no friction have no phases."""
    per_run = [
        (run.seed, phase_returns(scalars[run])) for run in runs if RETURN in scalars[run] and FRICTION in scalars[run]
    ]
    return [
        {seed: float(r[k]) for seed, r in per_run if k < len(r) and np.isfinite(r[k])}
        for k in range(max((len(r) for _, r in per_run), default=0))
    ]


def task_samples(
    runs: list[Run], scalars: dict[Run, Scalars], fraction: float = PHASE_TAIL, value: str = RETURN
) -> dict[int, dict[int, float]]:
    """Per task, seed -> :func:`task_returns` (of ``value`` over the last ``fraction`` of each task) of the runs
    that have it, tasks in order."""
    per_run = [
        (run.seed, task_returns(scalars[run], fraction, value))
        for run in runs
        if value in scalars[run] and TASK in scalars[run]
    ]
    tasks = sorted({k for _, r in per_run for k in r})
    return {k: {seed: r[k] for seed, r in per_run if k in r} for k in tasks}
