"""Sweeps: a grid of continual runs described in a YAML file, run in parallel worker processes, skipping runs
that finished and resuming runs that were interrupted (so a sweep can be stopped and restarted at any time).

    logdir: runs/exp2
    seeds: [0, 1, 2]
    base: {benchmark: permuted-mnist, tasks: 10, batch_size: 64}   # ContinualConfig fields for every run
    grid:                                 # one entry per group of runs; lists expand as a product
      - {method: vanilla, lr: [1.0e-3, 1.0e-2]}
      - {method: syre, lr: [1.0e-3, 1.0e-2], gamma: [1.0e-3, 1.0e-2], scale: [0.01, 0.1, 1.0]}

Keys that are ContinualConfig fields set the run; any other key must be a setting of the entry's method. Every
run gets a label naming what its entry sets, e.g. ``syre-lr0.01-gamma0.001-scale0.1``, used for its folder and
by ``compare.py`` (``--only 'syre-lr0.01-*'`` picks a slice). Unknown keys, wrong types and malformed YAML are
refused before any run starts.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syre_rl.agents.config import load_yaml
from syre_rl.agents.continual import CONFIG, ContinualConfig, load_checkpoint, run_continual
from syre_rl.agents.runs import DamagedFile, run_dirs
from syre_rl.methods import METHODS, method_defaults
from syre_rl.settings import Settings, check_keys, did_you_mean

# What the sweep sets for every run itself; the rest of ContinualConfig's fields may be in base or the grid.
SWEEP_SET = ("method", "method_args", "method_settings", "label", "seed", "resume", "progress")
RUN_FIELDS = [f.name for f in dataclasses.fields(ContinualConfig) if f.name not in SWEEP_SET]


@dataclass(frozen=True)
class SweepSpec(Settings):
    """A sweep specification (the module docstring shows one).

    :param seeds: the seeds every grid point runs with
    :param grid: entries of ``method`` plus run fields and method settings, each a value or a list of values
    :param logdir: root of the runs (default: ContinualConfig's)
    :param base: run fields shared by every run
    """

    owner = "sweep"
    seeds: list[int]
    grid: list[dict[str, Any]]
    logdir: str | None = None
    base: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"sweep seeds must be a non-empty list of distinct integers, got {self.seeds}")
        if not self.grid:
            raise ValueError("sweep grid is empty; give at least one entry with a 'method'")
        check_keys("sweep base", self.base, RUN_FIELDS)
        for entry in self.grid:
            if entry.get("method") not in METHODS:
                raise ValueError(f"grid entry {entry} needs a 'method' from {', '.join(METHODS)}")
            valid = RUN_FIELDS + list(method_defaults(entry["method"]))
            for key in entry:
                if key != "method" and key not in valid:
                    raise ValueError(f"grid entry for {entry['method']} has key {key!r}, neither a run field nor a "
                                     f"setting of {entry['method']}{did_you_mean(key, valid)}")


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower()


def expand(spec: SweepSpec) -> list[ContinualConfig]:
    """Every run of a sweep specification, checked (types and ranges of every value).

    :raises ValueError: naming the bad key or value
    """
    base = dict(spec.base, **({"logdir": spec.logdir} if spec.logdir is not None else {}))
    configs = []
    for entry in spec.grid:
        keys = [k for k in entry if k != "method"]
        choices = [entry[k] if isinstance(entry[k], list) else [entry[k]] for k in keys]
        for combo in itertools.product(*choices):
            values = dict(zip(keys, combo))
            label = "-".join([entry["method"], *(f"{k.replace('_', '')}{_value_text(v)}" for k, v in values.items())])
            fields = {k: v for k, v in values.items() if k in RUN_FIELDS}
            settings = {k: v for k, v in values.items() if k not in RUN_FIELDS}
            for seed in spec.seeds:
                cfg = ContinualConfig(**{**base, **fields}, method=entry["method"], label=label, seed=seed,
                                      method_args=settings, progress=False)
                configs.append(cfg.checked())
    labels = [(c.label, c.seed) for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError("two grid entries make the same run label; make the entries differ")
    return configs


def status(cfg: ContinualConfig) -> str:
    """``done`` (a run folder of this label and seed, whatever its ``_N`` suffix, whose verified checkpoint holds
    every task), ``partial`` (started: resumable in its own folder, from its checkpoint or from the start),
    ``damaged`` (its checkpoint fails its checksum) or ``new``."""
    started = [run for run in run_dirs(cfg.logdir, cfg.benchmark, cfg.label, cfg.seed) if (run / CONFIG).is_file()]
    if not started:
        return "new"
    try:
        state = load_checkpoint(started[-1])
    except DamagedFile:
        return "damaged"
    return "done" if state is not None and len(state["records"]) >= cfg.tasks else "partial"


def _run(cfg: ContinualConfig) -> tuple[str, int, float]:
    records = run_continual(cfg)
    return cfg.label, cfg.seed, records[-1]["test_accuracy"]


def run_sweep(configs: Sequence[ContinualConfig], workers: int = 1) -> list[tuple[str, int, float]]:
    """Run the configs not yet done, ``workers`` at a time (each worker a process with one torch thread),
    resuming partial ones in their own folders. A run that fails (a damaged checkpoint, a non-finite value) is
    reported in one line and the others go on. Returns (label, seed, last-task accuracy) of the runs made now.

    :raises RuntimeError: after all runs, when any failed (naming how many)
    """
    states = {id(c): status(c) for c in configs}
    todo = [dataclasses.replace(c, resume=states[id(c)] != "new", threads=c.threads or 1)
            for c in configs if states[id(c)] != "done"]
    todo.sort(key=lambda c: c.seed)  # seed by seed: a sweep cut short still has whole comparisons
    print(f"{len(configs)} runs, {len(configs) - len(todo)} done, {len(todo)} to run with {workers} worker(s)",
          flush=True)
    finished, failed = [], 0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(_run, cfg): cfg for cfg in todo}
        for i, future in enumerate(as_completed(futures), 1):
            cfg = futures[future]
            try:
                label, seed, accuracy = future.result()
            except ValueError as error:
                failed += 1
                print(f"[{i}/{len(todo)}] {cfg.label} seed {cfg.seed}: failed: {error}", flush=True)
                continue
            finished.append((label, seed, accuracy))
            print(f"[{i}/{len(todo)}] {label} seed {seed}: last-task accuracy {accuracy:.4f}", flush=True)
    if failed:
        raise RuntimeError(f"{failed} of {len(todo)} runs failed (see above); fix them and run the sweep again")
    return finished


def load_spec(path: str | Path) -> SweepSpec:
    """A sweep specification from YAML, checked.

    :raises ValueError: one line naming the file and the bad line, key or value
    """
    data = load_yaml(path, "sweep specification")
    try:
        return SweepSpec.from_dict(data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
