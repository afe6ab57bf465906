"""Run kinds: the settings every run shares (:class:`RunConfig`), and the table of kinds (:data:`RUN_KINDS`) that
sweeps, status and ``run_one`` use.

A run kind is one module holding a :class:`RunConfig` subclass: its own fields, :meth:`~RunConfig.resolved` (the
complete settings, checked), :meth:`~RunConfig.group` (the folder its runs go under), :meth:`~RunConfig.finished`
and :meth:`~RunConfig.execute` (run it, or resume it, to the end). Adding one is that module and one line in
:data:`RUN_KINDS`.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import torch

from syre_rl.agents.config import parse_assignments
from syre_rl.agents.runs import CHECKPOINT, CONFIG, STOPPED, DamagedFile, read_verified, run_dirs
from syre_rl.methods import METHODS, canonical_name, method_defaults, method_settings
from syre_rl.settings import Settings

# kind name -> "module:class" of its settings (imported on first use: the RL kind pulls in SB3 and PyBullet)
RUN_KINDS = {
    "continual": "syre_rl.agents.continual:ContinualConfig",
    "rl": "syre_rl.agents.rl:TrainConfig",
    "teacher-student": "syre_rl.agents.teacher_student:TeacherStudentConfig",
}
Status = Literal["new", "partial", "damaged", "done", "stopped"]
R = TypeVar("R", bound="RunConfig")


def run_kind(name: str) -> type[RunConfig]:
    """The settings class of run kind ``name``.

    :raises ValueError: for a kind not in :data:`RUN_KINDS`, naming the valid ones
    """
    if name not in RUN_KINDS:
        raise ValueError(f"unknown run kind {name!r}; valid: {', '.join(RUN_KINDS)}")
    module, cls = RUN_KINDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def resolve_method(
    name: str, given: Mapping[str, Any], seed: int, defaults: Mapping[str, Any] | None = None
) -> tuple[str, Settings]:
    """A method's canonical name and complete typed settings: ``given`` over the ``defaults`` that are its settings
    (a preset's, shared by several methods), the run's ``seed`` where it takes one and none was given.

    :raises ValueError: naming the bad setting and what is allowed
    """
    defaults = dict(defaults or {})
    name = canonical_name(name, {**defaults, **given})
    own = method_defaults(name)
    values = {**{k: v for k, v in defaults.items() if k in own}, **given}
    if "seed" in own:
        values.setdefault("seed", seed)
    return name, method_settings(name, values)


def _help(text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": text, **metadata}


@dataclass(frozen=True)
class RunConfig(Settings):
    """The settings every run kind shares, named once: seed, method and its settings, targets, label, device,
    threads, logdir, resume, guard, progress and the plasticity probe's settings. A subclass may give a field
    another default (the RL kind's ``device`` is ``auto``)."""

    owner = "run"
    kind: ClassVar[str] = ""
    # settings a resume may change (they do not change results); a kind adds its own
    RESUMABLE: ClassVar[tuple[str, ...]] = ("resume", "progress", "threads", "device", "logdir", "guard")
    # settings added after runs were made, and the value those runs had; settings renamed (old name -> new)
    NEWER_DEFAULTS: ClassVar[dict[str, Any]] = {"targets": None}
    RENAMED: ClassVar[dict[str, str]] = {}
    # what a sweep sets for every run itself (the rest may be in its base or grid)
    SWEEP_SET: ClassVar[tuple[str, ...]] = (
        "method",
        "method_args",
        "method_settings",
        "label",
        "seed",
        "resume",
        "progress",
        "threads",
    )

    seed: int = field(default=0, metadata=_help("seed of everything random in the run"))
    method: str | None = field(
        default=None,
        metadata=_help(
            f"plasticity method: {', '.join(METHODS)} (default vanilla)", choices=list(METHODS), metavar="NAME"
        ),
    )
    method_args: dict[str, Any] = field(
        default_factory=dict,
        metadata=_help(
            "the method's settings as key=value,... (e.g. gamma=1e-3,scale=0.1; see syre_rl.methods)",
            parse=parse_assignments,
            metavar="K=V,...",
        ),
    )
    method_settings: Settings | None = field(
        default=None, metadata=_help("the method's complete typed settings, filled in by resolved()", cli=False)
    )
    targets: str | None = field(default=None, metadata=_help("networks under the method (default: all)"))
    label: str | None = field(
        default=None, metadata=_help("name of this variant in run folders and comparisons (default: the method)")
    )
    device: str = field(default="cpu", metadata=_help("torch device: cpu, cuda, cuda:N"))
    threads: int | None = field(default=None, metadata=_help("torch CPU threads (default: torch's)"))
    logdir: str = field(default="runs", metadata=_help("runs go to LOGDIR/GROUP/LABEL_sSEED"))
    resume: bool = field(default=False, metadata=_help("continue the latest run of this label and seed"))
    guard: bool = field(
        default=True,
        metadata=_help("stop at the first non-finite gradient or parameter, keeping the last good checkpoint"),
    )
    progress: bool = field(default=True, metadata=_help("show a progress bar"))
    probe_size: int = field(default=1000, metadata=_help("examples in the plasticity metrics' probe batch"))
    tau: float = field(default=0.025, metadata=_help("dormancy threshold of the dormant_ratio metric"))
    duplicate_threshold: float = field(
        default=0.99, metadata=_help("cosine similarity above which two units count as copies (duplicate_units)")
    )

    @classmethod
    def upgraded(cls, saved: Mapping[str, Any]) -> dict[str, Any]:
        """A run's ``config.json`` in today's settings: renamed settings under their new names, settings newer than
        the run at the value the run had (:data:`NEWER_DEFAULTS`)."""
        return {**cls.NEWER_DEFAULTS, **{cls.RENAMED.get(k, k): v for k, v in saved.items()}}

    def check(self) -> None:
        if self.seed < 0:
            raise ValueError(f"--seed must be >= 0 (numpy and torch take non-negative seeds), got {self.seed}")
        if self.probe_size < 1:
            raise ValueError(f"--probe-size must be >= 1, got {self.probe_size}")
        if not self.tau >= 0:
            raise ValueError(f"--tau must be >= 0, got {self.tau}")
        if not 0 < self.duplicate_threshold <= 1:
            raise ValueError(f"--duplicate-threshold must be in (0, 1], got {self.duplicate_threshold}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"--threads must be >= 1 (or left out for the default), got {self.threads}")
        if self.label is not None and not re.fullmatch(r"[\w.+=-]+", self.label):
            raise ValueError(f"--label may use letters, digits and . + = - _ only, got {self.label!r}")
        check_device(self.device)
        check_writable(self.logdir, "--logdir")

    def resolved(self: R) -> R:
        """A copy with every default filled in and the method's complete typed settings in ``method_settings``;
        a resolved config is returned as it is (a sweep resolves its runs, and each run resolves again).

        :raises ValueError: naming the bad value and what is allowed, before anything is built
        """
        if self.method_settings is not None:
            return self
        name, settings = resolve_method(self.method or "vanilla", self.method_args, self.seed)
        return dataclasses.replace(self, method=name, label=self.label or name, method_settings=settings)

    def group(self) -> str:
        """The folder under ``logdir`` that this run's folder goes in (its benchmark or env)."""
        raise NotImplementedError

    def finished(self, run_dir: Path) -> bool:
        """Whether the run in ``run_dir`` reached its end (it may raise :class:`DamagedFile`)."""
        raise NotImplementedError

    def execute(self) -> str:
        """Run this (resolved) run, or resume it with ``resume``, to its end; one line saying how it ended."""
        raise NotImplementedError

    def batch_of_seeds(self, seeds: list[int]) -> RunConfig | None:
        """This run's seeds ``seeds`` as one run that trains them as one batched network (each seed in its own
        run folder, as its single run), or None where this kind (or these settings) cannot."""
        return None

    def batch_key(self) -> str | None:
        """Runs (of one run root) whose keys are equal may train as one batched network though their labels
        differ (:meth:`run_batch`): this kind's key names everything they must share, which leaves out the seed,
        the label and the method's per-member settings (``Method.PER_MEMBER``), so that a tuning grid's points
        train as one batch. None where this kind (or these settings) batches only a grid point's seeds."""
        return None

    @classmethod
    def run_batch(cls, runs: Sequence[RunConfig], resume: bool) -> str:
        """Train (``resume``: continue) ``runs`` as one batched network, each in its own run folder as its single
        run; one line saying how it ended. Here: the seeds of one grid point (:meth:`batch_of_seeds`)."""
        batch = runs[0].batch_of_seeds([r.seed for r in runs])
        if batch is None or any(r.label != runs[0].label for r in runs):
            raise ValueError(f"{cls.__name__} batches only the seeds of one grid point, got {[r.label for r in runs]}")
        return dataclasses.replace(batch, resume=resume).execute()

    def status(self) -> Status:
        """``done``, ``stopped`` (training stopped on a non-finite value: :func:`~syre_rl.agents.runs.write_stopped`),
        ``partial`` (started: resumable in its own folder, from its checkpoint or from the start), ``damaged`` (its
        checkpoint fails its checksum) or ``new``, judged from the newest folder of this label and seed (whatever
        its ``_N`` suffix)."""
        started = [
            run for run in run_dirs(self.logdir, self.group(), self.label, self.seed) if (run / CONFIG).is_file()
        ]
        if not started:
            return "new"
        if (started[-1] / STOPPED).is_file():
            return "stopped"
        try:
            if self.finished(started[-1]):
                return "done"
            if (started[-1] / CHECKPOINT).is_file():
                read_verified(started[-1] / CHECKPOINT)
        except DamagedFile:
            return "damaged"
        return "partial"


def check_seeds(seeds: list[int] | None, seed: int) -> None:
    """``--seeds``: distinct seeds >= 0, and not beside a ``--seed`` of its own."""
    if seeds is None:
        return
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"--seeds must be distinct seeds >= 0, got {seeds}")
    if seed != 0:
        raise ValueError(f"--seed {seed} with --seeds {seeds}: give one of them")


def check_device(device: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` of a GPU that is there."""
    if device == "auto":
        return
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise ValueError(f"unknown --device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device} asked for, but no CUDA GPU is visible; use --device cpu or auto")
    index = torch.device(device).index
    if kind == "cuda" and index is not None and index >= torch.cuda.device_count():
        raise ValueError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA GPU(s)")


def check_writable(folder: str | Path, flag: str) -> None:
    """``folder`` is, or can be made as, a folder this process may write in: refused in one line before any work
    (a file in the way, a read-only place)."""
    path = Path(folder)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == path else f": {existing} is a file"
        raise ValueError(f"{flag} {folder} is not a folder{where}; give a folder this process can write in")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {folder}: this process may not write in {existing} (permission denied)")
