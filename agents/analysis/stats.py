"""Statistics over runs: curves on common x values, the mean with its percentile-bootstrap interval, the IQM
with rliable's stratified-bootstrap interval, and a run's summary number of a tag. Pure functions of arrays."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

TAIL_FRACTION = 0.1  # the summary's return: mean over this last fraction of each run's points


@dataclass(frozen=True)
class Bootstrap:
    """Settings of every interval of a comparison (:func:`bootstrap_ci`, :func:`iqm_ci`).

    :param confidence: coverage of the intervals, in (0, 1)
    :param n_resamples: bootstrap resamples of the runs
    :param seed: seed of the resampling
    """

    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0

    def mean(self, samples: Sequence[float] | np.ndarray) -> tuple:
        """:func:`bootstrap_ci` of ``samples`` with these settings."""
        return bootstrap_ci(samples, self.confidence, self.n_resamples, self.seed)

    def iqm(self, samples: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
        """:func:`iqm_ci` of ``samples`` with these settings."""
        return iqm_ci(samples, self.confidence, self.n_resamples, self.seed)


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
    low, high = stratified_interval(
        scores, lambda x: np.array([metrics.aggregate_iqm(x)]), confidence, n_resamples, seed
    )
    return iqm, float(low[0]), float(high[0])


def stratified_interval(
    scores: np.ndarray, func: Callable[[np.ndarray], np.ndarray], confidence: float, n_resamples: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """rliable's stratified bootstrap (percentile) interval of ``func(scores)``, as its ``get_interval_estimates``
    computes it, reproducible from ``seed``: rliable draws its resamples from NumPy's global generator (whatever
    ``random_state`` says), so that generator is seeded for the call and put back as it was after.

    :param scores: shape (runs, 1): one rliable task
    :return: (low, high), each shaped as ``func``'s result
    """
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
