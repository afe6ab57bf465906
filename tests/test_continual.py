"""The continual harness on tiny synthetic digits: records, logs, checkpoints and an exact resume."""

import dataclasses
import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from syre_rl.agents.continual import ContinualConfig, run_continual
from tests.conftest import held_by_another_process, synthetic_digits

TINY = dict(tasks=3, hidden="32,32", probe_size=100, batch_size=32, progress=False)


def strip_time(records):
    return [{k: v for k, v in r.items() if k != "wall_s"} for r in records]


@pytest.mark.parametrize(
    "method,args", [("syre", {"gamma": 0.01, "scale": 0.5}), ("redo", {"every": 5}), ("vanilla", {})]
)
def test_records_logs_and_results_file(tmp_path, method, args):
    cfg = ContinualConfig(method=method, method_args=args, logdir=str(tmp_path), **TINY)
    records = run_continual(cfg, data=synthetic_digits())
    run = tmp_path / "permuted-mnist" / f"{method}_s0"
    assert [r["task"] for r in records] == [0, 1, 2]
    assert [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()] == records
    for r in records:
        assert len(r["accuracies"]) == r["task"] + 1 and r["test_accuracy"] == r["accuracies"][-1]
        assert r["mean_seen_accuracy"] == pytest.approx(np.mean(r["accuracies"]))
        assert set(r["effective_rank"]) == {"layer0", "layer1"} and 0 <= r["dead_units"]["layer1"] <= 1
        assert 1 <= r["effective_rank"]["layer1"] <= 32
    assert records[0]["test_accuracy"] > 0.5  # the prototypes are learnable: far above chance (0.1)
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == method and config["seed"] == 0
    events = EventAccumulator(str(run))
    events.Reload()
    acc = events.Scalars("task/test_accuracy")
    assert [e.step for e in acc] == [0, 1, 2]
    assert [e.value for e in acc] == pytest.approx([r["test_accuracy"] for r in records])
    assert "plasticity/net/layer1/effective_rank" in events.Tags()["scalars"]
    if method == "syre":
        assert "layer0/duplicate_units_learned" in records[0]["metrics"]  # weights minus anchors
        assert "syre/net/anchor_distance" in events.Tags()["scalars"]


@pytest.mark.parametrize(
    "method,args",
    [("shrink-perturb", {"noise": 0.01}), ("redo", {"every": 7, "tau": 0.1}), ("syre", {"gamma": 0.01, "scale": 0.5})],
)
def test_resume_gives_the_same_results_as_an_uninterrupted_run(tmp_path, method, args):
    data = synthetic_digits()
    cfg = dict(method=method, method_args=args, **TINY)
    straight = run_continual(ContinualConfig(logdir=str(tmp_path / "a"), **cfg), data=data)

    def crash_after_task_1(record):
        if record["task"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual(ContinualConfig(logdir=str(tmp_path / "b"), **cfg), data=data, on_task_end=crash_after_task_1)
    run = tmp_path / "b" / "permuted-mnist" / f"{method}_s0"
    assert len((run / "results.jsonl").read_text().splitlines()) == 2  # finished tasks are kept
    seen = []
    resumed = run_continual(
        ContinualConfig(logdir=str(tmp_path / "b"), resume=True, **cfg),
        data=data,
        on_task_end=lambda r: seen.append(r["task"]),
    )
    assert seen == [2]  # nothing redone
    assert strip_time(resumed) == strip_time(straight)
    events = EventAccumulator(str(run))
    events.Reload()
    assert [e.step for e in events.Scalars("task/test_accuracy")] == [0, 1, 2]


def test_online_protocol_and_label_permutations(tmp_path):
    cfg = ContinualConfig(benchmark="label-permuted-mnist", online=True, logdir=str(tmp_path), **TINY)
    records = run_continual(cfg, data=synthetic_digits())
    assert all(0 <= r["online_accuracy"] <= 1 for r in records)
    assert records[0]["online_accuracy"] < records[0]["test_accuracy"]  # online counts the early mistakes


def stop_after(task):
    def stop(record):
        if record["task"] == task:
            raise KeyboardInterrupt

    return stop


def test_resume_refuses_other_settings_and_says_when_the_run_is_finished(tmp_path):
    cfg = dict(logdir=str(tmp_path), **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_continual(ContinualConfig(**cfg), data=synthetic_digits(), on_task_end=stop_after(0))
    with pytest.raises(
        ValueError,
        match=r"--resume of .*vanilla_s0 with other settings than it was made with "
        r"\(batch_size: the run has 32, now 16; lr: the run has 0.001, now 0.01\)",
    ):
        run_continual(ContinualConfig(**{**cfg, "batch_size": 16}, lr=0.01, resume=True), data=synthetic_digits())
    records = run_continual(ContinualConfig(**{**cfg, "progress": True}, resume=True), data=synthetic_digits())
    assert len(records) == 3
    with pytest.raises(ValueError, match=r"--resume: the run in .*vanilla_s0 is finished \(3 of 3 tasks\)"):
        run_continual(ContinualConfig(**cfg, resume=True), data=synthetic_digits())


def test_a_run_stopped_before_its_first_checkpoint_resumes_in_its_own_folder(tmp_path):
    data = synthetic_digits()
    straight = run_continual(ContinualConfig(logdir=str(tmp_path / "a"), **TINY), data=data)

    def killed(record):  # as a kill inside the first checkpoint's write: no checkpoint is complete
        raise KeyboardInterrupt

    run = tmp_path / "b" / "permuted-mnist" / "vanilla_s0"
    from syre_rl.agents import continual

    real = continual.write_verified
    continual.write_verified = lambda path, payload: (_ for _ in ()).throw(KeyboardInterrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_continual(ContinualConfig(logdir=str(tmp_path / "b"), **TINY), data=data)
    finally:
        continual.write_verified = real
    assert not (run / "checkpoint.ckpt").exists() and (run / "config.json").is_file()
    resumed = run_continual(ContinualConfig(logdir=str(tmp_path / "b"), resume=True, **TINY), data=data)
    assert strip_time(resumed) == strip_time(straight)
    assert sorted(p.name for p in run.parent.iterdir()) == ["vanilla_s0"]  # no orphan _2 folder
    assert not [p for p in run.iterdir() if ".tmp" in p.name]  # no temporary file left


def test_a_damaged_checkpoint_is_refused_and_the_previous_one_offered(tmp_path):
    cfg = dict(logdir=str(tmp_path), **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_continual(ContinualConfig(**cfg), data=synthetic_digits(), on_task_end=stop_after(1))
    run = tmp_path / "permuted-mnist" / "vanilla_s0"
    checkpoint = run / "checkpoint.ckpt"
    raw = bytearray(checkpoint.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 32] = bytes(32)  # 32 bytes overwritten in the middle
    checkpoint.write_bytes(bytes(raw))
    with pytest.raises(
        ValueError,
        match=r"checkpoint.ckpt is damaged .*the previous good checkpoint is kept as "
        r".*checkpoint.ckpt.prev: move checkpoint.ckpt away to resume from it",
    ):
        run_continual(ContinualConfig(**cfg, resume=True), data=synthetic_digits())
    for damage in (b"", raw[:100]):  # empty, truncated
        checkpoint.write_bytes(bytes(damage))
        with pytest.raises(ValueError, match="checkpoint.ckpt is damaged"):
            run_continual(ContinualConfig(**cfg, resume=True), data=synthetic_digits())
    checkpoint.unlink()  # as the message says: the previous good checkpoint (after task 0) takes over
    seen = []
    run_continual(
        ContinualConfig(**cfg, resume=True), data=synthetic_digits(), on_task_end=lambda r: seen.append(r["task"])
    )
    assert seen == [1, 2]


def test_one_process_owns_a_run_folder(tmp_path):
    from syre_rl.agents.runs import owned

    cfg = dict(logdir=str(tmp_path), **TINY)
    with pytest.raises(KeyboardInterrupt):
        run_continual(ContinualConfig(**cfg), data=synthetic_digits(), on_task_end=stop_after(0))
    run = tmp_path / "permuted-mnist" / "vanilla_s0"
    with held_by_another_process(run):
        with pytest.raises(ValueError, match=r"vanilla_s0 is in use by another process \(it holds .*\.lock\)"):
            run_continual(ContinualConfig(**cfg, resume=True), data=synthetic_digits())
    with owned(run):  # the OS released the killed holder's lock
        pass
    assert len(run_continual(ContinualConfig(**cfg, resume=True), data=synthetic_digits())) == 3


@pytest.mark.parametrize("lr,match", [(1e6, "non-finite parameter in"), (float("nan"), None)])
def test_the_guard_stops_at_the_first_non_finite_value(tmp_path, lr, match):
    if match is None:  # a NaN step size is refused as bad input before anything runs
        with pytest.raises(ValueError, match="lr must be a finite number > 0, got nan"):
            ContinualConfig(lr=lr)
        return
    cfg = dict(logdir=str(tmp_path), **{**TINY, "tasks": 2}, optimizer="sgd", lr=lr)
    with pytest.raises(ValueError, match=r"task 0: non-finite (gradient|parameter) in \d\.(weight|bias)"):
        run_continual(ContinualConfig(**cfg), data=synthetic_digits())
    run = tmp_path / "permuted-mnist" / "vanilla_s0"
    assert not (run / "checkpoint.ckpt").exists() and (run / "results.jsonl").read_text() == ""  # nothing bad kept
    records = run_continual(
        ContinualConfig(**{**cfg, "logdir": str(tmp_path / "off")}, guard=False), data=synthetic_digits()
    )
    assert not np.isfinite(records[0]["train_loss"])  # without the guard the run goes on with garbage


def test_labels_and_syre_ar_naming(tmp_path):
    cfg = ContinualConfig(method="syre", method_args={"ar_eps": 0.05}, logdir=str(tmp_path), **TINY).resolved()
    assert cfg.method == "syre-ar" and cfg.label == "syre-ar"
    cfg = ContinualConfig(method="l2", label="l2-strong", logdir=str(tmp_path), **TINY)
    run_continual(cfg, data=synthetic_digits())
    assert (tmp_path / "permuted-mnist" / "l2-strong_s0" / "results.jsonl").is_file()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(threads=0), "--threads must be >= 1"),
        (dict(duplicate_threshold=1.5), r"--duplicate-threshold must be in \(0, 1\], got 1.5"),
        (dict(tau=-1.0), "--tau must be >= 0, got -1.0"),
        (dict(label="a/b"), "--label may use letters, digits"),
        (
            dict(benchmark="cifar"),
            "continual benchmark must be one of 'permuted-mnist', 'label-permuted-mnist', got 'cifar'",
        ),
        (dict(method_args={"gama": 0.1}), "vanilla has no setting 'gama' \\(valid: none\\)"),
        (dict(method="redo", method_args={"every": 2.5}), "redo every must be an integer, got 2.5"),
        (dict(lr=True), "continual lr must be a number, got True"),
        (dict(tasks=0), "--tasks must be >= 1, got 0"),
        (dict(method="syre", method_args={"gamma": -1}), "syre gamma must be a finite number >= 0, got -1"),
        (dict(hidden="300,x"), "--hidden must be comma-separated positive widths"),
        (dict(resume=True), "--resume: no run with a config.json"),
        (dict(data_dir="/nonexistent"), "--data-dir /nonexistent does not exist"),
        (dict(device="tpu"), "unknown --device 'tpu'"),
    ],
)
def test_bad_settings(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        run_continual(ContinualConfig(logdir=str(tmp_path), **{**TINY, **kwargs}), data=synthetic_digits())


@pytest.mark.gpu
def test_gpu_run_matches_cpu_accuracy_closely(tmp_path):
    data = synthetic_digits()
    cpu = run_continual(ContinualConfig(logdir=str(tmp_path / "c"), method="syre", **TINY), data=data)
    gpu = run_continual(ContinualConfig(logdir=str(tmp_path / "g"), method="syre", device="cuda", **TINY), data=data)
    assert [r["task"] for r in gpu] == [0, 1, 2]
    assert abs(gpu[-1]["mean_seen_accuracy"] - cpu[-1]["mean_seen_accuracy"]) < 0.1


def test_run_folders_are_made_without_races(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from syre_rl.agents.runs import new_run_dir

    with ThreadPoolExecutor(16) as pool:
        made = list(pool.map(lambda i: new_run_dir(tmp_path, "exp", "syre", 0, {"i": i}), range(300)))
    assert len(set(made)) == 300 and all(p.is_dir() for p in made)
    assert sorted(json.loads((p / "config.json").read_text())["i"] for p in made) == list(range(300))  # each its own


def test_a_run_made_before_a_setting_existed_resumes(tmp_path):
    """config.json of a run made before --fused existed lacks it: the run had its default, so resume goes on."""
    cfg = ContinualConfig(logdir=str(tmp_path), method="syre", **TINY)
    data = synthetic_digits()

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual(cfg, data=data, on_task_end=stop)
    config = tmp_path / "permuted-mnist" / "syre_s0" / "config.json"
    old = json.loads(config.read_text())
    del old["fused"]
    config.write_text(json.dumps(old))
    assert len(run_continual(dataclasses.replace(cfg, resume=True), data=data)) == 3
    with pytest.raises(ValueError, match="fused: the run has False, now True"):
        run_continual(dataclasses.replace(cfg, resume=True, fused=True, tasks=4), data=data)
