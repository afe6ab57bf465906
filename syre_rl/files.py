"""Atomic file writes: a reader never sees half a file, and a crash mid-write leaves the previous file. Files and
folders get the permissions the umask gives (as ``open()`` and ``mkdir()`` would), not ``tempfile``'s private
ones: on a shared filesystem colleagues can read the results."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a fresh temporary path beside ``path`` (unique to this call), then rename it over
    ``path``: readers never see half a file, and two writers never share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the suffix stays last: some writers (SB3's .zip) add theirs when it is missing
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def umask_mode(full: int) -> int:
    """``full`` (0o666 for a file, 0o777 for a folder) less the process's umask: the mode ``open()`` or
    ``mkdir()`` would give."""
    mask = os.umask(0)
    os.umask(mask)
    return full & ~mask


def remove_leftovers(folder: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_write` left in ``folder`` when it was killed mid-write; call it
    only where no other process writes (a run folder this process owns).

    :return: the files removed
    """
    found = [p for p in Path(folder).glob(".*.tmp*") if p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found
