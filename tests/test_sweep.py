"""Sweeps: grid expansion, labels, skipping finished runs and resuming interrupted ones."""

import pytest

from syre_rl.agents.runs import parse_settings, yaml_numbers
from syre_rl.agents import sweep
from syre_rl.agents.continual import run_continual
from tests.test_continual import synthetic_digits

SPEC = {
    "logdir": "RUNS",
    "seeds": [0, 1],
    "base": {"tasks": 2, "hidden": "16", "probe_size": 50, "batch_size": 32},
    "grid": [
        {"method": "vanilla", "lr": [1e-3, 1e-2]},
        {"method": "syre", "gamma": [1e-3, "1e-2"], "scale": 0.1, "decoupled": True},
    ],
}


def test_expand_makes_every_run_with_readable_labels():
    configs = sweep.expand(yaml_numbers(SPEC))
    assert [(c.label, c.seed) for c in configs] == [
        ("vanilla-lr0.001", 0), ("vanilla-lr0.001", 1), ("vanilla-lr0.01", 0), ("vanilla-lr0.01", 1),
        ("syre-gamma0.001-scale0.1-decoupledtrue", 0), ("syre-gamma0.001-scale0.1-decoupledtrue", 1),
        ("syre-gamma0.01-scale0.1-decoupledtrue", 0), ("syre-gamma0.01-scale0.1-decoupledtrue", 1)]
    assert configs[2].lr == 0.01 and configs[2].tasks == 2 and configs[2].logdir == "RUNS"
    settings = parse_settings(configs[-1].method_args)
    assert settings == dict(gamma=0.01, scale=0.1, ar_eps=0.0, decoupled=True, seed=1)


@pytest.mark.parametrize("spec,match", [
    ({"grid": []}, "needs 'seeds'"),
    ({"seeds": [0], "grid": [{"lr": 0.1}]}, "needs a 'method'"),
    ({"seeds": [0], "base": {"lr_max": 1}, "grid": []}, r"unknown field\(s\) \['lr_max'\]"),
    ({"seeds": [0], "grid": [{"method": "syre", "every": 5}]}, r"takes no setting\(s\) \['every'\]"),
])
def test_bad_specifications(spec, match):
    with pytest.raises(ValueError, match=match):
        sweep.expand(spec)


def test_status_follows_the_run_folder(tmp_path):
    cfg = sweep.expand({**SPEC, "logdir": str(tmp_path), "seeds": [0]})[0]
    assert sweep.status(cfg) == "new"

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_continual(cfg, data=synthetic_digits(), on_task_end=stop)
    assert sweep.status(cfg) == "partial"
    run_continual(cfg.__class__(**{**cfg.__dict__, "resume": True}), data=synthetic_digits())
    assert sweep.status(cfg) == "done"


def test_yaml_numbers_reads_the_floats_yaml_1_1_leaves_as_strings():
    assert yaml_numbers({"a": "1e-3", "b": ["2.5E+2", "-.5e1", "x1e3", "+.5", "0.01", " 1. ", "16", "1e"],
                         "c": "inf", "d": True, "e": 3}) == \
        {"a": 0.001, "b": [250.0, -5.0, "x1e3", 0.5, 0.01, 1.0, "16", "1e"], "c": "inf", "d": True, "e": 3}
    assert parse_settings("gamma=1e-3,label=a1e3,decoupled=true,every=100,scale=+.5") == \
        {"gamma": 0.001, "label": "a1e3", "decoupled": True, "every": 100, "scale": 0.5}
