"""Run kinds: one base of settings, one method resolution, one table that sweeps use; the teacher-student kind
runs in a run folder like the others."""

import dataclasses
import json

import pytest
import torch

from syre_rl.agents import sweep
from syre_rl.agents.config import parse_dataclass
from syre_rl.agents.continual import ContinualConfig, run_continual
from syre_rl.agents.kinds import RUN_KINDS, RunConfig, check_device, resolve_method, run_kind
from syre_rl.agents.teacher_student import TeacherStudentConfig, run
from syre_rl.syre import SyreSettings
from tests.conftest import synthetic_digits

SHARED = {f.name for f in dataclasses.fields(RunConfig)}


@pytest.mark.parametrize("name", list(RUN_KINDS))
def test_every_kind_is_registered_and_shares_the_run_fields(name):
    config = run_kind(name)
    assert issubclass(config, RunConfig) and config.kind == name
    assert SHARED <= {f.name for f in dataclasses.fields(config)}
    assert set(RunConfig.RESUMABLE) <= set(config.RESUMABLE) and set(RunConfig.SWEEP_SET) <= set(config.SWEEP_SET)
    for method in ("group", "finished", "execute"):
        assert getattr(config, method) is not getattr(RunConfig, method), f"{name} does not define {method}"


def test_an_unknown_kind_is_refused_naming_the_kinds():
    with pytest.raises(ValueError, match="unknown run kind 'supervised'; valid: continual, rl, teacher-student"):
        run_kind("supervised")


def test_one_method_resolution_for_every_kind():
    """The run's seed where the method takes one and none was given; given settings over shared defaults, which
    apply only where they are the method's."""
    assert resolve_method("syre", {"gamma": 0.1}, 7) == ("syre", SyreSettings(gamma=0.1, seed=7))
    assert resolve_method("syre", {"ar_eps": 0.1}, 0)[0] == "syre-ar"
    name, settings = resolve_method("l2", {}, 3, defaults={"gamma": 0.5, "scale": 0.1})
    assert (name, settings.gamma) == ("l2", 0.5)  # scale is not l2's: left out, not refused
    for config in (ContinualConfig(method="syre", seed=4), TeacherStudentConfig(method="syre", seed=4)):
        assert config.resolved().method_settings == SyreSettings(seed=4)
        assert config.resolved().label == "syre"


def test_device_checks_follow_what_torch_sees():
    """Not a GPU test: without CUDA asking for it is refused, with CUDA a device past the last is."""
    if torch.cuda.is_available():
        check_device("cuda")
        with pytest.raises(ValueError, match="there are only"):
            check_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ValueError, match="no CUDA GPU is visible; use --device cpu or auto"):
            check_device("cuda")
    with pytest.raises(ValueError, match="unknown --device 'gpu'"):
        check_device("gpu")


def test_the_old_threads_flag_still_means_threads():
    from syre_rl.agents.rl import TrainConfig

    assert parse_dataclass(TrainConfig, "", ["--torch-threads", "3"]).threads == 3
    assert parse_dataclass(TrainConfig, "", ["--threads", "2"]).threads == 2


def test_a_teacher_student_run_has_a_run_folder_a_status_and_the_records_of_run(tmp_path):
    cfg = TeacherStudentConfig(
        method="syre", method_args={"gamma": 0.01, "scale": 0.01}, steps=60, record_every=20, logdir=str(tmp_path)
    ).resolved()
    assert cfg.status() == "new"
    assert cfg.execute().startswith("teacher loss ")
    assert cfg.status() == "done"
    folder = tmp_path / "teacher-student" / "syre_s0"
    records = [json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()]
    assert records == run(TeacherStudentConfig(steps=60, record_every=20), "syre", 0, gamma=0.01, scale=0.01)
    assert [r["step"] for r in records] == [0, 20, 40, 60]
    assert json.loads((folder / "config.json").read_text())["method_settings"]["seed"] == 0


def test_a_teacher_student_sweep_runs_through_the_table(tmp_path):
    spec = sweep.SweepSpec.from_dict(
        {
            "runs": "teacher-student",
            "logdir": str(tmp_path),
            "seeds": [0, 1],
            "base": {"steps": 40, "record_every": 20},
            "grid": [{"method": "l2", "method_args": {"gamma": [0.01, 0.1]}}],
        }
    )
    configs = sweep.expand(spec)
    assert [(c.label, c.seed) for c in configs] == [
        ("l2-gamma0.01", 0),
        ("l2-gamma0.01", 1),
        ("l2-gamma0.1", 0),
        ("l2-gamma0.1", 1),
    ]
    assert [sweep.run_one(c)["result"].startswith("teacher loss") for c in configs] == [True] * 4
    assert {c.status() for c in configs} == {"done"}
    assert sweep.run_one(configs[0])["result"] == "done already"


def test_a_continual_run_made_before_the_shared_checkpoint_name_resumes(tmp_path):
    """Runs of earlier versions keep their checkpoint as checkpoint.pt: read, then continued as checkpoint.ckpt."""
    cfg = ContinualConfig(tasks=2, hidden="16", probe_size=50, batch_size=32, progress=False, logdir=str(tmp_path))
    data = synthetic_digits()

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual(cfg, data=data, on_task_end=stop)
    folder = tmp_path / "permuted-mnist" / "vanilla_s0"
    (folder / "checkpoint.ckpt").rename(folder / "checkpoint.pt")
    assert cfg.resolved().status() == "partial"
    resumed = run_continual(dataclasses.replace(cfg, resume=True), data=data)
    assert [r["task"] for r in resumed] == [0, 1] and cfg.resolved().status() == "done"
    assert (folder / "checkpoint.ckpt").is_file()
