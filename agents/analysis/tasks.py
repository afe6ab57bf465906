"""Continual runs against fresh networks, task by task: each method's return in task k (at its end, or averaged
over the whole task) against a freshly initialised network's on task k (runs labelled ``fresh-task<k>``), the
plasticity gap, the share of task ends stuck at the env's floor, and the policy's entropy at task ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from syre_rl.agents.analysis.runs import FRESH, STOPPED_AT
from syre_rl.agents.analysis.stats import Bootstrap
from syre_rl.agents.analysis.summary import SummaryRow
from syre_rl.methods import METHODS

Cell = tuple[float, float, float]  # (IQM, low, high) over seeds
BySeed = dict[int, float]
# what a task's return is: at its end (the last 25% of its points) or over the whole task; their summary columns
MEASURES = {"end": "return_task", "whole": "mean_return_task"}
# a task end counts as stuck at or below these returns: CartPole's pole falls at once (one action every step:
# about 9.3), Acrobot never swings up within its 400 capped steps (C-CHAIN's cap; -400). They assume that cap:
# under Acrobot's own 500 steps a late swing-up (-450) would count as stuck
STUCK_AT = {"CartPole-v1": 12.0, "Acrobot-v1": -395.0}


@dataclass
class TaskComparison:
    """One experiment's continual methods against fresh networks (:func:`plasticity_gaps`), by one measure of a
    task's return (:data:`MEASURES`). Cells are (IQM, low, high) over seeds; ``gap_per_seed`` holds each seed's
    gap, keyed by seed; ``versus`` each method's gap minus the reference method's, paired by seed (the same seed has
    the same tasks and the same fresh networks). ``stuck``: per method (and ``fresh``), how many of its ends of
    tasks >= 1 are at the env's floor (:data:`STUCK_AT`), of how many; ``entropy``: per method (and ``fresh``) the
    policy's entropy at the ends of tasks >= 1 (minus SB3's ``train/entropy_loss``), averaged per seed; ``stopped``:
    per method, its seeds that training stopped on a non-finite value (left out of every cell) and where."""

    experiment: str
    tasks: list[int]
    fresh: dict[int, Cell]
    returns: dict[str, dict[int, Cell]]
    gap: dict[str, Cell]
    gap_per_seed: dict[str, BySeed]
    reference: str
    versus: dict[str, Cell]
    measure: str = "end"
    stuck: dict[str, tuple[int, int]] = field(default_factory=dict)
    entropy: dict[str, Cell] = field(default_factory=dict)
    stopped: dict[str, BySeed] = field(default_factory=dict)  # method -> seed -> env step it stopped at


def plasticity_gaps(
    rows: Sequence[SummaryRow],
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    reference: str = "vanilla",
    measure: str = "end",
) -> list[TaskComparison]:
    """Each continual method's return in task k against a freshly initialised network's on the same task (runs
    labelled ``fresh-task<k>``), as IQM [stratified-bootstrap CI] over seeds, and the plasticity gap: per seed, the
    continual run's return minus the fresh run's, averaged over the tasks both have; negative means the network
    learns a new task worse than a fresh one does. Empty without fresh runs.

    :param rows: :func:`~.summary.summarize`'s rows (their ``values`` by seed)
    :param reference: the method every other one is also compared with, seed by seed (when it ran)
    :param measure: a task's return at its end (``end``) or averaged over the whole task (``whole``)
    """
    if measure not in MEASURES:
        raise ValueError(f"unknown measure {measure!r}; valid: {', '.join(MEASURES)}")
    column = MEASURES[measure]
    values = {(r.experiment, r.method, r.quantity): r.values for r in rows}
    fresh = {
        (e, int(m["task"])): v
        for (e, method, q), v in values.items()
        if (m := FRESH.match(method)) and q == f"{column}{m['task']}"
    }
    bootstrap = Bootstrap(confidence, n_resamples, seed)
    return [
        _compare_experiment(experiment, values, fresh, reference, bootstrap, measure)
        for experiment in dict.fromkeys(e for e, _ in fresh)
    ]


def _compare_experiment(
    experiment: str,
    values: dict[tuple[str, str, str], BySeed],
    fresh: dict[tuple[str, int], BySeed],
    reference: str,
    bootstrap: Bootstrap,
    measure: str,
) -> TaskComparison:
    tasks = sorted(k for e, k in fresh if e == experiment)
    fresh_here = {k: fresh[experiment, k] for k in tasks}
    methods = [m for (e, m, q) in values if e == experiment and q == "return" and not FRESH.match(m)]
    returns, gap, gap_per_seed = {}, {}, {}
    for method in methods:
        own = {k: values[key] for k in tasks if (key := (experiment, method, f"{MEASURES[measure]}{k}")) in values}
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
    ends = {m: _per_task(values, experiment, m, tasks, "return_task") for m in [*methods, None]}
    stuck = {}
    if experiment in STUCK_AT:
        floor = STUCK_AT[experiment]
        stuck = {m or "fresh": (sum(v <= floor for v in per.values()), len(per)) for m, per in ends.items() if per}
    entropy = {}
    for m in [*methods, None]:
        per = _per_task(values, experiment, m, tasks, "entropy_loss_task")
        by_seed: dict[int, list[float]] = {}
        for (s, _), v in per.items():
            by_seed.setdefault(s, []).append(-v)
        if by_seed:
            entropy[m or "fresh"] = bootstrap.iqm([float(np.mean(v)) for v in by_seed.values()])
    stopped = {m: v for (e, m, q), v in values.items() if e == experiment and q == STOPPED_AT}
    return TaskComparison(
        experiment, tasks, fresh_cells, returns, gap, gap_per_seed, reference, versus, measure, stuck, entropy, stopped
    )


def _per_task(
    values: dict[tuple[str, str, str], BySeed], experiment: str, method: str | None, tasks: list[int], column: str
) -> dict[tuple[int, int], float]:
    """(seed, task) -> the ``column<k>`` value of ``method`` (None: of task k's fresh network) for ``tasks``."""
    out = {}
    for k in tasks:
        for s, v in values.get((experiment, method or f"fresh-task{k}", f"{column}{k}"), {}).items():
            out[s, k] = v
    return out


def _seed_gaps(own: dict[int, BySeed], fresh: dict[int, BySeed]) -> BySeed:
    """Per seed, the mean over the tasks that both have of the continual return minus the fresh network's."""
    per_seed = {}
    for s in sorted({s for v in fresh.values() for s in v}):
        gaps = [own[k][s] - fresh[k][s] for k in own if s in own[k] and s in fresh[k]]
        if gaps:
            per_seed[s] = float(np.mean(gaps))
    return per_seed


def method_of(label: str) -> str:
    """The method a run label names: the longest method name it starts with (a sweep labels its points
    ``<method>-<setting><value>...``: ``l2-init-gamma0.001`` is l2-init's), else the label itself."""
    names = [m for m in METHODS if label == m or label.startswith(f"{m}-")]
    return max(names, key=len) if names else label


@dataclass
class Tuning:
    """One method's grid in a comparison: its points (run labels, in the comparison's order) and the chosen one,
    the point with the highest gap IQM (the first of equals) among those that no seed stopped on a non-finite
    value (among all, when every point has such a seed)."""

    method: str
    points: list[str]
    chosen: str


def tuning(c: TaskComparison) -> list[Tuning]:
    """Per method (:func:`method_of` of each continual label), its points and the one with the highest gap (by
    ``c``'s measure; choose with the primary one, ``whole``), in the order the methods first appear."""
    grids: dict[str, list[str]] = {}
    for label in dict.fromkeys([*c.gap, *c.stopped]):
        grids.setdefault(method_of(label), []).append(label)
    out = []
    for m, points in grids.items():
        measured = [p for p in points if p in c.gap]
        if not measured:
            continue
        whole = [p for p in measured if p not in c.stopped] or measured
        out.append(Tuning(m, points, max(whole, key=lambda p: c.gap[p][0])))
    return out


def chosen_points(c: TaskComparison) -> list[str]:
    """Each method's chosen point (:func:`tuning`; an evaluation's only point), the highest gap first."""
    return sorted((t.chosen for t in tuning(c)), key=lambda p: -c.gap[p][0])


def paired_differences(
    c: TaskComparison, order: Sequence[str], bootstrap: Bootstrap
) -> dict[tuple[str, str], tuple[Cell, int]]:
    """For each pair of ``order``'s labels, the earlier first: per seed, its gap minus the later one's (the same
    seed has the same tasks and the same fresh networks), IQM over the seeds both ran [interval], and their number.
    Pairs without a seed in common are left out."""
    out = {}
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            mine, theirs = c.gap_per_seed.get(a, {}), c.gap_per_seed.get(b, {})
            if shared := [s for s in mine if s in theirs]:
                out[a, b] = (bootstrap.iqm([mine[s] - theirs[s] for s in shared]), len(shared))
    return out
