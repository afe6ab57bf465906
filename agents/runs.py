"""Run folders shared by every harness: where a run lives, atomic writes, device and probe checks."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

import torch


def check_label(label: str | None) -> str | None:
    """A run label goes into folder names: letters, digits and ``. + = - _`` only."""
    if label is not None and not re.fullmatch(r"[\w.+=-]+", label):
        raise ValueError(f"--label may use letters, digits and . + = - _ only, got {label!r}")
    return label


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp" + path.suffix)  # keeps the suffix some writers (SB3 .zip) require
    write(tmp)
    os.replace(tmp, path)


def new_run_dir(logdir: str | Path, group: str, method: str, seed: int) -> Path:
    """``logdir/group/method_sSEED``, with ``_2``, ``_3``... appended when that run exists already."""
    base = Path(logdir) / group / f"{method}_s{seed}"
    run, k = base, 1
    while run.exists():
        k += 1
        run = base.with_name(f"{base.name}_{k}")
    run.mkdir(parents=True)
    return run


def latest_run_dir(logdir: str | Path, group: str, method: str, seed: int, marker: str) -> Path:
    """The most recently written run ``logdir/group/method_sSEED[_k]`` that holds the file ``marker``.

    :raises ValueError: when there is none (nothing to resume)
    """
    base = Path(logdir) / group / f"{method}_s{seed}"
    runs = [p for p in [base, *base.parent.glob(f"{base.name}_*")] if (p / marker).is_file()]
    if not runs:
        raise ValueError(f"--resume: no run with a {marker} at {base}[_N]; start one without --resume")
    return max(runs, key=lambda p: (p / marker).stat().st_mtime)


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as indented JSON, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def check_device(device: str) -> None:
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


def check_threads(threads: int | None, flag: str = "--threads") -> None:
    if threads is not None and threads < 1:
        raise ValueError(f"{flag} must be >= 1 (or left out for the default), got {threads}")


def check_probe(tau: float, duplicate_threshold: float) -> None:
    """The plasticity metrics' thresholds: tau >= 0, duplicate threshold in (0, 1]."""
    if not tau >= 0:
        raise ValueError(f"--tau must be >= 0, got {tau}")
    if not 0 < duplicate_threshold <= 1:
        raise ValueError(f"--duplicate-threshold must be in (0, 1], got {duplicate_threshold}")
