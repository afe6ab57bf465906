"""The text files of a comparison: ``summary.md``, ``summary.csv`` and ``tasks.md``. Numbers become text here,
and only here."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from pathlib import Path

from syre_rl.agents.analysis.phases import PHASE_TAIL
from syre_rl.agents.analysis.runs import STOPPED_AT, Methods, Run, ran_batched, resumed_at, stopped_at, wall_clock
from syre_rl.agents.analysis.stats import TAIL_FRACTION, Bootstrap
from syre_rl.agents.analysis.summary import SummaryRow
from syre_rl.agents.analysis.tasks import TaskComparison, chosen_points, paired_differences, tuning

CSV_COLUMNS = (
    "experiment",
    "method",
    "quantity",
    "tag",
    "mean",
    "ci_low",
    "ci_high",
    "iqm",
    "iqm_low",
    "iqm_high",
    "n_seeds",
    "seeds",
    "values",
)


def summary_csv(rows: Sequence[SummaryRow]) -> str:
    """``summary.csv``: one line per row, :data:`CSV_COLUMNS`; ``seeds`` and ``values`` (6 significant digits)
    ``;``-separated, in the same order."""
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        seeds = ";".join(str(seed) for seed in r.values)
        values = ";".join(f"{v:.6g}" for v in r.values.values())
        writer.writerow(
            [r.experiment, r.method, r.quantity, r.tag, r.mean, r.ci_low, r.ci_high, r.iqm, r.iqm_low, r.iqm_high]
            + [r.n_seeds, seeds, values]
        )
    return table.getvalue()


def read_summary_csv(path: Path) -> list[SummaryRow]:
    """The rows of a ``summary.csv`` (:func:`summary_csv`'s inverse; each seed's value to its 6 significant
    digits).

    :raise ValueError: a file that is not a ``summary.csv`` (other columns), a row of other length, or one whose
        seeds and values do not pair up
    """
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = tuple(next(reader, ()))
        if header != CSV_COLUMNS:
            raise ValueError(f"{path} is not a comparison's summary.csv: its columns are {', '.join(header) or 'none'}")
        rows = []
        for line, cells in enumerate(reader, start=2):
            if len(cells) != len(CSV_COLUMNS):
                raise ValueError(f"{path}, line {line}: {len(cells)} cells, where a row has {len(CSV_COLUMNS)}")
            r = dict(zip(CSV_COLUMNS, cells))
            seeds, values = r["seeds"].split(";"), r["values"].split(";")
            if len(seeds) != len(values) or len(seeds) != int(r["n_seeds"]):
                raise ValueError(f"{path}, line {line}: {r['n_seeds']} runs, seeds {r['seeds']}, values {r['values']}")
            numbers = [float(r[k]) for k in ("mean", "ci_low", "ci_high", "iqm", "iqm_low", "iqm_high")]
            by_seed = {int(seed): float(value) for seed, value in zip(seeds, values)}
            rows.append(SummaryRow(r["experiment"], r["method"], r["quantity"], r["tag"], by_seed, *numbers))
    return rows


def summary_markdown(
    root: Path,
    runs: Sequence[Run],
    groups: dict[str, Methods],
    rows: Sequence[SummaryRow],
    confidence: float,
    n_resamples: int,
    repeats: Sequence[Run] = (),
    stopped: Sequence[Run] = (),
) -> str:
    """``summary.md``: the inputs (runs found, repeats and stopped runs left out), what a cell means, then per
    experiment a table of IQM [interval] per method and quantity, and each run's value of the headline
    quantities."""
    lines = _inputs(root, runs, repeats, stopped) + ["", _legend(confidence, n_resamples)]
    for experiment, methods in groups.items():
        cells = {
            (row.method, row.quantity): row
            for row in rows
            if row.experiment == experiment and row.quantity != STOPPED_AT
        }
        lines += _experiment_table(experiment, methods, cells) + _per_seed_table(experiment, methods, cells)
    return "\n".join(lines) + "\n"


def _inputs(root: Path, runs: Sequence[Run], repeats: Sequence[Run], stopped: Sequence[Run] = ()) -> list[str]:
    lines = [f"# Comparison of the runs under `{root}`", "", f"Inputs: RUNS_DIR `{root}`, {len(runs)} runs found:", ""]
    clocks = {run: wall_clock(run) for run in runs}
    lines += [
        f"- `{run.path.relative_to(root)}`: experiment {run.experiment}, method {run.method}, seed {run.seed}"
        + (f", repeat {run.repeat}" if run.repeat > 1 else "")
        + (", batched" if ran_batched(run) else "")
        + (f", {clock[2] / 60:.1f} minutes" if (clock := clocks[run]) else "")
        + (f", **resumed** at step {', '.join(map(str, steps))}" if (steps := resumed_at(run)) else "")
        for run in runs
    ]
    if known := [c for c in clocks.values() if c]:
        start, end = min(c[0] for c in known), max(c[1] for c in known)
        lines += [
            "",
            f"Wall clock (the wall times of the runs' first and last logged points): from {_utc(start)} to "
            f"{_utc(end)} UTC, {(end - start) / 60:.0f} minutes; {sum(map(ran_batched, runs))} of the {len(runs)} "
            "runs trained batched (several seeds or settings as one network). A run's minutes run from its first "
            "logged point to its last (summed over its event files when it was resumed).",
        ]
    if interrupted := [run for run in runs if resumed_at(run)]:
        lines += [
            "",
            f"{len(interrupted)} of the {len(runs)} runs were resumed; an RL resume is not exact (new episodes and "
            "random draws), so those runs are not the uninterrupted runs their settings make.",
        ]
    if repeats:
        lines += [
            "",
            "Left out, as earlier repeats of a method and seed that a later run replaces (a seed counts once):",
            "",
        ] + [f"- `{run.path.relative_to(root)}`" for run in repeats]
    if stopped:
        lines += [
            "",
            "Left out, as stopped on a non-finite value (their numbers stop short; each run's `stopped.json` says "
            "why): the tables of the tasks and of the tuning mark them.",
            "",
        ] + [
            f"- `{run.path.relative_to(root)}`: experiment {run.experiment}, method {run.method}, seed {run.seed}, "
            f"stopped at env step {stopped_at(run)}"
            for run in stopped
        ]
    return lines


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))


def _legend(confidence: float, n_resamples: int) -> str:
    return (
        f"Cells: interquartile mean (IQM) over runs [{confidence:.0%} stratified-bootstrap confidence "
        f"interval, {n_resamples} resamples], from rliable (with fewer than 4 runs the IQM is the mean); with "
        f"a single seed the interval is the point itself. `summary.csv` also holds the mean with its "
        f"percentile-bootstrap interval, and every run's value. `seeds`: runs of the method, one run per "
        f"seed; `(n=...)` where fewer logged that column. `return`: mean over the last {TAIL_FRACTION:.0%} of "
        f"each run's points; `return_phase<k>`: mean over the last {PHASE_TAIL:.0%} of the points of friction "
        f"phase k (0 = the first); `return_task<k>`: the same over observation task k, `mean_return_task<k>`: "
        f"the mean over all of task k's points (the area under its learning curve), `entropy_loss_task<k>`: "
        f"SB3's entropy loss over task k's last {PHASE_TAIL:.0%} (minus the policy's entropy); accuracies: each "
        f"run's first or last task; `<target>/layer<i>/<metric>`: last hidden layer, each run's last point."
    )


def _experiment_table(experiment: str, methods: Methods, cells: dict[tuple[str, str], SummaryRow]) -> list[str]:
    quantities = list(dict.fromkeys(quantity for _, quantity in cells))
    lines = [
        "",
        f"## {experiment}",
        "",
        "| " + " | ".join(["method", "seeds", *quantities]) + " |",
        "|" + "---|" * (2 + len(quantities)),
    ]
    for method, method_runs in methods.items():
        row = [method, str(len(method_runs))]
        for c in (cells.get((method, quantity)) for quantity in quantities):
            row.append(
                "–"
                if c is None
                else f"{c.iqm:.4g} [{c.iqm_low:.4g}, {c.iqm_high:.4g}]"
                + (f" (n={c.n_seeds})" if c.n_seeds < len(method_runs) else "")
            )
        lines.append("| " + " | ".join(row) + " |")
    return lines


def _per_seed_table(experiment: str, methods: Methods, cells: dict[tuple[str, str], SummaryRow]) -> list[str]:
    """Each run's value of the headline columns (the first four that are no plasticity metric)."""
    headline = [q for q in dict.fromkeys(quantity for _, quantity in cells) if "/" not in q][:4]
    if not headline:
        return []
    lines = [
        "",
        f"Per seed ({experiment}): each run's value, seeds in order.",
        "",
        "| " + " | ".join(["method", *headline]) + " |",
        "|" + "---|" * (1 + len(headline)),
    ]
    for method in methods:
        values = []
        for quantity in headline:
            c = cells.get((method, quantity))
            values.append("–" if c is None else ", ".join(f"s{seed}: {v:.4g}" for seed, v in c.values.items()))
        lines.append("| " + " | ".join([method, *values]) + " |")
    return lines


def fresh_comparison(
    comparisons: Sequence[TaskComparison], confidence: float = 0.95, whole: Sequence[TaskComparison] = ()
) -> str:
    """``tasks.md``: :func:`~.tasks.plasticity_gaps` as tables, task by task, then the gap with every seed's
    value; the task ends stuck at the env's floor and the policy's entropy; then, when given, the same gaps of the
    return averaged over the whole task (``whole``)."""
    if not comparisons:
        return ""
    lines = [
        "# Continual runs against fresh networks, task by task",
        "",
        f"Return at the end of each task (mean of `rollout/ep_rew_mean` over the task's last {PHASE_TAIL:.0%}), "
        f"IQM over seeds [{confidence:.0%} stratified-bootstrap interval, rliable]. Gap: per seed, the continual "
        "run's return minus the fresh network's on the same task, averaged over the tasks both have; below 0 "
        "the continual network learns new tasks worse than a fresh one (a loss of plasticity).",
    ]
    for c in comparisons:
        lines += _task_table(c) + _gap_table(c) + _ends_table(c)
    if whole:
        lines += [
            "",
            "# The same, with each task's return averaged over the whole task",
            "",
            "Mean of `rollout/ep_rew_mean` over all of the task's points: the area under the task's learning curve, "
            "which counts how fast a network learns the task as well as where it ends.",
        ]
        for c in whole:
            lines += _task_table(c) + _gap_table(c)
    return "\n".join(lines) + "\n"


def _cell(cell: tuple[float, float, float]) -> str:
    return "{:.1f} [{:.1f}, {:.1f}]".format(*cell)


def _task_table(c: TaskComparison) -> list[str]:
    methods = list(c.returns)
    lines = ["", f"## {c.experiment}", "", "| task | fresh | " + " | ".join(methods) + " |"]
    lines.append("|" + "---|" * (2 + len(methods)))
    for k in c.tasks:
        row = [str(k), _cell(c.fresh[k])] + [_cell(c.returns[m][k]) if k in c.returns[m] else "–" for m in methods]
        lines.append("| " + " | ".join(row) + " |")
    gaps = [_cell(c.gap[m]) + f" (n={len(c.gap_per_seed[m])})" if m in c.gap else "–" for m in methods]
    return lines + ["| **gap** |  | " + " | ".join(gaps) + " |"]


def _ends_table(c: TaskComparison) -> list[str]:
    """Per method, the ends of tasks >= 1 stuck at the env's floor and the policy's entropy there."""
    names = [m for m in [*c.returns, "fresh"] if m in c.stuck or m in c.entropy]
    if not names:
        return []
    lines = ["", "| method | task ends at the floor | policy entropy at task ends |", "|---|---|---|"]
    for m in names:
        stuck = "{} of {}".format(*c.stuck[m]) if m in c.stuck else "–"
        entropy = "{:.3f} [{:.3f}, {:.3f}]".format(*c.entropy[m]) if m in c.entropy else "–"
        lines.append(f"| {m} | {stuck} | {entropy} |")
    return lines


def _gap_table(c: TaskComparison) -> list[str]:
    lines = ["", f"| method | gap | gap by seed | gap minus {c.reference}'s, paired by seed |", "|---|---|---|---|"]
    for m in sorted(c.gap, key=lambda m: -c.gap[m][0]):
        by_seed = ", ".join(f"s{s}: {v:.1f}" for s, v in c.gap_per_seed[m].items())
        paired = len(set(c.gap_per_seed[m]) & set(c.gap_per_seed.get(c.reference, {})))
        versus = _cell(c.versus[m]) + f" (n={paired})" if m in c.versus else "–"
        lines.append(f"| {m} | {_cell(c.gap[m])} | {by_seed} | {versus} |")
    return lines


def tuning_table(whole: Sequence[TaskComparison], ends: Sequence[TaskComparison] = ()) -> str:
    """``tuning.md``: each method's grid points with their whole-task gap (the primary measure, which chooses),
    their end-of-task gap and their whole-task gap minus the reference's, paired by seed; the chosen point in
    bold. Empty when no method has more than one point."""
    end_of = {c.experiment: c for c in ends}
    lines: list[str] = []
    for c in whole:
        grids = tuning(c)
        if not any(len(t.points) > 1 for t in grids):
            continue
        end = end_of.get(c.experiment)
        lines += [
            "",
            f"## {c.experiment}",
            "",
            "| method | grid point | whole-task gap | end-of-task gap | "
            f"whole-task gap minus {c.reference}'s | seeds |",
            "|---|---|---|---|---|---|",
        ]
        for t in grids:
            for p in t.points:
                name = f"**{p}** (chosen)" if p == t.chosen and len(t.points) > 1 else p
                end_gap = _cell(end.gap[p]) if end is not None and p in end.gap else "–"
                versus = _cell(c.versus[p]) if p in c.versus else "–"
                gap = _cell(c.gap[p]) if p in c.gap else "–"
                seeds = ", ".join(
                    [str(s) for s in c.gap_per_seed.get(p, {})]
                    + [f"**{s} stopped at env step {step:.0f}**" for s, step in c.stopped.get(p, {}).items()]
                )
                lines.append(f"| {t.method} | {name} | {gap} | {end_gap} | {versus} | {seeds} |")
    if not lines:
        return ""
    head = [
        "# Tuning: each method's grid against fresh networks",
        "",
        "Per grid point, the plasticity gap (continual minus fresh, per seed averaged over tasks >= 1), IQM over the "
        "seeds [95% stratified-bootstrap interval]. The chosen point of each method has the highest whole-task gap "
        "(the primary measure) among its points that no seed stopped on a non-finite value (such a seed is left "
        "out of the intervals and named); the end-of-task gap is shown beside it.",
    ]
    return "\n".join(head + lines) + "\n"


def paired_table(whole: Sequence[TaskComparison], ends: Sequence[TaskComparison], bootstrap: Bootstrap) -> str:
    """``paired.md``: every two methods at their chosen points (by the whole-task gap; an evaluation's only
    points), the one of the higher whole-task gap first, with its gap minus the other's, paired by seed, by both
    measures; bold where the interval leaves out 0. Empty with fewer than two methods."""
    end_of = {c.experiment: c for c in ends}
    lines: list[str] = []
    for c in whole:
        order = chosen_points(c)
        pairs = paired_differences(c, order, bootstrap)
        if not pairs:
            continue
        end = end_of.get(c.experiment)
        end_pairs = paired_differences(end, order, bootstrap) if end is not None else {}
        lines += [
            "",
            f"## {c.experiment}",
            "",
            "| method | minus | whole-task gap difference | end-of-task gap difference | seeds |",
            "|---|---|---|---|---|",
        ]
        for (a, b), (cell, n) in pairs.items():
            end_cell = _marked(end_pairs[a, b][0]) if (a, b) in end_pairs else "–"
            lines.append(f"| {a} | {b} | {_marked(cell)} | {end_cell} | {n} |")
    if not lines:
        return ""
    head = [
        "# Paired differences between methods",
        "",
        "Every two methods at their chosen points (the highest whole-task gap of each method's grid; in an "
        "evaluation, its only point), the one of the higher whole-task gap first. Per seed, its plasticity gap "
        "minus the other's (the same seed has the same tasks and the same fresh networks), IQM over the seeds both "
        f"ran [{bootstrap.confidence:.0%} stratified-bootstrap interval]. **Bold**: the interval leaves out 0.",
    ]
    return "\n".join(head + lines) + "\n"


def _marked(cell: tuple[float, float, float]) -> str:
    """A cell, bold where its interval leaves out 0."""
    return f"**{_cell(cell)}**" if cell[1] > 0 or cell[2] < 0 else _cell(cell)
