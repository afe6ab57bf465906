"""Run folders: the permissions the umask gives, no temporary file left behind by a killed writer, a lock file
that is not one."""

import os
import stat

import pytest

from syre_rl.agents.runs import new_run_dir, owned, write_verified
from syre_rl.files import atomic_write


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_files_and_run_folders_get_the_umasks_permissions(tmp_path, umask_022):
    """As open() and mkdir() would give them (tempfile's are private: 600 and 700), so colleagues can read."""
    run = new_run_dir(tmp_path, "group", "label", 0, {"a": 1})
    assert mode(run) == 0o755 and mode(run / "config.json") == 0o644
    atomic_write(run / "results.jsonl", lambda tmp: tmp.write_text("{}\n"))
    write_verified(run / "checkpoint.ckpt", b"payload")
    write_verified(run / "checkpoint.ckpt", b"payload 2")
    assert [mode(run / f) for f in ("results.jsonl", "checkpoint.ckpt", "checkpoint.ckpt.prev")] == [0o644] * 3
    os.umask(0o077)
    atomic_write(run / "private.txt", lambda tmp: tmp.write_text("x"))
    assert mode(run / "private.txt") == 0o600


def test_the_next_owner_removes_what_a_killed_writer_left(tmp_path):
    run = new_run_dir(tmp_path, "group", "label", 0, {})
    (run / ".checkpoint.ckpt.abc123.tmp.ckpt").write_bytes(b"")  # a kill between mkstemp and the rename
    (run / ".results.jsonl.x.tmp.jsonl").write_text("half")
    (run / "notes.tmp").write_text("the user's")
    with owned(run):
        assert sorted(p.name for p in run.iterdir()) == [".lock", "config.json", "notes.tmp"]


def test_a_lock_that_is_a_folder_is_named(tmp_path):
    (tmp_path / ".lock").mkdir()
    with pytest.raises(ValueError, match=r"\.lock is a folder, not the run's lock file; remove it"):
        with owned(tmp_path):
            pass
