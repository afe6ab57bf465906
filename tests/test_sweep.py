"""Sweeps: grid expansion, labels, skipping finished runs and resuming interrupted ones."""

import dataclasses

import pytest

from syre_rl.agents import sweep
from syre_rl.agents.continual import run_continual
from syre_rl.syre import SyreSettings
from tests.test_continual import synthetic_digits

SPEC = {
    "logdir": "RUNS",
    "seeds": [0, 1],
    "base": {"tasks": 2, "hidden": "16", "probe_size": 50, "batch_size": 32},
    "grid": [
        {"method": "vanilla", "lr": [1e-3, 1e-2]},
        {"method": "syre", "gamma": [1e-3, 1e-2], "scale": 0.1, "decoupled": True},
    ],
}


def test_expand_makes_every_run_with_readable_labels():
    configs = sweep.expand(sweep.SweepSpec.from_dict(SPEC))
    assert [(c.label, c.seed) for c in configs] == [
        ("vanilla-lr0.001", 0), ("vanilla-lr0.001", 1), ("vanilla-lr0.01", 0), ("vanilla-lr0.01", 1),
        ("syre-gamma0.001-scale0.1-decoupledtrue", 0), ("syre-gamma0.001-scale0.1-decoupledtrue", 1),
        ("syre-gamma0.01-scale0.1-decoupledtrue", 0), ("syre-gamma0.01-scale0.1-decoupledtrue", 1)]
    assert configs[2].lr == 0.01 and configs[2].tasks == 2 and configs[2].logdir == "RUNS"
    assert configs[-1].method_settings == SyreSettings(gamma=0.01, scale=0.1, ar_eps=0.0, decoupled=True, seed=1)


GRID = [{"method": "vanilla"}]


@pytest.mark.parametrize("spec,match", [
    ({"grid": GRID}, "sweep needs 'seeds'"),
    ({"seeds": [0], "grid": [{"lr": 0.1}]}, "needs a 'method'"),
    ({"seeds": [0], "grid": []}, "sweep grid is empty"),
    ({"seeds": [], "grid": GRID}, "seeds must be a non-empty list"),
    ({"seeds": [0, 0.5], "grid": GRID}, r"sweep seeds must be a list of integers, got \[0, 0.5\]"),
    ({"seeds": [0], "grid": GRID, "seed": 1}, "sweep has no setting 'seed'; did you mean 'seeds'?"),
    ({"seeds": [0], "base": {"batchsize": 1}, "grid": GRID},
     "sweep base has no setting 'batchsize'; did you mean 'batch_size'?"),
    ({"seeds": [0], "base": {"method": "l2"}, "grid": GRID}, "sweep base has no setting 'method'"),
    ({"seeds": [0], "grid": [{"method": "syre", "every": 5}]},
     "grid entry for syre has key 'every', neither a run field nor a setting of syre"),
    ({"seeds": [0], "grid": [{"method": "syre", "gama": 5.0}]}, "did you mean 'gamma'?"),
    ({"seeds": [0], "grid": [{"method": "syre", "gamma": "1e-2"}]}, "syre gamma must be a number, got '1e-2'"),
    ({"seeds": [0], "grid": [{"method": "syre", "gamma": True}]}, "syre gamma must be a number, got True"),
    ({"seeds": [0], "grid": [{"method": "vanilla", "tasks": 2.5}]}, "continual tasks must be an integer, got 2.5"),
    ({"seeds": [0], "grid": [{"method": "vanilla", "lr": [0.1, 0.1]}]}, "make the same run label"),
])
def test_bad_specifications(spec, match):
    with pytest.raises(ValueError, match=match):
        sweep.expand(sweep.SweepSpec.from_dict(spec))


@pytest.mark.parametrize("text,match", [
    ("", r"spec.yaml: this sweep specification must hold a mapping of settings, but it holds nothing"),
    ("- 1\n- 2\n", "but it holds a list"),
    ("seeds: [0\ngrid: []\n", r"spec.yaml:2: malformed YAML in this sweep specification"),
    ("seeds: [0]\ngrid:\n  - {method: syre, gamma: 1e-2, scal: 0.1}\n", "has key 'scal'.*did you mean 'scale'"),
    ("seeds: [0]\ngrid:\n  - {method: syre, gamma: 1e-2}\n", None),
])
def test_bad_sweep_files_are_one_line_with_file_and_line(tmp_path, text, match):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    if match is None:  # YAML 1.2 numbers: 1e-2 is a number, not text as in YAML 1.1
        assert sweep.expand(sweep.load_spec(path))[0].method_settings.gamma == 0.01
        return
    with pytest.raises(ValueError, match=match) as error:
        sweep.load_spec(path)
    assert "\n" not in str(error.value)


def test_status_follows_the_run_folder(tmp_path):
    cfg = sweep.expand(sweep.SweepSpec.from_dict({**SPEC, "logdir": str(tmp_path), "seeds": [0]}))[0]
    assert sweep.status(cfg) == "new"

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual(cfg, data=synthetic_digits(), on_task_end=stop)
    assert sweep.status(cfg) == "partial"
    run_continual(dataclasses.replace(cfg, resume=True), data=synthetic_digits())
    assert sweep.status(cfg) == "done"


def test_a_restarted_sweep_resumes_its_own_partial_runs_and_trusts_only_verified_records(tmp_path):
    spec = sweep.SweepSpec.from_dict({**SPEC, "logdir": str(tmp_path), "seeds": [0],
                                      "grid": [{"method": "vanilla", "lr": 1e-3}]})
    cfg = sweep.expand(spec)[0]
    run = tmp_path / "permuted-mnist" / "vanilla-lr0.001_s0"
    from syre_rl.agents import continual

    real = continual.write_verified
    continual.write_verified = lambda path, payload: (_ for _ in ()).throw(KeyboardInterrupt)  # killed at once
    try:
        with pytest.raises(KeyboardInterrupt):
            run_continual(cfg, data=synthetic_digits())
    finally:
        continual.write_verified = real
    assert sweep.status(cfg) == "partial"  # started, no checkpoint: resumed in its folder, not made again as _2
    (run / "results.jsonl").write_text("garbage\n" * 5)  # lines are not a verified final record
    assert sweep.status(cfg) == "partial"
    run_continual(dataclasses.replace(cfg, resume=True), data=synthetic_digits())
    assert sweep.status(cfg) == "done" and sorted(p.name for p in run.parent.iterdir()) == [run.name]
    (run / "checkpoint.pt").write_bytes(b"broken")
    assert sweep.status(cfg) == "damaged"
