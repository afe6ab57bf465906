"""K seeds in one model: every seed of a batched run follows its own single-seed run, for every method.

Equivalence is checked in float32 over a bounded run: 3 tasks of 600 examples in minibatches of 32, so 57
optimizer steps per seed (plus the online scoring), to 1e-5 relative (tensors: relative to their largest entry).
A batched matrix product sums in another order than a single one, so the two agree to float32 rounding, not bit
for bit; over much longer runs the trajectories would drift apart (ReLU boundaries flip), which is expected."""

import dataclasses
from pathlib import Path

import pytest
import torch

from syre_rl.agents.config import parse_seeds
from syre_rl.agents.continual import ContinualConfig, load_checkpoint, run_continual, run_continual_seeds
from tests.conftest import METHOD_CASES, RTOL, SMALL, close, synthetic_digits, without_wall


@pytest.mark.parametrize(
    "method,settings", METHOD_CASES, ids=[f"{m}-{'-'.join(map(str, s.values()))}" for m, s in METHOD_CASES]
)
def test_each_seed_of_a_batched_run_equals_its_single_run(tmp_path, method, settings):
    data = synthetic_digits()
    cfg = ContinualConfig(**SMALL, method=method, method_args=settings, logdir=str(tmp_path / "batched"))
    batched = run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1, 2]), data=data)
    assert sorted(batched) == [0, 1, 2]
    for seed in (0, 1, 2):
        single = run_continual(dataclasses.replace(cfg, seed=seed, logdir=str(tmp_path / "single")), data=data)
        assert close(without_wall(batched[seed]), without_wall(single)) == []
        label = cfg.resolved().label
        states = [
            load_checkpoint(tmp_path / kind / "permuted-mnist" / f"{label}_s{seed}")["learner"]
            for kind in ("batched", "single")
        ]
        for name, tensor in states[1]["net"].items():  # weights and anchors, relative to their scale
            torch.testing.assert_close(states[0]["net"][name], tensor, rtol=RTOL, atol=RTOL * float(tensor.abs().max()))
        for i, entry in states[1]["optimizer"]["state"].items():  # Adam's moments (relative to their scale), steps
            for key, value in entry.items():
                torch.testing.assert_close(
                    states[0]["optimizer"]["state"][i][key], value, rtol=RTOL, atol=RTOL * float(value.abs().max())
                )
        assert states[0]["method"].keys() == states[1]["method"].keys()
    if method in ("redo", "cbp"):  # the case is meant to reset units, in every seed
        key = {"redo": "redo/reset_units_total", "cbp": "cbp/replaced_units_total"}[method]
        assert all(r[-1]["metrics"][key] > 0 for r in batched.values())


def test_label_permuted_tasks_batch_alike(tmp_path):
    data = synthetic_digits()
    cfg = ContinualConfig(**SMALL, benchmark="label-permuted-mnist", method="syre", logdir=str(tmp_path))
    batched = run_continual_seeds(dataclasses.replace(cfg, seeds=[4, 5]), data=data)
    single = run_continual(dataclasses.replace(cfg, seed=5, logdir=str(tmp_path / "single")), data=data)
    assert close(without_wall(batched[5]), without_wall(single)) == []


def test_batched_and_single_runs_resume_each_other(tmp_path):
    """A batched run stopped after a task resumes seed by seed, and a seed that is behind catches up alone."""
    data = synthetic_digits()
    cfg = ContinualConfig(**SMALL, method="syre", logdir=str(tmp_path / "a"))
    straight = run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1], logdir=str(tmp_path / "b")), data=data)

    def stop(seed, record):
        if record["task"] == 0 and seed == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1]), data=data, on_task_end=stop)
    # seed 0 has task 0, seed 1 has task 0 too (stopped after saving it): resume seed 0 alone, one task more
    run_dir = tmp_path / "a" / "permuted-mnist"
    assert [len(load_checkpoint(run_dir / f"syre_s{s}")["records"]) for s in (0, 1)] == [1, 1]
    resumed = run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1], resume=True), data=data)
    for seed in (0, 1):
        assert close(without_wall(resumed[seed]), without_wall(straight[seed])) == []
    assert not (run_dir / "syre_s0_2").exists()


def test_a_seed_behind_the_others_trains_alone_until_it_catches_up(tmp_path):
    data = synthetic_digits()
    cfg = ContinualConfig(**SMALL, method="shrink-perturb", logdir=str(tmp_path / "a"))
    straight = run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1], logdir=str(tmp_path / "b")), data=data)

    def stop(seed, record):  # killed after seed 0 saved task 1, before seed 1 did
        if (seed, record["task"]) == (0, 1):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1]), data=data, on_task_end=stop)
    run_dir = tmp_path / "a" / "permuted-mnist"
    assert [len(load_checkpoint(run_dir / f"shrink-perturb_s{s}")["records"]) for s in (0, 1)] == [2, 1]
    trained = []
    resumed = run_continual_seeds(
        dataclasses.replace(cfg, seeds=[0, 1], resume=True),
        data=data,
        on_task_end=lambda seed, record: trained.append((seed, record["task"])),
    )
    assert trained == [(1, 1), (0, 2), (1, 2)]  # seed 1 alone on task 1, then both
    for seed in (0, 1):
        assert close(without_wall(resumed[seed]), without_wall(straight[seed])) == []


def test_seed_lists_and_their_errors():
    assert parse_seeds("0-7") == list(range(8)) and parse_seeds("0,3,5") == [0, 3, 5]
    assert parse_seeds("0-2,9") == [0, 1, 2, 9]
    with pytest.raises(ValueError, match="'a' is neither a seed nor a range"):
        parse_seeds("0,a")
    with pytest.raises(ValueError, match="the range '5-2' is empty"):
        parse_seeds("5-2")
    with pytest.raises(ValueError, match="--seeds must be distinct seeds >= 0, got \\[1, 1\\]"):
        ContinualConfig(seeds=[1, 1])
    with pytest.raises(ValueError, match="--seed 3 with --seeds \\[0, 1\\]: give one of them"):
        ContinualConfig(seed=3, seeds=[0, 1])
    with pytest.raises(ValueError, match="use run_continual_seeds"):
        run_continual(ContinualConfig(seeds=[0, 1]))


def test_bench_seeds_reports_both_sides_of_one_measurement(capsys):
    import runpy

    bench = runpy.run_path(str(Path(__file__).parent.parent / "scripts" / "bench_seeds.py"))
    rows = bench["main"](
        [
            "--nets",
            "8",
            "--batch-sizes",
            "16",
            "--ks",
            "2",
            "--examples",
            "64",
            "--repeats",
            "1",
            "--fused",
            "false,true",
        ]
    )
    assert [(r["k"], r["fused"]) for r in rows] == [(2, False), (2, True)]
    for r in rows:
        assert r["sequential_s"] > 0 and r["batched_s"] > 0
        assert r["throughput_ratio"] == pytest.approx(r["sequential_s"] / r["batched_s"])
    assert "throughput ratio" in capsys.readouterr().out
