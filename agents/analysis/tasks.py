"""Continual runs against fresh networks, task by task: each method's return at the end of task k against a
freshly initialised network's on task k (runs labelled ``fresh-task<k>``), and the plasticity gap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from syre_rl.agents.analysis.runs import FRESH
from syre_rl.agents.analysis.stats import Bootstrap
from syre_rl.agents.analysis.summary import SummaryRow

Cell = tuple[float, float, float]  # (IQM, low, high) over seeds
BySeed = dict[int, float]


@dataclass
class TaskComparison:
    """One experiment's continual methods against fresh networks (:func:`plasticity_gaps`). Cells are (IQM, low,
    high) over seeds; ``gap_per_seed`` holds each seed's gap, keyed by seed; ``versus`` each method's gap minus
    the reference method's, paired by seed (the same seed has the same tasks and the same fresh networks)."""

    experiment: str
    tasks: list[int]
    fresh: dict[int, Cell]
    returns: dict[str, dict[int, Cell]]
    gap: dict[str, Cell]
    gap_per_seed: dict[str, BySeed]
    reference: str
    versus: dict[str, Cell]


def plasticity_gaps(
    rows: Sequence[SummaryRow],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    reference: str = "vanilla",
) -> list[TaskComparison]:
    """Each continual method's return at the end of task k against a freshly initialised network's on the same
    task (runs labelled ``fresh-task<k>``), as IQM [stratified-bootstrap CI] over seeds, and the plasticity gap:
    per seed, the continual run's return minus the fresh run's, averaged over the tasks both have; negative means
    the network learns a new task worse than a fresh one does. Empty without fresh runs.

    :param rows: :func:`~.summary.summarize`'s rows (their ``values`` by seed)
    :param reference: the method every other one is also compared with, seed by seed (when it ran)
    """
    values = {(r.experiment, r.method, r.quantity): r.values for r in rows}
    fresh = {
        (e, int(m["task"])): v
        for (e, method, q), v in values.items()
        if (m := FRESH.match(method)) and q == f"return_task{m['task']}"
    }
    bootstrap = Bootstrap(confidence, n_resamples, seed)
    return [
        _compare_experiment(experiment, values, fresh, reference, bootstrap)
        for experiment in dict.fromkeys(e for e, _ in fresh)
    ]


def _compare_experiment(
    experiment: str,
    values: dict[tuple[str, str, str], BySeed],
    fresh: dict[tuple[str, int], BySeed],
    reference: str,
    bootstrap: Bootstrap,
) -> TaskComparison:
    tasks = sorted(k for e, k in fresh if e == experiment)
    fresh_here = {k: fresh[experiment, k] for k in tasks}
    methods = [m for (e, m, q) in values if e == experiment and q == "return" and not FRESH.match(m)]
    returns, gap, gap_per_seed = {}, {}, {}
    for method in methods:
        own = {k: values[key] for k in tasks if (key := (experiment, method, f"return_task{k}")) in values}
        returns[method] = {k: bootstrap.iqm(list(v.values())) for k, v in own.items()}
        if per_seed := _seed_gaps(own, fresh_here):
            gap_per_seed[method] = per_seed
            gap[method] = bootstrap.iqm(list(per_seed.values()))
    base = gap_per_seed.get(reference, {})
    versus = {
        m: bootstrap.iqm([g[s] - base[s] for s in g if s in base])
        for m, g in gap_per_seed.items()
        if m != reference and set(g) & set(base)
    }
    fresh_cells = {k: bootstrap.iqm(list(v.values())) for k, v in fresh_here.items()}
    return TaskComparison(experiment, tasks, fresh_cells, returns, gap, gap_per_seed, reference, versus)


def _seed_gaps(own: dict[int, BySeed], fresh: dict[int, BySeed]) -> BySeed:
    """Per seed, the mean over the tasks that both have of the continual return minus the fresh network's."""
    per_seed = {}
    for s in sorted({s for v in fresh.values() for s in v}):
        gaps = [own[k][s] - fresh[k][s] for k in own if s in own[k] and s in fresh[k]]
        if gaps:
            per_seed[s] = float(np.mean(gaps))
    return per_seed
