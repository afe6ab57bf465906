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
- ``tasks.md`` (runs labelled ``fresh-task<k>`` beside permuted-observation task runs): each method's return at the
  end of task k against a fresh network's on task k, and the plasticity gap with each seed's value and its
  difference from vanilla's, paired by seed (:func:`plasticity_gaps`); ``tasks.png`` draws the returns per task
  and the gaps with their intervals
- ``summary.md``: the inputs, then per experiment a table, one row per method, of final values (IQM [95%
  stratified-bootstrap CI], from rliable), and a table of each run's value of the headline columns;
  ``summary.csv``: one row per (experiment, method, quantity) with the IQM and its interval, the mean and its
  percentile-bootstrap interval, and every run's value
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

from syre_rl.agents.runs import atomic_write

RUN_NAME = re.compile(r"^(?P<method>.+)_s(?P<seed>\d+)(?:_(?P<repeat>\d+))?$")
PLASTICITY = re.compile(r"^plasticity/(?P<target>[^/]+)/layer(?P<layer>\d+)/(?P<metric>[^/]+)$")
RETURN, FRICTION, TASK = "rollout/ep_rew_mean", "env/friction", "env/task"
TEST_ACCURACY, SEEN_ACCURACY, ONLINE_ACCURACY = "task/test_accuracy", "task/mean_seen_accuracy", "task/online_accuracy"
# one figure per plasticity metric, named after it -> metric drawn dashed in the same colour in its panels
PLASTICITY_FIGURES = {"effective_rank": None, "dead_units": None, "duplicate_units": "duplicate_units_learned"}
SUMMARY_METRICS = ("effective_rank", "dead_units", "duplicate_units", "duplicate_units_learned")
TAIL_FRACTION = 0.1  # the summary's return: mean over this last fraction of each run's points
PHASE_TAIL = 0.25  # a friction phase's return: mean over this last fraction of the phase's points
PROFILE_SEEDS = 5  # performance profiles are drawn when every method of an experiment has this many runs
FRESH = re.compile(r"^fresh-task(?P<task>\d+)$")
LEGEND_INSIDE = 6  # methods a panel's own legend holds; with more, one legend beside the figure

Scalars = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Run:
    """One training run.

    :param path: the folder holding its event files
    :param experiment: env id or benchmark name (else the parent folder's name)
    :param method: e.g. ``vanilla``, ``syre``, ``syre-ar``
    :param seed: its seed
    :param repeat: K of a ``METHOD_sSEED_K`` folder, 1 otherwise
    """

    path: Path
    experiment: str
    method: str
    seed: int
    repeat: int = 1


@dataclass
class Curve:
    """One tag averaged over runs.

    :param x: env steps or task indices, shape (points,)
    :param mean: mean over runs, shape (points,)
    :param low: lower end of the confidence interval of the mean, shape (points,)
    :param high: upper end, shape (points,)
    :param n_seeds: number of runs averaged
    """

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_seeds: int


def find_runs(root: str | Path) -> list[Run]:
    """Every folder under ``root`` (``root`` included) holding TensorBoard event files, sorted by path.

    :raise ValueError: ``root`` is not a folder, or a run's method and seed cannot be told
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"runs folder '{root}' does not exist or is not a folder")
    return [_describe(folder) for folder in sorted({p.parent for p in root.rglob("events.out.tfevents.*")})]


def _describe(folder: Path) -> Run:
    match = RUN_NAME.match(folder.name)
    info = {"method": match["method"], "seed": match["seed"]} if match else {}
    experiment = None
    if (folder / "config.json").is_file():
        try:
            config = json.loads((folder / "config.json").read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{folder / 'config.json'} is not valid JSON: {err}") from None
        info.update({key: config[key] for key in ("method", "seed") if config.get(key) is not None})
        if config.get("label"):  # a variant of a method (e.g. one decay of a sweep) is compared as its own group
            info["method"] = config["label"]
        experiment = config.get("env") or config.get("benchmark")
    if "method" not in info or "seed" not in info:
        raise ValueError(
            f"cannot tell the method and seed of run '{folder}': no config.json with 'method' and "
            f"'seed', and the folder name is not METHOD_sSEED or METHOD_sSEED_K"
        )
    return Run(
        folder,
        str(experiment or folder.parent.name),
        str(info["method"]),
        int(info["seed"]),
        int(match["repeat"] or 1) if match else 1,
    )


def load_scalars(run: Run | str | Path) -> Scalars:
    """All scalar tags of a run, every point (no subsampling).

    :return: tag -> (steps, values), both float arrays sorted by step; a step logged twice keeps its last value
    :raises ValueError: naming an event file that holds no readable event (an event file starts with one)
    """
    folder = Path(run.path if isinstance(run, Run) else run)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        try:
            readable = next(iter(EventFileLoader(str(path)).Load()), None) is not None
        except Exception:  # TensorBoard's readers raise their own DataLossError and friends
            readable = False
        if not readable:
            raise ValueError(f"{path} is not a readable TensorBoard event file; move it away to compare the rest")
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {}
    for tag in events.Tags()["scalars"]:
        points = events.Scalars(tag)
        steps = np.array([p.step for p in points], dtype=float)
        values = np.array([p.value for p in points], dtype=float)
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
        keep = np.append(steps[1:] != steps[:-1], True)  # np.interp needs increasing x
        scalars[tag] = (steps[keep], values[keep])
    return scalars


def latest_repeats(runs: Iterable[Run]) -> tuple[list[Run], list[Run]]:
    """Keep one run per (experiment, method, seed), the latest repeat, so that a seed counts once in the
    intervals; returns (kept, left out)."""
    latest: dict[tuple, Run] = {}
    for run in runs:
        key = (run.experiment, run.method, run.seed)
        if key not in latest or (run.repeat, str(run.path)) > (latest[key].repeat, str(latest[key].path)):
            latest[key] = run
    kept = set(map(id, latest.values()))
    return list(latest.values()), [run for run in runs if id(run) not in kept]


def group_runs(runs: Iterable[Run]) -> dict[str, dict[str, list[Run]]]:
    """experiment -> method -> runs, all sorted."""
    groups: dict[str, dict[str, list[Run]]] = {}
    for run in sorted(runs, key=lambda r: (r.experiment, r.method, r.seed, r.repeat, str(r.path))):
        groups.setdefault(run.experiment, {}).setdefault(run.method, []).append(run)
    return groups


def align(curves: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Put several runs' curves of one tag on common x values: their shared x when all runs have the same x;
    otherwise the x of the run with the fewest points inside the common range (latest start to earliest end),
    the other runs linearly interpolated there.

    :param curves: (x, values) per run, x increasing
    :return: x, shape (points,), and values, shape (runs, points)
    :raise ValueError: no curves, or x ranges that do not overlap
    """
    if not curves:
        raise ValueError("align needs at least one curve")
    xs = [np.asarray(x, dtype=float) for x, _ in curves]
    ys = [np.asarray(y, dtype=float) for _, y in curves]
    if all(np.array_equal(x, xs[0]) for x in xs):
        return xs[0], np.stack(ys)
    start, end = max(x[0] for x in xs), min(x[-1] for x in xs)
    inside = [x[(x >= start) & (x <= end)] for x in xs]
    grid = min((g for g in inside if len(g)), key=len, default=None)
    if grid is None:
        raise ValueError(f"the runs' x ranges do not overlap: {[(float(x[0]), float(x[-1])) for x in xs]}")
    return grid, np.stack([np.interp(grid, x, y) for x, y in zip(xs, ys)])


def bootstrap_ci(
    samples: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple:
    """Mean over runs (axis 0) and its percentile-bootstrap confidence interval, reproducible from ``seed``.

    :param samples: one value per run, shape (runs,), or one curve per run, shape (runs, points)
    :param confidence: coverage of the interval, in (0, 1)
    :param n_resamples: bootstrap resamples of the runs
    :param seed: seed of the resampling generator
    :return: (mean, low, high): floats for 1-d samples, arrays (points,) for 2-d; with one run, low = high = mean
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim not in (1, 2) or len(samples) == 0:
        raise ValueError(
            f"samples must be a non-empty array of shape (runs,) or (runs, points), got shape {samples.shape}"
        )
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    n, shape = len(samples), samples.shape[1:]
    mean = samples.mean(axis=0)
    if n == 1:  # nothing to resample: the interval is the point itself
        return mean[()], mean.copy()[()], mean.copy()[()]
    # A resample as counts per run: (resamples, runs) @ (runs, points) never holds resamples x runs x points.
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=n_resamples)
    means = counts @ samples.reshape(n, -1) / n
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail], axis=0)
    return mean[()], low.reshape(shape)[()], high.reshape(shape)[()]


def iqm_ci(
    samples: Sequence[float] | np.ndarray, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Interquartile mean over runs and its stratified-bootstrap confidence interval, from ``rliable``
    (Agarwal et al., NeurIPS 2021: the RL field's standard for few runs), reproducible from ``seed``.

    One experiment is one task of rliable's, so the strata are that task's runs. The IQM is the mean of the
    middle 50% of the runs (scipy's ``trim_mean(x, 0.25)``: with fewer than 4 runs nothing is trimmed, it is the
    mean); with one run the interval is the point itself.

    :return: (iqm, low, high)
    """
    from rliable import metrics  # imported here: arch and statsmodels make it slow to import

    scores = np.asarray(samples, dtype=float).reshape(-1, 1)
    iqm = float(metrics.aggregate_iqm(scores))
    if len(scores) == 1:
        return iqm, iqm, iqm
    low, high = _stratified_interval(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), confidence, n_resamples, seed
    )
    return iqm, float(low[0]), float(high[0])


def _stratified_interval(scores: np.ndarray, func, confidence: float, n_resamples: int, seed: int):
    """rliable's stratified bootstrap (percentile) interval of ``func(scores)``, as its ``get_interval_estimates``
    computes it, reproducible from ``seed``: rliable draws its resamples from NumPy's global generator (whatever
    ``random_state`` says), so that generator is seeded for the call and put back as it was after."""
    from rliable import library

    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        bootstrap = library.StratifiedBootstrap(scores, seed=np.random.default_rng(seed))
        interval = bootstrap.conf_int(func, reps=n_resamples, size=confidence, method="percentile")
    finally:
        np.random.set_state(saved)
    return interval[0], interval[1]


def aggregate(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
) -> Curve:
    """Mean curve over runs with its confidence band: :func:`align`, then :func:`bootstrap_ci` at every x.

    :param curves: (x, values) per run of one tag
    """
    x, values = align(curves)
    mean, low, high = bootstrap_ci(values, confidence, n_resamples, seed)
    return Curve(x, mean, low, high, len(values))


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


def phase_returns(scalars: Scalars, fraction: float = PHASE_TAIL, tag: str = FRICTION) -> np.ndarray:
    """One run's return at the end of each friction phase: the mean ``rollout/ep_rew_mean`` over the last
    ``fraction`` of the points inside the phase (from one ``env/friction`` change to the next; the first phase
    starts with the run, the last ends with its last return point). The last phase counts only when it is
    complete, at least 90% as long as the median of the earlier ones: a run stopped mid-phase, or a change at
    its very end, would otherwise report a phase it did not finish. A phase without return points is NaN.

    :param tag: the scalar whose changes end the phases: ``env/friction``, or ``env/task`` (:func:`task_returns`)
    :return: shape (phases,)
    """
    steps, returns = scalars[RETURN]
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


def task_returns(scalars: Scalars, fraction: float = PHASE_TAIL) -> dict[int, float]:
    """One run's return at the end of each permuted-observation task (``env/task``), keyed by the task: a
    continual run's task k and a fresh network's run on task k (``train.py --first-task k``) land in the same
    summary column ``return_task<k>``. Phases as in :func:`phase_returns`."""
    steps, tasks = scalars[TASK]
    labels = [int(tasks[0])] + [int(value) for _, value in friction_changes(steps, tasks)]
    return {k: float(v) for k, v in zip(labels, phase_returns(scalars, fraction, TASK)) if np.isfinite(v)}


def final_value(values: np.ndarray, how: str) -> float:
    """One run's summary number of a tag: its ``first`` or ``last`` point, or the mean of its ``tail``
    (the last ``TAIL_FRACTION`` of its points, at least one) or ``head`` (the first ones)."""
    n = max(1, int(len(values) * TAIL_FRACTION))
    if how == "tail":
        return float(np.mean(values[-n:]))
    if how == "head":
        return float(np.mean(values[:n]))
    if how in ("first", "last"):
        return float(values[0 if how == "first" else -1])
    raise ValueError(f"unknown reduction '{how}'; valid: first, last, head, tail")


def summary_quantities(tags: Iterable[str], extra_tags: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """The summary's columns for an experiment that logged ``tags``: (quantity, tag, reduction of each run).

    Plasticity metrics are those of each target's last logged (i.e. last hidden) layer.
    """
    tags = set(tags)
    wanted = [
        ("return", RETURN, "tail"),
        ("first_task_accuracy", TEST_ACCURACY, "first"),
        ("last_task_accuracy", TEST_ACCURACY, "last"),
        ("last_task_mean_seen_accuracy", SEEN_ACCURACY, "last"),
        ("online_accuracy_first10pct", ONLINE_ACCURACY, "head"),
        ("online_accuracy_last10pct", ONLINE_ACCURACY, "tail"),
    ]
    last_layer: dict[str, int] = {}
    for match in filter(None, map(PLASTICITY.match, tags)):
        last_layer[match["target"]] = max(last_layer.get(match["target"], 0), int(match["layer"]))
    for target, layer in sorted(last_layer.items()):
        wanted += [
            (f"{target}/layer{layer}/{m}", f"plasticity/{target}/layer{layer}/{m}", "last") for m in SUMMARY_METRICS
        ]
    wanted += [(tag, tag, "last") for tag in extra_tags]
    return [q for q in wanted if q[1] in tags]


def summarize(
    groups: dict[str, dict[str, list[Run]]], scalars: dict[Run, Scalars], extra_tags: Sequence[str] = (), **bootstrap
) -> list[dict]:
    """Rows of ``experiment, method, quantity, tag, mean, ci_low, ci_high, iqm, iqm_low, iqm_high, n_seeds, seeds,
    values`` for every method and :func:`summary_quantities` column that the method's runs logged: the mean with
    its percentile-bootstrap interval (:func:`bootstrap_ci`), the IQM with its stratified-bootstrap interval
    (:func:`iqm_ci`, rliable), and each run's value (``values``, in the order of ``seeds``, ``;``-separated).

    :param bootstrap: ``confidence``, ``n_resamples``, ``seed`` for :func:`bootstrap_ci` and :func:`iqm_ci`
    """
    rows = []

    def add(experiment: str, method: str, quantity: str, tag: str, samples: list[tuple[int, float]]) -> None:
        if samples:
            values = [v for _, v in samples]
            mean, low, high = bootstrap_ci(values, **bootstrap)
            iqm, iqm_low, iqm_high = iqm_ci(values, **bootstrap)
            rows.append(
                dict(
                    experiment=experiment,
                    method=method,
                    quantity=quantity,
                    tag=tag,
                    mean=float(mean),
                    ci_low=float(low),
                    ci_high=float(high),
                    iqm=iqm,
                    iqm_low=iqm_low,
                    iqm_high=iqm_high,
                    n_seeds=len(samples),
                    seeds=";".join(str(seed) for seed, _ in samples),
                    values=";".join(f"{v:.6g}" for v in values),
                )
            )

    for experiment, methods in groups.items():
        tags = _logged(methods, scalars)
        for quantity, tag, how in summary_quantities(tags, extra_tags):
            for method, runs in methods.items():  # quantity outermost: its rows keep the columns' order
                add(
                    experiment,
                    method,
                    quantity,
                    tag,
                    [(run.seed, final_value(scalars[run][tag][1], how)) for run in runs if tag in scalars[run]],
                )
            if quantity == "return" and FRICTION in tags:  # then the return at the end of each friction phase
                phases = {m: _phase_samples(runs, scalars) for m, runs in methods.items()}
                for k in range(max(map(len, phases.values()))):
                    for method, samples in phases.items():
                        add(experiment, method, f"return_phase{k}", RETURN, samples[k] if k < len(samples) else [])
            if quantity == "return" and TASK in tags:  # then the return at the end of each task, by task
                per_run = {
                    m: [
                        (run.seed, task_returns(scalars[run]))
                        for run in runs
                        if RETURN in scalars[run] and TASK in scalars[run]
                    ]
                    for m, runs in methods.items()
                }
                for k in sorted({k for runs in per_run.values() for _, r in runs for k in r}):
                    for method, runs in per_run.items():
                        add(experiment, method, f"return_task{k}", RETURN, [(s, r[k]) for s, r in runs if k in r])
    return rows


def _phase_samples(runs: list[Run], scalars: dict[Run, Scalars]) -> list[list[tuple[int, float]]]:
    """Per friction phase, (seed, :func:`phase_returns`) of the runs that have it (NaNs left out); runs that
    logged no friction have no phases."""
    per_run = [
        (run.seed, phase_returns(scalars[run])) for run in runs if RETURN in scalars[run] and FRICTION in scalars[run]
    ]
    return [
        [(seed, float(r[k])) for seed, r in per_run if k < len(r) and np.isfinite(r[k])]
        for k in range(max((len(r) for _, r in per_run), default=0))
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
    runs = find_runs(root)
    if only:
        runs = [run for run in runs if any(fnmatch.fnmatchcase(run.method, p) for p in only)]
    if not runs:
        raise ValueError(
            f"no runs under '{root}'{' matching ' + ', '.join(only) if only else ''}: a run is a "
            f"folder holding TensorBoard event files (events.out.tfevents.*)"
        )
    runs, repeats = latest_repeats(runs)
    scalars = {run: load_scalars(run) for run in runs}
    logged = set().union(*scalars.values())
    if missing := [tag for tag in extra_tags if tag not in logged]:
        raise ValueError(f"no run logged the tag(s) {', '.join(missing)}; logged tags: {', '.join(sorted(logged))}")
    out = Path(out) if out is not None else Path(root) / "compare"
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    bootstrap = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    colors = method_colors({run.method for run in runs})
    for experiment, methods in groups.items():
        suffix = _suffix(experiment, groups)
        tags = _logged(methods, scalars)
        xlabel = "task" if any(tag.startswith("task/") for tag in tags) else "env steps"
        for name, (panels, friction) in _figures(methods, scalars, tags).items():
            _plot(out / f"{name}{suffix}.png", panels, methods, scalars, colors, xlabel, friction, bootstrap)
        if RETURN in tags and FRICTION in tags:
            _plot_phases(out / f"phases{suffix}.png", methods, scalars, colors, bootstrap)
    rows = summarize(groups, scalars, extra_tags, **bootstrap)
    for experiment, methods in groups.items():
        suffix = _suffix(experiment, groups)
        if min(len(runs) for runs in methods.values()) >= PROFILE_SEEDS:
            _plot_profile(
                out / f"profile{suffix}.png", [r for r in rows if r["experiment"] == experiment], colors, bootstrap
            )
    table = io.StringIO()
    writer = csv.DictWriter(
        table,
        [
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
        ],
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "summary.csv", lambda tmp: tmp.write_text(table.getvalue()))
    markdown = _markdown(Path(root), runs, groups, rows, confidence, n_resamples, repeats)
    atomic_write(out / "summary.md", lambda tmp: tmp.write_text(markdown))
    comparisons = plasticity_gaps(rows, **bootstrap)
    if comparisons:
        tasks = fresh_comparison(comparisons, confidence)
        atomic_write(out / "tasks.md", lambda tmp: tmp.write_text(tasks))
    for c in comparisons:
        _plot_tasks(out / f"tasks{_suffix(c.experiment, groups)}.png", c, colors)
    return out


def _suffix(experiment: str, groups: dict) -> str:
    """A figure's file name suffix: none for a single experiment, else ``_<experiment>`` (safe characters)."""
    return "" if len(groups) == 1 else "_" + re.sub(r"[^\w.-]", "_", experiment)


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """One colour per method, distinct up to 20 methods: continual methods first in name order, fresh-network
    references (``fresh-task<k>``) after them; tab20's strong colours first, then its light ones."""
    order = sorted(methods, key=lambda m: (FRESH.match(m) is not None, m))
    tab20 = [to_hex(c) for c in colormaps["tab20"].colors]
    palette = [f"C{i}" for i in range(10)] if len(order) <= 10 else tab20[0::2] + tab20[1::2]
    return {method: palette[i % len(palette)] for i, method in enumerate(order)}


@dataclass
class TaskComparison:
    """One experiment's continual methods against fresh networks (:func:`plasticity_gaps`). Cells are (IQM, low,
    high) over seeds; ``gap_per_seed`` holds each seed's gap, keyed by seed; ``versus`` each method's gap minus
    the reference method's, paired by seed (the same seed has the same tasks and the same fresh networks)."""

    experiment: str
    tasks: list[int]
    fresh: dict[int, tuple[float, float, float]]
    returns: dict[str, dict[int, tuple[float, float, float]]]
    gap: dict[str, tuple[float, float, float]]
    gap_per_seed: dict[str, dict[int, float]]
    reference: str
    versus: dict[str, tuple[float, float, float]]


def plasticity_gaps(
    rows: list[dict], confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0, reference: str = "vanilla"
) -> list[TaskComparison]:
    """Each continual method's return at the end of task k against a freshly initialised network's on the same
    task (runs labelled ``fresh-task<k>``), as IQM [stratified-bootstrap CI] over seeds, and the plasticity gap:
    per seed, the continual run's return minus the fresh run's, averaged over the tasks both have; negative means
    the network learns a new task worse than a fresh one does. Empty without fresh runs.

    :param rows: :func:`summarize`'s rows (their ``seeds`` and ``values``)
    :param reference: the method every other one is also compared with, seed by seed (when it ran)
    """
    values = {
        (r["experiment"], r["method"], r["quantity"]): dict(
            zip(map(int, r["seeds"].split(";")), map(float, r["values"].split(";")))
        )
        for r in rows
    }
    fresh = {
        (e, int(m["task"])): v
        for (e, method, q), v in values.items()
        if (m := FRESH.match(method)) and q == f"return_task{m['task']}"
    }
    stats = dict(confidence=confidence, n_resamples=n_resamples, seed=seed)
    comparisons = []
    for experiment in dict.fromkeys(e for e, _ in fresh):
        tasks = sorted(k for e, k in fresh if e == experiment)
        methods = [m for (e, m, q) in values if e == experiment and q == "return" and not FRESH.match(m)]
        returns, gap, gap_per_seed = {}, {}, {}
        for method in methods:
            own = {
                k: values[experiment, method, f"return_task{k}"]
                for k in tasks
                if (experiment, method, f"return_task{k}") in values
            }
            returns[method] = {k: iqm_ci(list(v.values()), **stats) for k, v in own.items()}
            per_seed = {}
            for s in sorted({s for k in tasks for s in fresh[experiment, k]}):
                pairs = [(own[k][s], fresh[experiment, k][s]) for k in own if s in own[k] and s in fresh[experiment, k]]
                if pairs:
                    per_seed[s] = float(np.mean([a - b for a, b in pairs]))
            if per_seed:
                gap_per_seed[method] = per_seed
                gap[method] = iqm_ci(list(per_seed.values()), **stats)
        base = gap_per_seed.get(reference, {})
        versus = {
            m: iqm_ci([g[s] - base[s] for s in g if s in base], **stats)
            for m, g in gap_per_seed.items()
            if m != reference and set(g) & set(base)
        }
        comparisons.append(
            TaskComparison(
                experiment,
                tasks,
                {k: iqm_ci(list(fresh[experiment, k].values()), **stats) for k in tasks},
                returns,
                gap,
                gap_per_seed,
                reference,
                versus,
            )
        )
    return comparisons


def fresh_comparison(comparisons: list[TaskComparison], confidence: float = 0.95) -> str:
    """``tasks.md``: :func:`plasticity_gaps` as tables, task by task, then the gap with every seed's value."""
    if not comparisons:
        return ""
    cell = "{:.1f} [{:.1f}, {:.1f}]".format
    lines = [
        "# Continual runs against fresh networks, task by task",
        "",
        f"Return at the end of each task (mean of `rollout/ep_rew_mean` over the task's last {PHASE_TAIL:.0%}), "
        f"IQM over seeds [{confidence:.0%} stratified-bootstrap interval, rliable]. Gap: per seed, the continual "
        "run's return minus the fresh network's on the same task, averaged over the tasks both have; below 0 "
        "the continual network learns new tasks worse than a fresh one (a loss of plasticity).",
    ]
    for c in comparisons:
        methods = list(c.returns)
        lines += [
            "",
            f"## {c.experiment}",
            "",
            "| task | fresh | " + " | ".join(methods) + " |",
            "|" + "---|" * (2 + len(methods)),
        ]
        for k in c.tasks:
            row = [str(k), cell(*c.fresh[k])] + [cell(*c.returns[m][k]) if k in c.returns[m] else "–" for m in methods]
            lines.append("| " + " | ".join(row) + " |")
        gaps = [cell(*c.gap[m]) + f" (n={len(c.gap_per_seed[m])})" if m in c.gap else "–" for m in methods]
        lines.append("| **gap** |  | " + " | ".join(gaps) + " |")
        lines += [
            "",
            f"| method | gap | gap by seed | gap minus {c.reference}'s, paired by seed |",
            "|---|---|---|---|",
        ]
        for m in sorted(c.gap, key=lambda m: -c.gap[m][0]):
            by_seed = ", ".join(f"s{s}: {v:.1f}" for s, v in c.gap_per_seed[m].items())
            paired = len(set(c.gap_per_seed[m]) & set(c.gap_per_seed.get(c.reference, {})))
            versus = cell(*c.versus[m]) + f" (n={paired})" if m in c.versus else "–"
            lines.append(f"| {m} | {cell(*c.gap[m])} | {by_seed} | {versus} |")
    return "\n".join(lines) + "\n"


def _plot_tasks(path: Path, c: TaskComparison, colors: dict[str, str]) -> None:
    """``tasks.png``: left, the return at the end of every task, each method against the fresh networks (black);
    right, each method's plasticity gap with its interval (below 0: worse than a fresh network)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    k = np.array(c.tasks)
    fresh = np.array([c.fresh[t] for t in c.tasks])
    left.fill_between(k, fresh[:, 1], fresh[:, 2], color="k", alpha=0.1)
    left.plot(k, fresh[:, 0], "k--o", label="fresh network", markersize=4)
    for method, cells in c.returns.items():
        ts = [t for t in c.tasks if t in cells]
        left.plot(ts, [cells[t][0] for t in ts], "-o", color=colors.get(method), label=method, markersize=3)
    left.set(title="return at the end of each task (IQM over seeds)", xlabel="task k", ylabel="episode return")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=7, ncol=2)
    order = sorted(c.gap, key=lambda m: c.gap[m][0])
    for y, method in enumerate(order):
        iqm, low, high = c.gap[method]
        right.errorbar([iqm], [y], xerr=[[iqm - low], [high - iqm]], fmt="o", color=colors.get(method), capsize=3)
        right.scatter(
            list(c.gap_per_seed[method].values()),
            [y] * len(c.gap_per_seed[method]),
            s=8,
            color=colors.get(method),
            alpha=0.4,
        )
    right.axvline(0, color="k", lw=0.8)
    right.set_yticks(range(len(order)), order)
    right.set(title="plasticity gap vs fresh (IQM, 95% CI; dots: seeds)", xlabel="return minus fresh network's")
    for ax in (left, right):
        ax.title.set_fontsize(10)
    fig.suptitle(c.experiment, fontsize=10)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _logged(methods: dict[str, list[Run]], scalars: dict[Run, Scalars]) -> set[str]:
    """The tags that some run of an experiment logged."""
    return set().union(*(scalars[run] for runs in methods.values() for run in runs))


def _figures(methods: dict[str, list[Run]], scalars: dict[Run, Scalars], tags: set[str]) -> dict[str, tuple]:
    """figure name -> (panels as (title, solid tag, dashed tag or None), friction changes) for one experiment
    that logged ``tags``."""
    runs = [run for group in methods.values() for run in group]
    figures = {}
    if RETURN in tags:
        friction = friction_marks([scalars[run] for run in runs])
        title = "episode return" + (" (frictions differ by seed)" if any(v is None for _, v in friction) else "")
        figures["return"] = ([(title, RETURN, None)], friction)
    if TEST_ACCURACY in tags:
        seen = SEEN_ACCURACY if SEEN_ACCURACY in tags else None
        panels = [
            ("test accuracy after each task" + (" (dashed: mean over seen tasks)" if seen else ""), TEST_ACCURACY, seen)
        ]
        figures["accuracy"] = (panels + [("online accuracy", ONLINE_ACCURACY, None)] * (ONLINE_ACCURACY in tags), [])
    layers = sorted({(m["target"], int(m["layer"])) for m in filter(None, map(PLASTICITY.match, tags))})
    for metric, dashed in PLASTICITY_FIGURES.items():
        panels = []
        for target, layer in layers:
            prefix = f"plasticity/{target}/layer{layer}/"
            if prefix + metric in tags:
                extra = prefix + dashed if dashed and prefix + dashed in tags else None
                panels.append(
                    (
                        f"{metric}: {target} layer{layer}" + (f" (dashed: {dashed})" if extra else ""),
                        prefix + metric,
                        extra,
                    )
                )
        if panels:
            figures[metric] = (panels, [])
    return figures


def _plot(
    path: Path,
    panels: list[tuple[str, str, str | None]],
    methods: dict[str, list[Run]],
    scalars: dict[Run, Scalars],
    colors: dict[str, str],
    xlabel: str,
    friction: list[tuple[float, float]],
    bootstrap: dict,
) -> None:
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    # A bare Figure renders with Agg without pyplot, so importing this module never switches a user's backend.
    fig = Figure(figsize=(5.5 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, solid, dashed) in zip(axes, panels):
        for method, runs in methods.items():
            for tag, style in ((solid, "-"), (dashed, "--")):
                logged = [scalars[run][tag] for run in runs if tag in scalars[run]]
                if not logged:
                    continue
                try:
                    curve = aggregate(logged, **bootstrap)
                except ValueError as err:
                    raise ValueError(f"{tag} of {method} runs in {runs[0].experiment}: {err}") from None
                label = f"{method} (n={curve.n_seeds})" if style == "-" else None
                ax.plot(curve.x, curve.mean, style, color=colors[method], label=label)
                ax.fill_between(curve.x, curve.low, curve.high, color=colors[method], alpha=0.2, lw=0)
        for x, value in friction:
            ax.axvline(x, color="grey", ls="--", lw=1)
            if value is not None:
                ax.annotate(
                    f"friction {value:.3g}",
                    (x, 0.98),
                    xycoords=ax.get_xaxis_transform(),
                    rotation=90,
                    ha="right",
                    va="top",
                    fontsize=8,
                    color="grey",
                )
        ax.set(title=title, xlabel=xlabel)
        ax.title.set_fontsize(10)
        if len(methods) <= LEGEND_INSIDE:
            ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if len(methods) > LEGEND_INSIDE:  # one legend beside the panels, so that it covers no curve
        entries = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
        fig.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _plot_profile(path: Path, rows: list[dict], colors: dict[str, str], bootstrap: dict) -> None:
    """rliable's performance profile of an experiment's headline quantity (its first summary column: the return,
    or the first accuracy): for every threshold, the fraction of each method's runs scoring above it, with
    stratified-bootstrap 95% bands."""
    quantity = rows[0]["quantity"]
    scores = {
        r["method"]: np.array([float(v) for v in r["values"].split(";")]).reshape(-1, 1)
        for r in rows
        if r["quantity"] == quantity
    }
    everything = np.concatenate(list(scores.values()))
    taus = np.linspace(everything.min(), everything.max(), 101)

    def profile(x: np.ndarray) -> np.ndarray:  # rliable's run-score distribution: the fraction of runs above tau
        return (x.reshape(-1, 1) > taus).mean(axis=0)

    profiles = {m: profile(x) for m, x in scores.items()}
    bands = {
        m: _stratified_interval(x, profile, bootstrap["confidence"], bootstrap["n_resamples"], bootstrap["seed"])
        for m, x in scores.items()
    }
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for method, profile in profiles.items():
        ax.plot(taus, profile, color=colors[method], label=f"{method} (n={len(scores[method])})")
        ax.fill_between(taus, bands[method][0], bands[method][1], color=colors[method], alpha=0.15)
    ax.set(
        title=f"performance profile: {quantity}",
        xlabel=f"{quantity} threshold tau",
        ylabel="fraction of runs with score > tau",
        ylim=(-0.02, 1.02),
    )
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _plot_phases(
    path: Path, methods: dict[str, list[Run]], scalars: dict[Run, Scalars], colors: dict[str, str], bootstrap: dict
) -> None:
    """Return at the end of each friction phase: mean over seeds with its interval, one line per method."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for i, (method, runs) in enumerate(methods.items()):
        points = [
            (k, *bootstrap_ci([v for _, v in samples], **bootstrap), len(samples))
            for k, samples in enumerate(_phase_samples(runs, scalars))
            if samples
        ]
        if not points:
            continue
        k, mean, low, high, n = map(np.array, zip(*points))
        x = k + 0.08 * (i - (len(methods) - 1) / 2)  # side by side within a phase
        ax.errorbar(
            x,
            mean,
            yerr=[mean - low, high - mean],
            fmt="o-",
            color=colors[method],
            capsize=3,
            label=f"{method} (n={n.max()})",
        )
    ax.set(
        title=f"return over the last {PHASE_TAIL:.0%} of each friction phase",
        ylabel="episode return",
        xlabel="friction phase k (summary column return_phase<k>)",
    )
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


def _markdown(
    root: Path,
    runs: list[Run],
    groups: dict[str, dict[str, list[Run]]],
    rows: list[dict],
    confidence: float,
    n_resamples: int,
    repeats: list[Run] = (),
) -> str:
    lines = [f"# Comparison of the runs under `{root}`", "", f"Inputs: RUNS_DIR `{root}`, {len(runs)} runs found:", ""]
    lines += [
        f"- `{run.path.relative_to(root)}`: experiment {run.experiment}, method {run.method}, seed {run.seed}"
        + (f", repeat {run.repeat}" if run.repeat > 1 else "")
        for run in runs
    ]
    if repeats:
        lines += [
            "",
            "Left out, as earlier repeats of a method and seed that a later run replaces (a seed counts once):",
            "",
        ] + [f"- `{run.path.relative_to(root)}`" for run in repeats]
    lines += [
        "",
        f"Cells: interquartile mean (IQM) over runs [{confidence:.0%} stratified-bootstrap confidence "
        f"interval, {n_resamples} resamples], from rliable (with fewer than 4 runs the IQM is the mean); with "
        f"a single seed the interval is the point itself. `summary.csv` also holds the mean with its "
        f"percentile-bootstrap interval, and every run's value. `seeds`: runs of the method, one run per "
        f"seed; `(n=...)` where fewer logged that column. `return`: mean over the last {TAIL_FRACTION:.0%} of "
        f"each run's points; `return_phase<k>`: mean over the last {PHASE_TAIL:.0%} of the points of friction "
        f"phase k (0 = the first); accuracies: each run's first or last task; `<target>/layer<i>/<metric>`: "
        f"last hidden layer, each run's last point.",
    ]
    for experiment, methods in groups.items():
        cells = {(row["method"], row["quantity"]): row for row in rows if row["experiment"] == experiment}
        quantities = list(dict.fromkeys(quantity for _, quantity in cells))
        lines += [
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
                    else f"{c['iqm']:.4g} [{c['iqm_low']:.4g}, {c['iqm_high']:.4g}]"
                    + (f" (n={c['n_seeds']})" if c["n_seeds"] < len(method_runs) else "")
                )
            lines.append("| " + " | ".join(row) + " |")
        headline = [q for q in quantities if "/" not in q][:4]
        if headline:  # the per-seed table: each run's value of the headline columns
            lines += [
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
                    values.append(
                        "–"
                        if c is None
                        else ", ".join(
                            f"s{seed}: {float(v):.4g}" for seed, v in zip(c["seeds"].split(";"), c["values"].split(";"))
                        )
                    )
                lines.append("| " + " | ".join([method, *values]) + " |")
    return "\n".join(lines) + "\n"
