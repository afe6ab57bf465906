"""Run folders shared by every run kind: where a run lives, one owner at a time, verified checkpoints, the checks
of a resume.

A crash at any moment loses nothing finished: files are written to a unique temporary name and renamed; a
checkpoint carries its own SHA-256 and the previous one is kept until the next is complete, so a damaged
checkpoint is refused (naming the file and the previous good one) and a kill mid-write falls back to the
previous; a run folder is owned by one process at a time (a lock file, released by the OS when the process
dies), and the temporary files of a killed writer are removed when the next owner takes the folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from syre_rl.files import atomic_write, remove_leftovers, umask_mode

LOCK = ".lock"
CONFIG, CHECKPOINT = "config.json", "checkpoint.ckpt"  # every run kind's
STOPPED = "stopped.json"  # a run that training stopped on a non-finite value: where, and why
TRAILER = b"SYRECKPT"  # a verified file ends with TRAILER + sha256(payload)


def write_verified(path: Path, payload: bytes) -> None:
    """Write ``payload`` with its SHA-256 after it, atomically, keeping the file it replaces as ``<name>.prev``
    until the new one is complete: after a kill at any moment the newest complete file is there to read."""
    path = Path(path)
    if path.is_file():
        os.replace(path, previous(path))
    atomic_write(path, lambda tmp: tmp.write_bytes(payload + TRAILER + hashlib.sha256(payload).digest()))


def previous(path: Path) -> Path:
    """Where :func:`write_verified` keeps the file it replaced."""
    return path.with_name(path.name + ".prev")


class DamagedFile(ValueError):
    """A verified file whose content does not match its SHA-256 (or that is truncated)."""


def read_verified(path: Path) -> bytes:
    """The payload of a file :func:`write_verified` wrote, checked against its SHA-256. When the file is missing
    (a kill between keeping the old one and renaming the new one), the kept previous one is read instead.

    :raises DamagedFile: naming the file, and the previous good file when there is one
    :raises FileNotFoundError: when neither exists
    """
    path = Path(path)
    if not path.is_file() and previous(path).is_file():
        path = previous(path)
    raw = path.read_bytes()
    payload, trailer, digest = raw[:-40], raw[-40:-32], raw[-32:]
    if trailer != TRAILER or hashlib.sha256(payload).digest() != digest:
        kept = previous(path)
        offer = (
            f"; the previous good checkpoint is kept as {kept}: move {path.name} away to resume from it"
            if kept.is_file() and path != kept and _intact(kept)
            else "; no earlier good checkpoint is kept"
        )
        raise DamagedFile(f"{path} is damaged ({len(raw)} bytes that do not match their SHA-256){offer}")
    return payload


def _intact(path: Path) -> bool:
    raw = path.read_bytes()
    return raw[-40:-32] == TRAILER and hashlib.sha256(raw[:-40]).digest() == raw[-32:]


@contextlib.contextmanager
def owned(run_dir: Path) -> Iterator[Path]:
    """Hold ``run_dir`` for this process: a second process that asks for it gets one clear ValueError. The lock
    (``run_dir/.lock``, filelock) is released on exit and by the OS when the process dies."""
    lock = filelock.FileLock(str(Path(run_dir) / LOCK), timeout=0)
    try:
        lock.acquire()
    except IsADirectoryError:
        raise ValueError(f"{Path(run_dir) / LOCK} is a folder, not the run's lock file; remove it") from None
    except filelock.Timeout:
        raise ValueError(
            f"{run_dir} is in use by another process (it holds {Path(run_dir) / LOCK}); wait for it to end or stop it"
        ) from None
    try:
        remove_leftovers(run_dir)  # of a process killed mid-write: none can be writing now
        yield Path(run_dir)
    finally:
        lock.release()


def run_dirs(logdir: str | Path, group: str, label: str, seed: int) -> list[Path]:
    """Every folder of one run name, ``logdir/group/LABEL_sSEED`` and its ``_2``, ``_3``... repeats, in order."""
    base = Path(logdir) / group / f"{label}_s{seed}"
    repeats = [p for p in base.parent.glob(f"{base.name}_*") if p.name[len(base.name) + 1 :].isdigit()]
    return [p for p in [base] if p.is_dir()] + sorted(repeats, key=lambda p: int(p.name.rsplit("_", 1)[1]))


def new_run_dir(logdir: str | Path, group: str, method: str, seed: int, config: dict) -> Path:
    """``logdir/group/method_sSEED``, with ``_2``, ``_3``... appended when that run exists already, holding
    ``config.json`` from the start: the folder is made complete under a temporary name and renamed into place (a
    rename refuses a folder that holds files), so two processes never get the same folder and a kill never leaves
    a run folder without its config (a kill before the rename leaves only a hidden ``.LABEL_sSEED.new-*``)."""
    base = Path(logdir) / group / f"{method}_s{seed}"
    base.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=base.parent, prefix=f".{base.name}.new-"))
    os.chmod(staging, umask_mode(0o777))  # mkdtemp's folder is private
    (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    run, k = base, 1
    while True:
        try:
            os.rename(staging, run)
            return run
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            k += 1
            run = base.with_name(f"{base.name}_{k}")


def latest_run_dir(logdir: str | Path, group: str, method: str, seed: int, marker: str) -> Path:
    """The latest repeat of run ``logdir/group/method_sSEED[_k]`` that was started (holds ``marker``, e.g. its
    ``config.json``), whether or not it reached a checkpoint.

    :raises ValueError: when there is none (nothing to resume)
    """
    folders = run_dirs(logdir, group, method, seed)
    runs = [p for p in folders if (p / marker).is_file()]
    if folders and folders[-1] not in runs and (folders[-1] / CHECKPOINT).is_file():
        raise ValueError(
            f"--resume: {folders[-1]} has a checkpoint but no {marker} (the run's settings): put the {marker} back "
            f"(from a backup, or written from the same flags) to resume it, or move the folder away to start anew"
        )
    if not runs:
        base = Path(logdir) / group / f"{method}_s{seed}"
        raise ValueError(f"--resume: no run with a {marker} at {base}[_N]; start one without --resume")
    return runs[-1]


def check_unchanged(
    run_dir: Path,
    settings: dict,
    free: tuple[str, ...],
    flag: str,
    upgraded: Callable[[dict], dict] | None = None,
) -> None:
    """Refuse to continue the run in ``run_dir`` with settings other than its ``config.json``'s, naming each
    differing key with both values; the keys in ``free`` may change (they do not change results). ``upgraded``
    reads an older run's ``config.json`` in today's settings (renamed ones, and newer ones at the value the run
    had: :meth:`~syre_rl.agents.kinds.RunConfig.upgraded`).

    :raises ValueError: one line, listing every difference
    """
    saved = read_json(Path(run_dir) / CONFIG)
    now = json.loads(json.dumps(settings))  # as config.json holds them (tuples as lists)
    saved = json.loads(json.dumps(upgraded(saved) if upgraded else saved))
    changed = [k for k in now if k not in free and saved.get(k) != now[k]]
    if changed:
        diffs = "; ".join(f"{k}: the run has {saved.get(k)!r}, now {now[k]!r}" for k in changed)
        raise ValueError(
            f"{flag} of {run_dir} with other settings than it was made with ({diffs}); settings "
            f"that may change: {', '.join(free)}"
        )


def read_json(path: Path) -> dict:
    """A JSON file the harness wrote (``config.json``, ``summary.json``), or one line naming the file.

    :raises ValueError: when it cannot be read or is not a JSON object
    """
    try:
        data = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is damaged: not JSON ({error.msg} at line {error.lineno})") from None
    except OSError as error:
        raise ValueError(f"{path} cannot be read: {error.strerror}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is damaged: it holds a {type(data).__name__}, not the run's settings")
    return data


def write_json_atomic(path: Path, data: dict) -> None:
    """``data`` as indented JSON, atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n"))


def write_stopped(run_dir: Path, step: int, reason: str, checkpoint: int | None) -> None:
    """Record that the run in ``run_dir`` stopped on a non-finite value at ``step`` (its guard's ``reason``), its
    last good checkpoint at ``checkpoint`` (None: none). A stopped run is an outcome, not an interruption: sweeps
    leave it stopped, ``--resume`` refuses it, and comparisons list it apart (:func:`stopped_record`)."""
    record = {"step": step, "reason": reason, "checkpoint_step": checkpoint}
    write_json_atomic(Path(run_dir) / STOPPED, record)


def stopped_record(run_dir: Path) -> dict | None:
    """What :func:`write_stopped` wrote in ``run_dir`` (``step``, ``reason``, ``checkpoint_step``), or None."""
    path = Path(run_dir) / STOPPED
    return read_json(path) if path.is_file() else None


def kept(run_dir: Path, checkpoint: int | None) -> str:
    """What a run stopped on a non-finite value keeps, and how to train it again (the end of the guard's message)."""
    if checkpoint is None:
        return (
            f"no checkpoint was written yet: remove {Path(run_dir) / STOPPED}, then --resume starts the run again "
            "in its folder"
        )
    return (
        f"the last good checkpoint is {Path(run_dir) / CHECKPOINT} (env step {checkpoint}): remove "
        f"{Path(run_dir) / STOPPED}, then --resume continues from it"
    )


def check_not_stopped(run_dir: Path) -> None:
    """``--resume`` refuses a run that stopped on a non-finite value, saying where it stopped and why."""
    record = stopped_record(run_dir)
    if record is not None:
        raise ValueError(
            f"--resume: the run in {run_dir} stopped at env step {record['step']} ({record['reason']}); "
            f"{kept(run_dir, record['checkpoint_step'])}"
        )


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C at a safe point, its checkpoint written; the message says where."""


class SafeStop:
    """While entered, the first Ctrl-C (SIGINT) only sets :attr:`asked`, for the run to stop at its next safe point
    (after a checkpoint); a second one stops at once. Only in the main thread, where Python delivers signals."""

    def __init__(self) -> None:
        self.asked, self._previous = False, None

    def __enter__(self) -> SafeStop:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._ask)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _ask(self, signum: int, frame: object) -> None:
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True
