"""The summary: per experiment, method and quantity, each run's final value keyed by seed, the mean with its
percentile-bootstrap interval and the IQM with its stratified-bootstrap interval (rliable)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from syre_rl.agents.analysis.phases import phase_samples, task_samples
from syre_rl.agents.analysis.runs import (
    ENTROPY_LOSS,
    FRICTION,
    ONLINE_ACCURACY,
    PLASTICITY,
    RETURN,
    SEEN_ACCURACY,
    STOPPED_AT,
    TASK,
    TEST_ACCURACY,
    Methods,
    Run,
    Scalars,
    logged,
    stopped_at,
)
from syre_rl.agents.analysis.stats import Bootstrap, final_value

SUMMARY_METRICS = ("effective_rank", "dead_units", "duplicate_units", "duplicate_units_learned")

Column = dict[str, dict[int, float]]  # one summary column of an experiment: method -> seed -> value


@dataclass(frozen=True)
class SummaryRow:
    """One quantity of one method of one experiment, over its runs.

    :param experiment: env id or benchmark name
    :param method: method or run label
    :param quantity: the summary column, e.g. ``return``, ``return_phase1``, ``actor/layer1/effective_rank``
    :param tag: the scalar tag it reduces
    :param values: each run's value, keyed by seed, seeds in order
    :param mean: mean over runs; ``ci_low``, ``ci_high``: its percentile-bootstrap interval
    :param iqm: interquartile mean over runs; ``iqm_low``, ``iqm_high``: its stratified-bootstrap interval
    """

    experiment: str
    method: str
    quantity: str
    tag: str
    values: dict[int, float]
    mean: float
    ci_low: float
    ci_high: float
    iqm: float
    iqm_low: float
    iqm_high: float

    @classmethod
    def of(
        cls, experiment: str, method: str, quantity: str, tag: str, values: dict[int, float], bootstrap: Bootstrap
    ) -> SummaryRow:
        """The row of ``values`` (seed -> value, at least one), its intervals from ``bootstrap``."""
        mean, low, high = bootstrap.mean(list(values.values()))
        iqm = bootstrap.iqm(list(values.values()))
        return cls(experiment, method, quantity, tag, dict(values), float(mean), float(low), float(high), *iqm)

    @property
    def n_seeds(self) -> int:
        """The number of runs (one per seed)."""
        return len(self.values)


def merge_rows(tables: Sequence[tuple[str, Sequence[SummaryRow]]], bootstrap: Bootstrap) -> list[SummaryRow]:
    """One table of rows from several (each named by its source, e.g. an earlier comparison's ``summary.csv``):
    per (experiment, method, quantity) the union of the tables' seeds, seeds in order, its intervals from
    ``bootstrap`` again, the rows in :func:`summarize`'s order (experiment, quantity, method). A seed in two
    tables must hold the same value in both (the same run, or one that reproduces exactly); anything else is
    refused, naming both sources.

    :raise ValueError: a seed whose values differ, or a quantity that reduces two different tags
    """
    merged: dict[tuple[str, str, str], tuple[str, dict[int, tuple[float, str]]]] = {}
    for source, rows in tables:
        for r in rows:
            key = (r.experiment, r.method, r.quantity)
            tag, values = merged.setdefault(key, (r.tag, {}))
            if r.tag != tag:
                raise ValueError(f"{', '.join(key)}: tag {r.tag!r} in {source}, but {tag!r} in an earlier table")
            for seed, value in r.values.items():
                if seed in values and values[seed][0] != value:
                    raise ValueError(
                        f"{', '.join(key)}, seed {seed}: {value:g} in {source} but {values[seed][0]:g} in "
                        f"{values[seed][1]}; a seed's run must be the same in every table (or reproduce exactly)"
                    )
                values.setdefault(seed, (value, source))
    quantities = list(dict.fromkeys(q for _, _, q in merged))
    order = sorted(merged, key=lambda k: (k[0], quantities.index(k[2]), k[1]))  # summarize's order
    return [
        SummaryRow.of(*key, merged[key][0], {s: merged[key][1][s][0] for s in sorted(merged[key][1])}, bootstrap)
        for key in order
    ]


def summary_quantities(tags: Iterable[str], extra_tags: Sequence[str] = ()) -> list[tuple[str, str, str]]:
    """The summary's columns for an experiment that logged ``tags``: (quantity, tag, reduction of each run).

    Plasticity metrics are those of each target's last logged (i.e. last hidden) layer.
    """
    tags = set(tags)
    wanted = [
        ("return", RETURN, "tail"),
        ("entropy_loss", ENTROPY_LOSS, "tail"),
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


def stopped_rows(runs: Iterable[Run], bootstrap: Bootstrap | None = None) -> list[SummaryRow]:
    """Per experiment and method with runs stopped on a non-finite value, the row :data:`STOPPED_AT`: each such
    seed's env step at the stop (their other numbers stop short, so the comparison leaves them out)."""
    by: dict[tuple[str, str], dict[int, float]] = {}
    for run in sorted(runs, key=lambda r: (r.experiment, r.method, r.seed)):
        step = stopped_at(run)
        if step is not None:
            by.setdefault((run.experiment, run.method), {})[run.seed] = float(step)
    bootstrap = bootstrap or Bootstrap()
    return [SummaryRow.of(e, m, STOPPED_AT, "stopped.json", v, bootstrap) for (e, m), v in by.items()]


def summarize(
    groups: dict[str, Methods],
    scalars: dict[Run, Scalars],
    extra_tags: Sequence[str] = (),
    bootstrap: Bootstrap | None = None,
) -> list[SummaryRow]:
    """A row for every method and :func:`summary_quantities` column that the method's runs logged; after the
    return, the return at the end of each friction phase (``return_phase<k>``) and each task (``return_task<k>``).

    :param groups: experiment -> method -> runs, one run per seed (:func:`~.runs.latest_repeats`)
    :param bootstrap: settings of the intervals (default: :class:`~.stats.Bootstrap`'s)
    """
    bootstrap = bootstrap or Bootstrap()
    rows = []
    for experiment, methods in groups.items():
        tags = logged(methods, scalars)
        for quantity, tag, how in summary_quantities(tags, extra_tags):
            columns = {quantity: _final_values(methods, scalars, tag, how)}
            column_tags = {}  # columns whose values come from another tag than the quantity's
            if quantity == "return" and FRICTION in tags:
                columns |= _columns({m: dict(enumerate(phase_samples(runs, scalars))) for m, runs in methods.items()})
            if quantity == "return" and TASK in tags:
                columns |= _columns({m: task_samples(runs, scalars) for m, runs in methods.items()}, "task")
                whole = {m: task_samples(runs, scalars, fraction=1.0) for m, runs in methods.items()}
                columns |= _columns(whole, "task", "mean_return")
                if ENTROPY_LOSS in tags:
                    entropy = {m: task_samples(runs, scalars, value=ENTROPY_LOSS) for m, runs in methods.items()}
                    entropy_columns = _columns(entropy, "task", "entropy_loss")
                    columns |= entropy_columns
                    column_tags |= dict.fromkeys(entropy_columns, ENTROPY_LOSS)
            rows += [  # quantity outermost: its rows keep the columns' order
                SummaryRow.of(experiment, method, name, column_tags.get(name, tag), values, bootstrap)
                for name, column in columns.items()
                for method, values in column.items()
                if values
            ]
    return rows


def _final_values(methods: Methods, scalars: dict[Run, Scalars], tag: str, how: str) -> Column:
    """Each run's :func:`~.stats.final_value` of ``tag``, of the runs that logged it."""
    return {
        m: {run.seed: final_value(scalars[run][tag][1], how) for run in runs if tag in scalars[run]}
        for m, runs in methods.items()
    }


def _columns(
    samples: dict[str, dict[int, dict[int, float]]], kind: str = "phase", name: str = "return"
) -> dict[str, Column]:
    """method -> phase (or task) k -> seed -> return, as columns ``<name>_<kind><k>``, k in order."""
    ks = sorted({k for per_method in samples.values() for k in per_method})
    return {f"{name}_{kind}{k}": {m: per_method.get(k, {}) for m, per_method in samples.items()} for k in ks}
