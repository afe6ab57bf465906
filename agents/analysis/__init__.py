"""Compare runs: mean curves over seeds with 95% bootstrap bands, and a summary table, from TensorBoard logs.

A run is a folder holding TensorBoard event files (``events.out.tfevents.*``), at any depth under the runs
folder. Its method and seed come from its ``config.json`` (``method``, ``seed``), else from the folder name
``METHOD_sSEED`` or ``METHOD_sSEED_K`` (K: repeat index); its experiment is the config's ``env`` or
``benchmark``, else the parent folder's name. Runs are grouped by (experiment, method); every run is one sample,
so repeats of a seed count separately. Curves of one tag are put on common x values (:func:`align`), and each
point gets the mean over runs and a percentile-bootstrap confidence interval of that mean (:func:`bootstrap_ci`).

``compare(root, out)`` writes to ``out`` (each file atomically; with several experiments every figure is written
once per experiment, its name suffixed ``_<experiment>``, e.g. ``return_AntBulletEnv-v0.png``):

- ``return.png``: ``rollout/ep_rew_mean`` vs env steps; dashed vertical lines where ``env/friction`` changes
  (:func:`friction_marks`), annotated with the new friction when all runs share it
- ``phases.png`` (runs that logged ``env/friction``): each method's return at the end of every friction phase
  (:func:`phase_returns`), mean and interval over seeds; the summary's ``return_phase<k>`` columns
- ``accuracy.png``: ``task/test_accuracy`` per task (dashed: ``task/mean_seen_accuracy``), and
  ``task/online_accuracy`` in a second panel when logged
- ``effective_rank.png``, ``dead_units.png``, ``duplicate_units.png`` (dashed: ``duplicate_units_learned``):
  one panel per ``plasticity/<target>/layer<i>``
- ``profile.png`` (every method with >= 5 runs): rliable's performance profile of the headline quantity
- ``tasks.md`` (runs labelled ``fresh-task<k>`` beside observation-task runs): each method's return at the end of
  task k against a fresh network's on task k, and the plasticity gap with each seed's value and its difference
  from vanilla's, paired by seed (:func:`plasticity_gaps`), the task ends stuck at the env's floor and the
  policy's entropy there; then the same with each task's return averaged over the whole task. ``tasks.png`` and
  ``tasks_whole.png`` draw the returns per task and the gaps with their intervals
- ``tuning.md`` (a method with several grid points, e.g. a tuning sweep's ``syre-gamma0.001-scale0.5``): each
  point's whole-task and end-of-task gaps and its difference from vanilla, the point of the highest whole-task
  gap chosen (:func:`tuning`)
- ``paired.md`` (two or more methods beside fresh networks): every two methods at their chosen points, the one
  of the higher whole-task gap minus the other's, paired by seed, by both measures (:func:`paired_differences`):
  whether syre beats L2 on the same seeds, not only each against vanilla
- ``summary.md``: the inputs (each run's minutes and whether it trained batched, and when they all ran), then per
  experiment a table, one row per method, of final values (IQM [95% stratified-bootstrap CI], from rliable), and a
  table of each run's value of the headline columns; ``summary.csv``: one row per (experiment, method, quantity)
  with the IQM and its interval, the mean and its percentile-bootstrap interval, and every run's value

``combine(summaries, out)`` writes ``summary.csv``, ``tasks.md``, ``tuning.md``, ``paired.md`` and the task figures
again from the ``summary.csv`` files of earlier comparisons, without their runs (:func:`~.summary.merge_rows`): a
grid or an evaluation run in parts, over sessions whose run folders are gone. A seed that two files both hold must
have the same value in each. The files hold each run's value to 6 significant digits, so an interval's last printed
digit may differ from the comparison of the runs themselves (syre's CartPole grid, combined alone: one interval end
in tasks.md, 237.2 against 237.1; tuning.md the same).

Modules, by job: ``runs`` (finding and reading runs), ``stats`` (intervals), ``phases`` (friction phases and
tasks), ``summary`` (the rows, numbers keyed by seed), ``tasks`` (against fresh networks), ``report`` (the text
files), ``plots`` (the figures).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Sequence
from pathlib import Path

from syre_rl.agents.analysis.phases import friction_changes, friction_marks, phase_returns, task_returns
from syre_rl.agents.analysis.plots import method_colors, plot_experiment, plot_tasks
from syre_rl.agents.analysis.report import (
    fresh_comparison,
    paired_table,
    read_summary_csv,
    summary_csv,
    summary_markdown,
    tuning_table,
)
from syre_rl.agents.analysis.runs import (
    Run,
    Scalars,
    find_runs,
    group_runs,
    latest_repeats,
    load_scalars,
    stopped_at,
)
from syre_rl.agents.analysis.stats import Bootstrap, Curve, aggregate, align, bootstrap_ci, final_value, iqm_ci
from syre_rl.agents.analysis.summary import SummaryRow, merge_rows, stopped_rows, summarize, summary_quantities
from syre_rl.agents.analysis.tasks import (
    TaskComparison,
    Tuning,
    chosen_points,
    method_of,
    paired_differences,
    plasticity_gaps,
    tuning,
)
from syre_rl.agents.kinds import check_writable
from syre_rl.agents.runs import atomic_write

__all__ = [
    "Bootstrap",
    "Curve",
    "Run",
    "Scalars",
    "SummaryRow",
    "TaskComparison",
    "Tuning",
    "aggregate",
    "align",
    "bootstrap_ci",
    "combine",
    "compare",
    "final_value",
    "find_runs",
    "fresh_comparison",
    "friction_changes",
    "friction_marks",
    "group_runs",
    "iqm_ci",
    "latest_repeats",
    "load_scalars",
    "merge_rows",
    "method_colors",
    "phase_returns",
    "plasticity_gaps",
    "read_summary_csv",
    "tuning",
    "chosen_points",
    "paired_differences",
    "paired_table",
    "tuning_table",
    "method_of",
    "summarize",
    "summary_quantities",
    "task_returns",
]


def compare(
    root: str | Path,
    out: str | Path | None = None,
    extra_tags: Sequence[str] = (),
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
    only: Sequence[str] = (),
) -> Path:
    """Find the runs under ``root`` and write the figures, ``summary.md`` and ``summary.csv`` (module docstring).

    :param root: folder searched at any depth for runs
    :param out: output folder, created if needed (default: ``root/compare``)
    :param extra_tags: more scalar tags for the summary (each run's last value)
    :param confidence, n_resamples, seed: of the bootstrap intervals (:func:`bootstrap_ci`)
    :param only: shell-style patterns (``fnmatch``); when given, only runs whose method (or label) matches one
    :return: the output folder
    :raise ValueError: no runs under ``root`` (matching ``only``), or an extra tag that no run logged
    """
    found, repeats = latest_repeats(_select(root, only))
    runs = [run for run in found if stopped_at(run) is None]  # a stopped run's numbers stop short: left out
    stopped = [run for run in found if stopped_at(run) is not None]
    scalars = {run: load_scalars(run) for run in runs}
    logged = set().union(*scalars.values())
    if missing := [tag for tag in extra_tags if tag not in logged]:
        raise ValueError(f"no run logged the tag(s) {', '.join(missing)}; logged tags: {', '.join(sorted(logged))}")
    out = Path(out) if out is not None else Path(root) / "compare"
    check_writable(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    check_lengths(groups, scalars)
    bootstrap = Bootstrap(confidence, n_resamples, seed)
    colors = method_colors({run.method for run in runs})
    rows = summarize(groups, scalars, extra_tags, bootstrap) + stopped_rows(stopped, bootstrap)
    for experiment, methods in groups.items():
        own = [r for r in rows if r.experiment == experiment]
        plot_experiment(out, _suffix(experiment, groups), methods, scalars, own, colors, bootstrap)
    _write(out / "summary.csv", summary_csv(rows))
    md = summary_markdown(Path(root), runs, groups, rows, confidence, n_resamples, repeats, stopped)
    _write(out / "summary.md", md)
    _task_files(out, rows, colors, confidence, n_resamples, seed)
    return out


def combine(
    summaries: Sequence[str | Path],
    out: str | Path,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Path:
    """Write ``summary.csv``, ``tasks.md``, ``tuning.md`` and the task figures from earlier comparisons'
    ``summary.csv`` files (module docstring): their rows merged by (experiment, method, quantity), seeds united.

    :param summaries: the ``summary.csv`` files, at least one; none of them in ``out`` (it is written there)
    :return: the output folder
    :raise ValueError: no files, a file that is missing or no summary, one inside ``out``, or a seed two files hold
        with different values
    """
    if not summaries:
        raise ValueError("no summary.csv files to combine")
    out = Path(out)
    paths = [Path(p) for p in summaries]
    for path in paths:
        if not path.is_file():
            raise ValueError(f"no file {path}: give the summary.csv files of earlier comparisons")
        if path.resolve().parent == out.resolve():
            raise ValueError(f"{path} is in the output folder {out}, which combine writes over; choose another --out")
    tables = [(str(path), read_summary_csv(path)) for path in paths]
    check_writable(out, "--out")
    out.mkdir(parents=True, exist_ok=True)
    rows = merge_rows(tables, Bootstrap(confidence, n_resamples, seed))
    _write(out / "summary.csv", summary_csv(rows))
    colors = method_colors({r.method for r in rows})
    header = "Combined from " + ", ".join(f"`{p}`" for p in paths) + " (`scripts/compare.py --summaries`).\n\n"
    _task_files(out, rows, colors, confidence, n_resamples, seed, header)
    return out


def _task_files(
    out: Path,
    rows: Sequence[SummaryRow],
    colors: dict[str, str],
    confidence: float,
    n_resamples: int,
    seed: int,
    header: str = "",
) -> None:
    """``tasks.md``, ``tuning.md`` and the task figures of ``rows`` (those with fresh networks beside them)."""
    comparisons = plasticity_gaps(rows, confidence, n_resamples, seed)
    whole = plasticity_gaps(rows, confidence, n_resamples, seed, measure="whole")
    if comparisons:
        _write(out / "tasks.md", header + fresh_comparison(comparisons, confidence, whole))
    if tuned := tuning_table(whole, comparisons):
        _write(out / "tuning.md", header + tuned)
    if paired := paired_table(whole, comparisons, Bootstrap(confidence, n_resamples, seed)):
        _write(out / "paired.md", header + paired)
    experiments = {r.experiment for r in rows}
    for c in comparisons + whole:
        name = "tasks" if c.measure == "end" else "tasks_whole"
        plot_tasks(out / f"{name}{_suffix(c.experiment, experiments)}.png", c, colors)


def check_lengths(groups: dict[str, dict[str, list[Run]]], scalars: dict[Run, Scalars]) -> None:
    """Refuse to average runs of one method that end at different steps (a 3-task run with a 2-task one), naming
    each run's last step: their "last" values are not the same point."""
    for experiment, methods in groups.items():
        for method, members in methods.items():
            ends = {
                run: max((float(steps[-1]) for steps, _ in scalars[run].values() if len(steps)), default=0.0)
                for run in members
            }
            if len(set(ends.values())) > 1:
                said = ", ".join(f"{run.path.name} at {end:g}" for run, end in ends.items())
                raise ValueError(
                    f"{experiment}, {method}: its runs end at different steps ({said}), so their means would mix "
                    "points; finish the shorter ones (--resume with the same settings) or compare one length (--only)"
                )


def _select(root: str | Path, only: Sequence[str]) -> list[Run]:
    """The runs under ``root`` whose method matches a pattern of ``only`` (all, without patterns)."""
    runs = find_runs(root)
    if only:
        runs = [run for run in runs if any(fnmatch.fnmatchcase(run.method, p) for p in only)]
    if not runs:
        raise ValueError(
            f"no runs under '{root}'{' matching ' + ', '.join(only) if only else ''}: a run is a "
            f"folder holding TensorBoard event files (events.out.tfevents.*)"
        )
    return runs


def _suffix(experiment: str, experiments: Collection[str]) -> str:
    """A figure's file name suffix: none for a single experiment, else ``_<experiment>`` (safe characters)."""
    return "" if len(experiments) == 1 else "_" + re.sub(r"[^\w.-]", "_", experiment)


def _write(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))
