"""Every figure of a comparison (PNG, matplotlib): mean curves with bootstrap bands, friction phases, rliable's
performance profile, and continual tasks against fresh networks. A bare ``Figure`` renders with Agg without
pyplot, so importing this module never switches a user's backend."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from syre_rl.agents.analysis.phases import PHASE_TAIL, friction_marks, phase_samples
from syre_rl.agents.analysis.runs import (
    FRESH,
    FRICTION,
    ONLINE_ACCURACY,
    PLASTICITY,
    RETURN,
    SEEN_ACCURACY,
    TEST_ACCURACY,
    Methods,
    Run,
    Scalars,
    logged,
)
from syre_rl.agents.analysis.stats import Bootstrap, aggregate, stratified_interval
from syre_rl.agents.analysis.summary import SummaryRow
from syre_rl.agents.analysis.tasks import TaskComparison
from syre_rl.agents.runs import atomic_write

# one figure per plasticity metric, named after it -> metric drawn dashed in the same colour in its panels
PLASTICITY_FIGURES = {"effective_rank": None, "dead_units": None, "duplicate_units": "duplicate_units_learned"}
PROFILE_SEEDS = 5  # performance profiles are drawn when every method of an experiment has this many runs
LEGEND_INSIDE = 6  # methods a panel's own legend holds; with more, one legend beside the figure

Panel = tuple[str, str, str | None]  # (title, solid tag, dashed tag or None)


def method_colors(methods: Iterable[str]) -> dict[str, str]:
    """One colour per method, distinct up to 20 methods: continual methods first in name order, fresh-network
    references (``fresh-task<k>``) after them; tab20's strong colours first, then its light ones."""
    order = sorted(methods, key=lambda m: (FRESH.match(m) is not None, m))
    tab20 = [to_hex(c) for c in colormaps["tab20"].colors]
    palette = [f"C{i}" for i in range(10)] if len(order) <= 10 else tab20[0::2] + tab20[1::2]
    return {method: palette[i % len(palette)] for i, method in enumerate(order)}


def plot_experiment(
    out: Path,
    suffix: str,
    methods: Methods,
    scalars: dict[Run, Scalars],
    rows: list[SummaryRow],
    colors: dict[str, str],
    bootstrap: Bootstrap,
) -> None:
    """One experiment's figures, named ``<figure><suffix>.png``: its curves (:func:`figures`), its friction phases
    when it logged friction, and the performance profile of its summary ``rows`` when every method has
    ``PROFILE_SEEDS`` runs."""
    tags = logged(methods, scalars)
    xlabel = "task" if any(tag.startswith("task/") for tag in tags) else "env steps"
    for name, (panels, friction) in figures(methods, scalars, tags).items():
        plot_curves(out / f"{name}{suffix}.png", panels, methods, scalars, colors, xlabel, friction, bootstrap)
    if RETURN in tags and FRICTION in tags:
        plot_phases(out / f"phases{suffix}.png", methods, scalars, colors, bootstrap)
    if min(len(runs) for runs in methods.values()) >= PROFILE_SEEDS:
        plot_profile(out / f"profile{suffix}.png", rows, colors, bootstrap)


def figures(
    methods: Methods, scalars: dict[Run, Scalars], tags: set[str]
) -> dict[str, tuple[list[Panel], list[tuple[float, float | None]]]]:
    """figure name -> (panels, friction changes to mark) for one experiment that logged ``tags``."""
    figs = {}
    if RETURN in tags:
        friction = friction_marks([scalars[run] for group in methods.values() for run in group])
        title = "episode return" + (" (frictions differ by seed)" if any(v is None for _, v in friction) else "")
        figs["return"] = ([(title, RETURN, None)], friction)
    if TEST_ACCURACY in tags:
        seen = SEEN_ACCURACY if SEEN_ACCURACY in tags else None
        panels = [
            ("test accuracy after each task" + (" (dashed: mean over seen tasks)" if seen else ""), TEST_ACCURACY, seen)
        ]
        figs["accuracy"] = (panels + [("online accuracy", ONLINE_ACCURACY, None)] * (ONLINE_ACCURACY in tags), [])
    layers = sorted({(m["target"], int(m["layer"])) for m in filter(None, map(PLASTICITY.match, tags))})
    for metric, dashed in PLASTICITY_FIGURES.items():
        if panels := [p for target, layer in layers if (p := _plasticity_panel(tags, target, layer, metric, dashed))]:
            figs[metric] = (panels, [])
    return figs


def _plasticity_panel(tags: set[str], target: str, layer: int, metric: str, dashed: str | None) -> Panel | None:
    prefix = f"plasticity/{target}/layer{layer}/"
    if prefix + metric not in tags:
        return None
    extra = prefix + dashed if dashed and prefix + dashed in tags else None
    return f"{metric}: {target} layer{layer}" + (f" (dashed: {dashed})" if extra else ""), prefix + metric, extra


def plot_curves(
    path: Path,
    panels: list[Panel],
    methods: Methods,
    scalars: dict[Run, Scalars],
    colors: dict[str, str],
    xlabel: str,
    friction: list[tuple[float, float | None]],
    bootstrap: Bootstrap,
) -> None:
    """Panels of mean curves over each method's runs with their bootstrap bands, friction changes marked."""
    ncols = min(len(panels), 3)
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(5.5 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (title, solid, dashed) in zip(axes, panels):
        for method, runs in methods.items():
            _draw_method(ax, method, runs, scalars, ((solid, "-"), (dashed, "--")), colors[method], bootstrap)
        _mark_friction(ax, friction)
        ax.set(title=title, xlabel=xlabel)
        ax.title.set_fontsize(10)
        if len(methods) <= LEGEND_INSIDE:
            ax.legend(fontsize=8)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    if len(methods) > LEGEND_INSIDE:  # one legend beside the panels, so that it covers no curve
        entries = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
        fig.legend(entries.values(), entries.keys(), loc="outside right upper", fontsize=8)
    _save(fig, path)


def _draw_method(
    ax: Axes,
    method: str,
    runs: list[Run],
    scalars: dict[Run, Scalars],
    styles: tuple[tuple[str | None, str], ...],
    color: str,
    bootstrap: Bootstrap,
) -> None:
    """One method's mean curve and band of each (tag, line style); tags its runs did not log are skipped."""
    for tag, style in styles:
        curves = [scalars[run][tag] for run in runs if tag in scalars[run]]
        if not curves:
            continue
        try:
            curve = aggregate(curves, bootstrap.confidence, bootstrap.n_resamples, bootstrap.seed)
        except ValueError as err:
            raise ValueError(f"{tag} of {method} runs in {runs[0].experiment}: {err}") from None
        label = f"{method} (n={curve.n_seeds})" if style == "-" else None
        ax.plot(curve.x, curve.mean, style, color=color, label=label)
        ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.2, lw=0)


def _mark_friction(ax: Axes, friction: list[tuple[float, float | None]]) -> None:
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


def plot_profile(path: Path, rows: list[SummaryRow], colors: dict[str, str], bootstrap: Bootstrap) -> None:
    """rliable's performance profile of an experiment's headline quantity (its first summary column: the return,
    or the first accuracy): for every threshold, the fraction of each method's runs scoring above it, with
    stratified-bootstrap bands."""
    quantity = rows[0].quantity
    scores = {
        r.method: np.array(list(r.values.values()), dtype=float).reshape(-1, 1) for r in rows if r.quantity == quantity
    }
    everything = np.concatenate(list(scores.values()))
    taus = np.linspace(everything.min(), everything.max(), 101)

    def profile(x: np.ndarray) -> np.ndarray:  # rliable's run-score distribution: the fraction of runs above tau
        return (x.reshape(-1, 1) > taus).mean(axis=0)

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for method, x in scores.items():
        low, high = stratified_interval(x, profile, bootstrap.confidence, bootstrap.n_resamples, bootstrap.seed)
        ax.plot(taus, profile(x), color=colors[method], label=f"{method} (n={len(x)})")
        ax.fill_between(taus, low, high, color=colors[method], alpha=0.15)
    ax.set(
        title=f"performance profile: {quantity}",
        xlabel=f"{quantity} threshold tau",
        ylabel="fraction of runs with score > tau",
        ylim=(-0.02, 1.02),
    )
    ax.title.set_fontsize(10)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_phases(
    path: Path, methods: Methods, scalars: dict[Run, Scalars], colors: dict[str, str], bootstrap: Bootstrap
) -> None:
    """Return at the end of each friction phase: mean over seeds with its interval, one line per method."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for i, (method, runs) in enumerate(methods.items()):
        points = [
            (k, *bootstrap.mean(list(samples.values())), len(samples))
            for k, samples in enumerate(phase_samples(runs, scalars))
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
    _save(fig, path)


def plot_tasks(path: Path, c: TaskComparison, colors: dict[str, str]) -> None:
    """``tasks.png`` (``tasks_whole.png`` for the whole-task measure): left, the return at the end of every task (or
    averaged over it), each method against the fresh networks (black); right, each method's plasticity gap with its
    interval (below 0: worse than a fresh network)."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1.6, 1])
    k = np.array(c.tasks)
    fresh = np.array([c.fresh[t] for t in c.tasks])
    left.fill_between(k, fresh[:, 1], fresh[:, 2], color="k", alpha=0.1)
    left.plot(k, fresh[:, 0], "k--o", label="fresh network", markersize=4)
    for method, cells in c.returns.items():
        ts = [t for t in c.tasks if t in cells]
        left.plot(ts, [cells[t][0] for t in ts], "-o", color=colors.get(method), label=method, markersize=3)
    what = "at the end of each task" if c.measure == "end" else "averaged over each task"
    left.set(title=f"return {what} (IQM over seeds)", xlabel="task k", ylabel="episode return")
    left.xaxis.get_major_locator().set_params(integer=True)
    left.legend(fontsize=7, ncol=2)
    order = sorted(c.gap, key=lambda m: c.gap[m][0])
    for y, method in enumerate(order):
        iqm, low, high = c.gap[method]
        seeds = list(c.gap_per_seed[method].values())
        right.errorbar([iqm], [y], xerr=[[iqm - low], [high - iqm]], fmt="o", color=colors.get(method), capsize=3)
        right.scatter(seeds, [y] * len(seeds), s=8, color=colors.get(method), alpha=0.4)
    right.axvline(0, color="k", lw=0.8)
    right.set_yticks(range(len(order)), order)
    right.set(title="plasticity gap vs fresh (IQM, 95% CI; dots: seeds)", xlabel="return minus fresh network's")
    for ax in (left, right):
        ax.title.set_fontsize(10)
    fig.suptitle(c.experiment, fontsize=10)
    _save(fig, path)


def _save(fig: Figure, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
