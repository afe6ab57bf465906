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


def test_a_logdir_or_save_path_that_cannot_hold_runs_is_refused_before_any_work(tmp_path):
    from syre_rl.agents.continual import ContinualConfig
    from syre_rl.agents.rl import TrainConfig

    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="--logdir .*file is not a folder; give a folder"):
        ContinualConfig(logdir=str(tmp_path / "file"))
    with pytest.raises(ValueError, match=r"--logdir .*file/runs is not a folder: .*file is a file"):
        TrainConfig(logdir=str(tmp_path / "file" / "runs"))
    with pytest.raises(ValueError, match=r"--save .*file is not a folder"):
        TrainConfig(save=str(tmp_path / "file" / "model.zip"))
    assert TrainConfig(logdir=str(tmp_path / "new" / "runs")).logdir.endswith("runs")  # made when the run starts


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_a_read_only_logdir_is_refused(tmp_path):
    from syre_rl.agents.continual import ContinualConfig

    (tmp_path / "ro").mkdir(mode=0o555)
    with pytest.raises(ValueError, match="may not write in .*ro \\(permission denied\\)"):
        ContinualConfig(logdir=str(tmp_path / "ro" / "runs"))


def test_a_run_whose_settings_file_is_gone_or_damaged_is_named(tmp_path):
    from syre_rl.agents.runs import check_unchanged, latest_run_dir

    run = new_run_dir(tmp_path, "g", "m", 0, {"a": 1})
    (run / "config.json").write_text('{"a": ')
    with pytest.raises(ValueError, match=r"config.json is damaged: not JSON \(Expecting value at line 1\)"):
        check_unchanged(run, {"a": 1}, (), "--resume")
    write_verified(run / "checkpoint.ckpt", b"state")
    (run / "config.json").unlink()
    with pytest.raises(ValueError, match="has a checkpoint but no config.json .*put the config.json back"):
        latest_run_dir(tmp_path, "g", "m", 0, "config.json")


def test_a_network_too_large_for_the_machine_is_refused_with_the_figures():
    from syre_rl.agents.continual import ContinualConfig

    with pytest.raises(ValueError, match=r"--hidden 100000000: 79,500,000,010 parameters need about 1777.0 GiB"):
        ContinualConfig(hidden="100000000")
