"""Sweeps: a grid of runs described in one YAML file, run as Ray tasks on this machine or on a Ray cluster,
skipping runs that finished and resuming runs that were interrupted (a sweep can be stopped and restarted at
any time, and a run whose worker or node dies is retried from its own checkpoint).

    runs: continual                        # a run kind of syre_rl.agents.kinds.RUN_KINDS: continual, rl, ...
    logdir: runs/exp2
    seeds: [0, 1, 2]
    cpus: 1                                # per run (its torch threads); gpus: 0.25 shares a GPU by four
    base: {benchmark: permuted-mnist, tasks: 10, batch_size: 64}   # run fields shared by every run
    grid:                                  # one entry per group of runs; lists expand as a product
      - {method: vanilla, lr: [1.0e-3, 1.0e-2]}
      - {method: syre, lr: [1.0e-3, 1.0e-2], method_args: {gamma: [1.0e-3, 1.0e-2], scale: [0.01, 0.1, 1.0]}}

A grid entry's keys are run fields of its kind (``ContinualConfig``'s for ``runs: continual``, ``TrainConfig``'s
for ``runs: rl``); the method's own settings go under ``method_args``. So a name that is both (ReDo's ``tau`` and
the metrics' dormancy threshold ``tau``) means one thing: a method setting at the top is refused, naming
``method_args``, and so is a name that is both (naming ``base`` for the run's). Every run gets a label naming what
its entry sets, e.g. ``syre-lr0.01-gamma0.001-scale0.1`` (or the entry's own ``label``), used for its folder and
by ``compare.py`` (``--only 'syre-lr0.01-*'`` picks a slice). Unknown keys, wrong types and malformed YAML are
refused before any run starts.

Why Ray (``ray.remote`` tasks): the same sweep runs on a laptop (a local Ray instance, as many runs at once as
the cores hold) and on a cluster (``--address``), with per-run CPU and GPU requests (fractions share a GPU), and
Ray re-runs a task whose worker process or node died; our part is only that a re-run resumes its run folder.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syre_rl.agents.config import load_yaml
from syre_rl.agents.kinds import RUN_KINDS, RunConfig, run_kind
from syre_rl.agents.reaper import start_reaper
from syre_rl.agents.runs import STOPPED, owned
from syre_rl.methods import METHODS, method_defaults
from syre_rl.settings import Settings, check_keys, check_range, did_you_mean

# the statuses a sweep does not run again, and what it says of them
ENDED = {"done": "done already", "stopped": f"stopped on a non-finite value earlier (see its {STOPPED})"}


def run_fields(runs: str) -> list[str]:
    """The run fields a sweep of kind ``runs`` may set in ``base`` or a grid entry."""
    config = run_kind(runs)
    return [f.name for f in dataclasses.fields(config) if f.name not in config.SWEEP_SET]


@dataclass(frozen=True)
class SweepSpec(Settings):
    """A sweep specification (the module docstring shows one).

    :param seeds: the seeds every grid point runs with
    :param grid: entries of ``method`` plus run fields and method settings, each a value or a list of values
    :param runs: the run kind, a name of :data:`~syre_rl.agents.kinds.RUN_KINDS` (``continual``: continual-learning
        runs, ``rl``: RL runs of any algorithm, ``teacher-student``)
    :param logdir: root of the runs (default: the run's own default, ``runs``)
    :param base: run fields shared by every run
    :param cpus: CPUs each run asks Ray for, also its torch threads (default 1)
    :param gpus: GPUs each run asks Ray for; a fraction shares one (0.25: four runs per GPU). Default 0
    :param retries: times a run is started again after its worker process or node died (default 3)
    :param batch_seeds: train the seeds of a grid point as one batched network (``--seeds``: continual runs,
        PPO), each in its own run folder as its single run; one Ray task of ``cpus`` CPUs per grid point. Default
        false: one run per task, as the published sweeps ran (batched seeds draw other random numbers)
    :param batch_settings: with ``batch_seeds``, grid points that differ only in the method's per-member settings
        (``Method.PER_MEMBER``: syre's gamma and scale, ReDo's tau, ...) train as one batch too, each member with
        its own settings: a method's tuning grid is one Ray task (PPO; :meth:`RunConfig.batch_key`). Default false
    :param max_batch: the most runs in one batch; a bigger group is split in order (label, seed) into batches of
        at most this many, so that one grid spreads over several cores. Default: no limit
    """

    owner = "sweep"
    seeds: list[int]
    grid: list[dict[str, Any]]
    runs: str = "continual"
    logdir: str | None = None
    base: dict[str, Any] = field(default_factory=dict)
    cpus: float = 1.0
    gpus: float = 0.0
    retries: int = 3
    batch_seeds: bool = False
    batch_settings: bool = False
    max_batch: int | None = None

    def check(self) -> None:
        if self.max_batch is not None and self.max_batch < 1:
            raise ValueError(f"sweep max_batch must be an integer >= 1 (or left out: no limit), got {self.max_batch}")
        if self.batch_settings and not self.batch_seeds:
            raise ValueError("sweep batch_settings batches grid points' seeds together: give batch_seeds: true too")
        if "logdir" in self.base and self.logdir is not None:
            raise ValueError(
                f"sweep logdir {self.logdir!r} and base logdir {self.base['logdir']!r}: give the run root once"
            )
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"sweep seeds must be a non-empty list of distinct integers >= 0, got {self.seeds}")
        if not self.grid:
            raise ValueError("sweep grid is empty; give at least one entry with a 'method'")
        check_range(self.owner, "cpus", self.cpus, low_open=True)
        check_range(self.owner, "gpus", self.gpus)
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"sweep gpus above 1 must be a whole number, got {self.gpus}")
        if self.retries < 0:
            raise ValueError(f"sweep retries must be >= 0, got {self.retries}")
        if self.runs not in RUN_KINDS:
            raise ValueError(f"sweep runs must be one of {', '.join(map(repr, RUN_KINDS))}, got {self.runs!r}")
        fields_ = run_fields(self.runs)
        if "seeds" in self.base or any("seeds" in entry for entry in self.grid):
            raise ValueError(
                "seeds are the sweep's own: give them once, at the top (seeds: [0, 1, 2]), not in base or grid"
            )
        renamed = run_kind(self.runs).RENAMED
        for where, keys in [("base", self.base), *(("grid entry", entry) for entry in self.grid)]:
            if old := next((k for k in keys if k in renamed), None):
                raise ValueError(f"sweep {where} has key {old!r}, which is now called {renamed[old]!r}; rename it")
        check_keys("sweep base", self.base, fields_)
        for entry in self.grid:
            check_entry(entry, fields_)
        device = self.base.get("device", _default(run_kind(self.runs), "device"))
        if self.gpus > 0 and device == "cpu":
            raise ValueError(f"sweep gpus {self.gpus:g} with runs on device cpu; set base device: cuda")
        if self.gpus == 0 and str(device).startswith("cuda"):
            raise ValueError(
                f"sweep runs on device {device} but asks for gpus 0 (Ray hides the GPUs from such runs); "
                "set gpus: 1, or a fraction to share one"
            )


def check_entry(entry: dict[str, Any], fields_: list[str]) -> None:
    """A grid entry: a ``method``, run fields, the method's settings under ``method_args`` and an optional
    ``label``; a method setting at the top, or anything else, is refused naming where it belongs."""
    if entry.get("method") not in METHODS:
        raise ValueError(f"grid entry {entry} needs a 'method' from {', '.join(METHODS)}")
    method, own = entry["method"], list(method_defaults(entry["method"]))
    for key in entry:
        if key in own and key in fields_:
            raise ValueError(
                f"grid entry for {method} has key {key!r}, both a run field and a setting of {method}: write "
                f"{method}'s under method_args ({{method: {method}, method_args: {{{key}: ...}}}}), the run's in base"
            )
        if key in own:
            raise ValueError(
                f"grid entry for {method} has key {key!r}, a setting of {method}: write it under method_args, e.g. "
                f"{{method: {method}, method_args: {{{key}: ...}}}}"
            )
        if key not in ("method", "label", "method_args", *fields_):
            raise ValueError(
                f"grid entry for {method} has key {key!r}, neither a run field nor a setting of {method}"
                f"{did_you_mean(key, [*fields_, *own])}; the method's own settings go under method_args"
            )
    args = entry.get("method_args", {})
    if not isinstance(args, dict):
        raise ValueError(f"grid entry for {method}: method_args must be a mapping of {method}'s settings, got {args!r}")
    check_keys(f"grid entry method_args for {method}", args, own)
    for key, value in [*entry.items(), *args.items()]:
        if value == []:
            raise ValueError(f"grid entry for {method}: {key} is an empty list, which would make no run; give values")
    if "label" in entry and not isinstance(entry["label"], str):
        raise ValueError(
            f"grid entry label must be one text (a list would give its runs one label), got {entry['label']!r}"
        )


def _default(config: type[RunConfig], name: str) -> Any:
    return next(f.default for f in dataclasses.fields(config) if f.name == name)


def _value_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value).lower()


def _points(entry: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any], str]]:
    """Every point of a grid entry: (run fields, method settings, label), lists expanded as a product in the
    entry's order (``method_args``' keys where ``method_args`` stands)."""
    keys = []
    for key, value in entry.items():
        if key == "method_args":
            keys += [("method", k, v) for k, v in value.items()]
        elif key not in ("method", "label"):
            keys.append(("run", key, value))
    choices = [v if isinstance(v, list) else [v] for _, _, v in keys]
    points = []
    for combo in itertools.product(*choices):
        values = [(where, k, v) for (where, k, _), v in zip(keys, combo)]
        label = entry.get("label") or "-".join(
            [entry["method"], *(f"{k.replace('_', '')}{_value_text(v)}" for _, k, v in values)]
        )
        run = {k: v for where, k, v in values if where == "run"}
        points.append((run, {k: v for where, k, v in values if where == "method"}, label))
    return points


def expand(spec: SweepSpec) -> list[RunConfig]:
    """Every run of a sweep specification, resolved (types and ranges of every value, presets and envs of RL
    runs checked).

    :raises ValueError: naming the bad key or value
    """
    config = run_kind(spec.runs)
    base = dict(spec.base, **({"logdir": spec.logdir} if spec.logdir is not None else {}))
    configs = []
    for entry in spec.grid:
        for run, settings, label in _points(entry):
            for seed in spec.seeds:
                cfg = config(
                    **{**base, **run},
                    method=entry["method"],
                    label=label,
                    seed=seed,
                    method_args=settings,
                    progress=False,
                    threads=max(1, int(spec.cpus)),
                )
                configs.append(cfg.resolved())
    labels = [(c.label, c.seed) for c in configs]
    if len(set(labels)) != len(labels):
        raise ValueError("two grid entries make the same run label; make the entries differ")
    return configs


def select(
    configs: Sequence[RunConfig], patterns: Sequence[str] | None, seeds: Sequence[int] | None = None
) -> list[RunConfig]:
    """Part of a sweep, in sweep order: the runs whose label matches one of the shell ``patterns`` (``fnmatch``;
    None: every label) and whose seed is one of ``seeds`` (None: every seed). Their run folders are the whole
    sweep's, so the whole sweep later skips them.

    :raises ValueError: a pattern that matches no run, or a seed the sweep has not, naming what there is
    """
    labels = list(dict.fromkeys(c.label for c in configs))
    if patterns is not None and (unmatched := [p for p in patterns if not fnmatch.filter(labels, p)]):
        raise ValueError(f"--only {' '.join(unmatched)} matches no run label; the labels: {', '.join(labels)}")
    known = sorted({c.seed for c in configs})
    if seeds is not None and (unknown := [s for s in seeds if s not in known]):
        raise ValueError(f"--seeds {unknown} are not seeds of this sweep; its seeds: {known}")
    return [
        c
        for c in configs
        if (patterns is None or any(fnmatch.fnmatchcase(c.label, p) for p in patterns))
        and (seeds is None or c.seed in seeds)
    ]


def status(cfg: RunConfig) -> str:
    """``done``, ``stopped``, ``partial``, ``damaged`` or ``new``: :meth:`~syre_rl.agents.kinds.RunConfig.status`."""
    return cfg.status()


def run_one(cfg: RunConfig, cwd: str | None = None) -> dict[str, Any]:
    """Run (or resume, or skip when done) one run of a sweep, judging its status now: a run Ray starts again
    after its worker died resumes from its own checkpoint.

    :param cwd: the folder relative paths (logdir, data) mean; the sweep's own when it started
    :return: ``label``, ``seed``, ``result`` (one line), ``node`` (the Ray node it ran on, when under Ray)
    """
    if cwd is not None and Path(cwd).is_dir():
        os.chdir(cwd)
    state = cfg.status()
    if state in ENDED:
        result = ENDED[state]
    else:
        result = dataclasses.replace(cfg, resume=state != "new").execute()
    return {"label": cfg.label, "seed": cfg.seed, "result": result, "node": _node()}


def groups(
    todo: Sequence[RunConfig], batch_seeds: bool, batch_settings: bool = False, max_batch: int | None = None
) -> list[list[RunConfig]]:
    """The runs each Ray task makes: one run each; with ``batch_seeds``, the seeds of a grid point (one label) that
    its kind can batch together (:meth:`~syre_rl.agents.kinds.RunConfig.batch_of_seeds`), in seed order; with
    ``batch_settings`` too, every run of one :meth:`~syre_rl.agents.kinds.RunConfig.batch_key` (grid points that
    differ only in the method's per-member settings), in label and seed order; each split into batches of at most
    ``max_batch`` runs. The biggest tasks come first (by env steps, where the kind has them: the longest task
    first keeps the last core from running alone at the end), else in sweep order."""
    if not batch_seeds:
        return [[cfg] for cfg in todo]
    return sorted(_batches(todo, batch_settings, max_batch), key=lambda group: -sum(_steps(c) for c in group))


def _steps(cfg: RunConfig) -> int:
    return getattr(cfg, "timesteps", None) or 0


def _batches(todo: Sequence[RunConfig], batch_settings: bool, max_batch: int | None) -> list[list[RunConfig]]:
    by_point: dict[tuple[str, str, str], list[RunConfig]] = {}
    for cfg in todo:
        key = cfg.batch_key() if batch_settings else None
        where = ("settings", key) if key is not None else ("label", cfg.label)
        by_point.setdefault((str(cfg.logdir), *where), []).append(cfg)
    out = []
    for (_, by, _), point in by_point.items():
        if len(point) > 1 and (by == "settings" or point[0].batch_of_seeds([c.seed for c in point]) is not None):
            ordered = sorted(point, key=lambda c: (c.label, c.seed))
            size = max_batch or len(ordered)
            out += [ordered[i : i + size] for i in range(0, len(ordered), size)]
        else:
            out += [[cfg] for cfg in point]
    return out


def run_group(cfgs: Sequence[RunConfig], cwd: str | None = None) -> dict[str, Any]:
    """Run the runs of one Ray task (:func:`groups`): one run as :func:`run_one`; several seeds as batches, the
    new ones as one, the started ones resumed as another (judged now, so that a task Ray starts again after its
    worker died resumes what it had begun).

    :return: ``label``, ``seed`` (the seeds, as text), ``result`` (one line), ``node``, ``runs`` (how many)
    """
    if len(cfgs) == 1:
        return {**run_one(cfgs[0], cwd), "runs": 1}
    if cwd is not None and Path(cwd).is_dir():
        os.chdir(cwd)
    by_state: dict[str, list[RunConfig]] = {}
    for cfg in cfgs:
        by_state.setdefault(cfg.status(), []).append(cfg)
    results = [f"{len(by_state[state])} {said}" for state, said in ENDED.items() if state in by_state]
    for state in ("new", "partial", "damaged"):
        if state in by_state:
            results.append(type(cfgs[0]).run_batch(by_state[state], resume=state != "new"))
    seeds = ",".join(dict.fromkeys(str(c.seed) for c in cfgs))
    label = ",".join(dict.fromkeys(c.label for c in cfgs))
    return {"label": label, "seed": seeds, "result": "; ".join(results), "node": _node(), "runs": len(cfgs)}


def _node() -> str | None:
    try:
        import ray

        if ray.is_initialized():
            return ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return None


def run_sweep(
    configs: Sequence[RunConfig],
    spec: SweepSpec,
    address: str | None = None,
    cpus: int | None = None,
    progress: bool = True,
    log: Callable[[str], object] = print,
) -> list[dict[str, Any]]:
    """Run the configs not yet done as Ray tasks, resuming partial ones in their own folders, seed by seed (a
    sweep cut short still has whole comparisons). A run that fails (a damaged checkpoint, a non-finite value)
    is reported in one line and the others go on; a run whose worker or node dies is retried ``spec.retries``
    times, each time from its checkpoint.

    :param address: a Ray cluster (``ray start --head`` prints it; ``auto`` finds the local one); default: a new
        local Ray instance of ``cpus`` CPUs, even when another runs on this machine
    :param cpus: the local instance's CPUs (default: all cores); not with ``address``
    :param progress: a progress bar of runs done out of the total, with an ETA
    :return: one result per run made now (see :func:`run_one`)
    :raises RuntimeError: after all runs, when any failed (naming how many)
    :raises ValueError: when another sweep (or any process) holds one of the runs' logdirs
    """
    states = [c.status() for c in configs]
    todo = sorted((c for c, s in zip(configs, states) if s not in ENDED), key=lambda c: c.seed)
    if stopped := states.count("stopped"):
        log(
            f"{stopped} runs stopped on a non-finite value earlier and stay stopped (their {STOPPED} says where; "
            "remove it to train such a run again)"
        )
    if not todo:
        log(f"{len(configs)} runs, all done" + (" or stopped" if stopped else ""))
        return []
    with contextlib.ExitStack() as held:  # one sweep per logdir at a time, as one process per run folder
        for logdir in sorted({str(Path(c.logdir).resolve()) for c in todo}):
            Path(logdir).mkdir(parents=True, exist_ok=True)
            held.enter_context(owned(Path(logdir)))
        return _run_on_ray(todo, spec, address, cpus, len(configs), progress, log)


def _run_on_ray(
    todo: list[RunConfig],
    spec: SweepSpec,
    address: str | None,
    cpus: int | None,
    total: int,
    progress: bool,
    log: Callable[[str], object],
) -> list[dict[str, Any]]:
    import logging

    import ray
    from tqdm.auto import tqdm

    done = total - len(todo)
    # "local": a new instance of our own, even when another one runs on this machine (ray.init() without an
    # address would join that one, and refuse our num_cpus)
    reaper = None if address else start_reaper()  # a local instance dies with this driver, however it dies
    ray.init(
        address=address or "local",
        num_cpus=None if address else cpus,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )
    try:
        where = f"the cluster at {address}" if address else "this machine"
        log(f"{total} runs, {done} done, {len(todo)} to run on {where} ({_resources(spec, ray)})")
        task = ray.remote(run_group).options(
            num_cpus=spec.cpus, num_gpus=spec.gpus, max_retries=spec.retries, retry_exceptions=False
        )
        pending = {
            task.remote(group, os.getcwd()): group
            for group in groups(todo, spec.batch_seeds, spec.batch_settings, spec.max_batch)
        }
        return _collect(pending, total, done, progress, log, tqdm)
    finally:
        ray.shutdown()
        if reaper is not None:
            reaper.kill()
            reaper.wait()


def _resources(spec: SweepSpec, ray: Any) -> str:
    """What the Ray cluster has and each run asks for, in words; a run that asks for more is refused."""
    total = ray.cluster_resources()
    if spec.gpus > total.get("GPU", 0):
        raise ValueError(f"each run asks for {spec.gpus:g} GPU(s) but the Ray cluster has {total.get('GPU', 0):g}")
    if spec.cpus > total.get("CPU", 0):
        raise ValueError(f"each run asks for {spec.cpus:g} CPUs but the Ray cluster has {total.get('CPU', 0):g}")
    return (
        f"{total.get('CPU', 0):g} CPUs, {total.get('GPU', 0):g} GPUs; each run {spec.cpus:g} CPUs, {spec.gpus:g} GPUs"
    )


def _collect(pending: dict, total: int, done: int, progress: bool, log, tqdm) -> list[dict[str, Any]]:
    """Wait for the runs as they finish, reporting each; on Ctrl-C, cancel the rest (they resume next time)."""
    import ray

    finished, failed = [], 0
    bar = tqdm(total=total, initial=done, unit="run", desc="sweep", disable=not progress, dynamic_ncols=True)
    write = bar.write if progress else log
    try:
        while pending:
            [ref], _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ref)
            name = f"{group[0].label} seed {','.join(str(c.seed) for c in group)}"
            try:
                out = ray.get(ref)
            except ray.exceptions.RayTaskError as error:
                failed += len(group)
                cause = error.cause if isinstance(error.cause, Exception) else error
                write(f"{name}: failed: {str(cause).splitlines()[-1] if str(cause) else cause!r}")
            except ray.exceptions.RayError as error:  # its worker or node died more often than retries allow
                failed += len(group)
                write(f"{name}: failed: {type(error).__name__}: {str(error).splitlines()[0]}")
            else:
                finished.append(out)
                node = f" (node {out['node'][:8]})" if out["node"] else ""
                write(f"{out['label']} seed {out['seed']}: {out['result']}{node}")
            bar.update(len(group))
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        write(f"stopped: {len(pending)} runs not finished; run the same command again to continue them")
        raise
    finally:
        bar.close()
    if failed:
        made = failed + sum(out.get("runs", 1) for out in finished)
        raise RuntimeError(f"{failed} of {made} runs failed (see above); fix them and run the sweep again")
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
