"""Sweeps: grid expansion, labels, skipping finished runs and resuming interrupted ones, Ray on this machine, and
(slow) a simulated two-node Ray cluster with a worker killed mid-run."""

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syre_rl.agents import sweep
from syre_rl.agents.continual import run_continual
from syre_rl.agents.rl import TrainConfig
from syre_rl.agents.rl.seeds import train_seeds
from syre_rl.agents.runs import write_stopped
from syre_rl.syre import SyreSettings
from tests.conftest import synthetic_digits

ROOT = Path(__file__).parent.parent
TINY_PRESET = str(ROOT / "tests" / "tiny-preset.yaml")
RAY_ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}  # one auth mode for all

SPEC = {
    "logdir": "RUNS",
    "seeds": [0, 1],
    "base": {"tasks": 2, "hidden": "16", "probe_size": 50, "batch_size": 32},
    "grid": [
        {"method": "vanilla", "lr": [1e-3, 1e-2]},
        {"method": "syre", "method_args": {"gamma": [1e-3, 1e-2], "scale": 0.1, "decoupled": True}},
    ],
}


def test_expand_makes_every_run_with_readable_labels():
    configs = sweep.expand(sweep.SweepSpec.from_dict(SPEC))
    assert [(c.label, c.seed) for c in configs] == [
        ("vanilla-lr0.001", 0),
        ("vanilla-lr0.001", 1),
        ("vanilla-lr0.01", 0),
        ("vanilla-lr0.01", 1),
        ("syre-gamma0.001-scale0.1-decoupledtrue", 0),
        ("syre-gamma0.001-scale0.1-decoupledtrue", 1),
        ("syre-gamma0.01-scale0.1-decoupledtrue", 0),
        ("syre-gamma0.01-scale0.1-decoupledtrue", 1),
    ]
    assert configs[2].lr == 0.01 and configs[2].tasks == 2 and configs[2].logdir == "RUNS"
    assert configs[-1].method_settings == SyreSettings(gamma=0.01, scale=0.1, ar_eps=0.0, decoupled=True, seed=1)


GRID = [{"method": "vanilla"}]


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"grid": GRID}, "sweep needs 'seeds'"),
        ({"seeds": [0], "grid": [{"lr": 0.1}]}, "needs a 'method'"),
        ({"seeds": [0], "grid": []}, "sweep grid is empty"),
        ({"seeds": [], "grid": GRID}, "seeds must be a non-empty list"),
        ({"seeds": [0, 0.5], "grid": GRID}, r"sweep seeds must be a list of integers, got \[0, 0.5\]"),
        ({"seeds": [0], "grid": GRID, "seed": 1}, "sweep has no setting 'seed'; did you mean 'seeds'?"),
        (
            {"seeds": [0], "base": {"batchsize": 1}, "grid": GRID},
            "sweep base has no setting 'batchsize'; did you mean 'batch_size'?",
        ),
        ({"seeds": [0], "base": {"method": "l2"}, "grid": GRID}, "sweep base has no setting 'method'"),
        (
            {"seeds": [0], "grid": [{"method": "syre", "every": 5}]},
            "grid entry for syre has key 'every', neither a run field nor a setting of syre",
        ),
        ({"seeds": [0], "grid": [{"method": "syre", "method_args": {"gama": 5.0}}]}, "did you mean 'gamma'?"),
        (
            {"seeds": [0], "grid": [{"method": "syre", "gamma": 5.0}]},
            "has key 'gamma', a setting of syre: write it under method_args",
        ),
        ({"seeds": [0], "grid": [{"method": "syre", "method_args": 5}]}, "method_args must be a mapping"),
        (
            {"seeds": [0], "grid": [{"method": "syre", "method_args": {"gamma": "1e-2"}}]},
            "syre gamma must be a number, got '1e-2'",
        ),
        (
            {"seeds": [0], "grid": [{"method": "syre", "method_args": {"gamma": True}}]},
            "syre gamma must be a number, got True",
        ),
        ({"seeds": [0], "grid": [{"method": "vanilla", "tasks": 2.5}]}, "continual tasks must be an integer, got 2.5"),
        ({"seeds": [0], "grid": [{"method": "vanilla", "lr": [0.1, 0.1]}]}, "make the same run label"),
        ({"seeds": [0], "grid": [{"method": "vanilla", "lr": []}]}, "lr is an empty list, which would make no run"),
        (
            {"seeds": [0], "grid": [{"method": "syre", "method_args": {"gamma": []}}]},
            "gamma is an empty list, which would make no run",
        ),
        ({"seeds": [-1, 0], "grid": GRID}, r"sweep seeds must be a non-empty list of distinct integers >= 0"),
        ({"seeds": [0], "base": {"seeds": [0, 1]}, "grid": GRID}, "seeds are the sweep.s own"),
        ({"seeds": [0], "grid": [{"method": "vanilla", "seeds": [1]}]}, "seeds are the sweep.s own"),
        (
            {"seeds": [0], "logdir": "a", "base": {"logdir": "b"}, "grid": GRID},
            "sweep logdir 'a' and base logdir 'b': give the run root once",
        ),
        ({"seeds": [0], "grid": [{"method": "vanilla", "label": ["a", "b"]}]}, "label must be one text"),
        (
            {"seeds": [0], "grid": GRID, "runs": "supervised"},
            "sweep runs must be one of 'continual', 'rl', 'teacher-student', got 'supervised'",
        ),
        ({"seeds": [0], "grid": GRID, "cpus": 0}, "sweep cpus must be a finite number > 0, got 0"),
        ({"seeds": [0], "grid": GRID, "gpus": 1.5}, "sweep gpus above 1 must be a whole number, got 1.5"),
        ({"seeds": [0], "grid": GRID, "gpus": 0.5}, "sweep gpus 0.5 with runs on device cpu; set base device: cuda"),
        ({"seeds": [0], "grid": GRID, "retries": -1}, "sweep retries must be >= 0"),
        (
            {"seeds": [0], "grid": GRID, "runs": "rl", "base": {"benchmark": "permuted-mnist"}},
            "sweep base has no setting 'benchmark'",
        ),
        ({"seeds": [0], "grid": GRID, "runs": "rl", "base": {"syre": True}}, "sweep base has no setting 'syre'"),
        (
            {
                "seeds": [0],
                "grid": [{"method": "vanilla", "timesteps": 100}],
                "runs": "rl",
                "base": {"preset": TINY_PRESET},
            },
            "--timesteps 100 is not a whole number of rollouts of 128 steps",
        ),
    ],
)
def test_bad_specifications(spec, match):
    with pytest.raises(ValueError, match=match):
        sweep.expand(sweep.SweepSpec.from_dict(spec))


@pytest.mark.parametrize(
    "text,match",
    [
        ("", r"spec.yaml: this sweep specification must hold a mapping of settings, but it holds nothing"),
        ("- 1\n- 2\n", "but it holds a list"),
        ("seeds: [0\ngrid: []\n", r"spec.yaml:2: malformed YAML in this sweep specification"),
        (
            "seeds: [0]\ngrid:\n  - {method: syre, method_args: {gamma: 1e-2, scal: 0.1}}\n",
            "no setting 'scal'.*did you mean 'scale'",
        ),
        ("seeds: [0]\ngrid:\n  - {method: syre, method_args: {gamma: 1e-2}}\n", None),
    ],
)
def test_bad_sweep_files_are_one_line_with_file_and_line(tmp_path, text, match):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    if match is None:  # YAML 1.2 numbers: 1e-2 is a number, not text as in YAML 1.1
        assert sweep.expand(sweep.load_spec(path))[0].method_settings.gamma == 0.01
        return
    with pytest.raises(ValueError, match=match) as error:
        sweep.load_spec(path)
    assert "\n" not in str(error.value)


def test_rl_sweeps_make_resolved_train_configs_labelled_like_continual_ones():
    spec = sweep.SweepSpec.from_dict(
        {
            "runs": "rl",
            "seeds": [3],
            "logdir": "RUNS",
            "base": {"preset": TINY_PRESET},
            "grid": [
                {"method": "vanilla", "label": "plain"},
                {"method": "syre", "method_args": {"scale": [0.1, 1.0]}, "n_envs": 2},
            ],
        }
    )
    configs = sweep.expand(spec)
    assert all(isinstance(c, TrainConfig) for c in configs)
    assert [(c.label, c.seed, c.n_envs, c.threads) for c in configs] == [
        ("plain", 3, 1, 1),
        ("syre-scale0.1-nenvs2", 3, 2, 1),
        ("syre-scale1-nenvs2", 3, 2, 1),
    ]
    assert configs[2].method_settings == SyreSettings(gamma=0.01, scale=1.0, seed=3)  # the preset's gamma
    assert all(c.resolved() is c for c in configs)  # what the worker resolves again is what was checked here
    assert sweep.status(configs[0]) == "new"


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
    [run_dir] = [p for p in Path(tmp_path).rglob("config.json")]
    write_stopped(run_dir.parent, 64, "task 0: non-finite gradient in 0.weight", None)  # a run the guard stopped
    assert sweep.status(cfg) == "stopped"
    assert sweep.run_one(cfg)["result"] == "stopped on a non-finite value earlier (see its stopped.json)"
    said: list[str] = []
    assert sweep.run_sweep([cfg], sweep.SweepSpec.from_dict({**SPEC, "logdir": str(tmp_path)}), log=said.append) == []
    assert said == [
        "1 runs stopped on a non-finite value earlier and stay stopped (their stopped.json says where; remove it to "
        "train such a run again)",
        "1 runs, all done or stopped",
    ]


def test_a_restarted_sweep_resumes_its_own_partial_runs_and_trusts_only_verified_records(tmp_path):
    spec = sweep.SweepSpec.from_dict(
        {**SPEC, "logdir": str(tmp_path), "seeds": [0], "grid": [{"method": "vanilla", "lr": 1e-3}]}
    )
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
    (run / "checkpoint.ckpt").write_bytes(b"broken")
    assert sweep.status(cfg) == "damaged"


READY_S = 600  # a node that is still starting after this long is stuck


@contextlib.contextmanager
def ray_cluster(port: int, nodes: int = 1):
    """A Ray cluster on this machine of ``nodes`` nodes of 1 CPU (`ray start --head`, then `ray start --address`),
    each node's processes in a process group of their own (`ray start --block` stays their parent), so that the
    end stops this cluster alone (`ray stop` would stop every Ray instance on the machine)."""
    ray = str(Path(sys.executable).parent / "ray")
    started: list[subprocess.Popen] = []
    try:
        for i in range(nodes):
            args = (
                ["--head", f"--port={port}", "--include-dashboard=false"] if i == 0 else [f"--address=127.0.0.1:{port}"]
            )
            started.append(
                subprocess.Popen(
                    [ray, "start", "--block", *args, "--num-cpus=1"],
                    env=RAY_ENV,
                    start_new_session=True,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            # Wait for readiness, not a fixed time: a cold `ray start` on a fresh machine (first import, unpacking)
            # took over 90 s. Fail at once if the node's process ended; give up only after READY_S.
            deadline = time.time() + READY_S
            while (
                subprocess.run(
                    [ray, "status", f"--address=127.0.0.1:{port}"], env=RAY_ENV, capture_output=True, text=True
                )
                .stdout.split("Pending:")[0]
                .count("node_")
                < i + 1
            ):
                assert started[-1].poll() is None, f"ray start of node {i + 1} exited with {started[-1].returncode}"
                assert time.time() < deadline, f"the Ray cluster did not reach {i + 1} node(s) in {READY_S} s"
                time.sleep(1)
        yield f"127.0.0.1:{port}"
    finally:
        for node in reversed(started):
            os.killpg(node.pid, signal.SIGTERM)
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()
            try:
                os.killpg(node.pid, signal.SIGKILL)  # any process of the group still there
            except ProcessLookupError:
                pass
        current = Path("/tmp/ray/ray_current_cluster")  # where `ray start` left this cluster's address
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()


def records(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "wall_s"}
        for line in (run / "results.jsonl").read_text().splitlines()
    ]


SMALL = {"tasks": 3, "examples_per_task": 300, "hidden": "32,32", "probe_size": 100, "batch_size": 32}


@pytest.mark.slow  # about a minute: a `ray start` cluster beside the sweep's own instance
def test_a_sweep_on_a_local_ray_instance_runs_continual_and_rl_runs_as_single_runs_would(tmp_path):
    spec = sweep.SweepSpec.from_dict(
        {
            "logdir": str(tmp_path),
            "seeds": [0, 1],
            "base": SMALL,
            "grid": [{"method": "syre", "method_args": {"gamma": 1e-2}}],
        }
    )
    configs = sweep.expand(spec)
    lines = []
    # a Ray cluster started with `ray start` on this machine, which ray.init() without an address would join: the
    # sweep starts an instance of its own, of the CPUs it asks for
    with ray_cluster(6900 + os.getpid() % 50):
        done = sweep.run_sweep(configs, spec, cpus=2, progress=False, log=lines.append)
    assert sorted((d["label"], d["seed"]) for d in done) == [("syre-gamma0.01", 0), ("syre-gamma0.01", 1)]
    assert [sweep.status(c) for c in configs] == ["done", "done"]
    assert lines[0].startswith("2 runs, 0 done, 2 to run on this machine (2 CPUs")
    straight = run_continual(dataclasses.replace(configs[1], logdir=str(tmp_path / "straight")))
    assert records(tmp_path / "permuted-mnist" / "syre-gamma0.01_s1") == [
        {k: v for k, v in r.items() if k != "wall_s"} for r in straight
    ]
    assert sweep.run_sweep(configs, spec, cpus=2, progress=False, log=lines.append) == []  # nothing left to run
    assert lines[-1] == "2 runs, all done"

    rl = sweep.SweepSpec.from_dict(
        {
            "runs": "rl",
            "logdir": str(tmp_path),
            "seeds": [0],
            "base": {"preset": TINY_PRESET, "metrics_every": 0},
            "grid": [{"method": "vanilla"}],
        }
    )  # vanilla: it once failed when resolved twice
    [cfg] = sweep.expand(rl)
    [out] = sweep.run_sweep([cfg], rl, cpus=1, progress=False, log=lines.append)
    summary = json.loads((tmp_path / "AntBulletEnv-v0" / "vanilla_s0" / "summary.json").read_text())
    assert summary["timesteps"] == 256 and out["result"] == f"mean return {summary['mean_return']} at 256 steps"
    assert sweep.status(cfg) == "done"


def test_failed_runs_are_reported_and_the_others_finish(tmp_path):
    spec = sweep.SweepSpec.from_dict(
        {"logdir": str(tmp_path), "seeds": [0, 1], "base": SMALL, "grid": [{"method": "vanilla"}]}
    )
    configs = sweep.expand(spec)
    run_continual(configs[0], data=synthetic_digits())
    (tmp_path / "permuted-mnist" / "vanilla_s0" / "checkpoint.ckpt").write_bytes(b"broken")
    lines = []
    with pytest.raises(RuntimeError, match="1 of 2 runs failed"):
        sweep.run_sweep(configs, spec, cpus=2, progress=False, log=lines.append)
    assert any(line.startswith("vanilla seed 0: failed: ") and "is damaged" in line for line in lines), lines
    assert sweep.status(configs[1]) == "done"


def _holder(lock: Path) -> int | None:
    """The process that has ``lock`` open (the worker running that run), from /proc."""
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            if any(os.readlink(fd) == str(lock) for fd in fd_dir.iterdir()):
                return int(fd_dir.parent.name)
        except OSError:
            continue
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the worker to kill through /proc")
def test_a_two_node_ray_cluster_runs_a_sweep_and_a_killed_worker_resumes_its_run_to_the_same_result(tmp_path):
    port = 6400 + os.getpid() % 500
    env = RAY_ENV
    with ray_cluster(port, nodes=2):
        spec = {
            "logdir": str(tmp_path / "runs"),
            "seeds": [0, 1],
            "base": {**SMALL, "tasks": 6, "examples_per_task": 3000, "hidden": "300,300"},
            "grid": [{"method": "syre"}, {"method": "redo", "method_args": {"every": 20}}],
        }
        path = tmp_path / "spec.yaml"
        path.write_text(json.dumps(spec))  # JSON is YAML
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "scripts" / "sweep.py"),
                str(path),
                "--address",
                f"127.0.0.1:{port}",
                "--no-progress",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        run = tmp_path / "runs" / "permuted-mnist" / "syre_s0"
        deadline, killed = time.time() + 240, None
        while killed is None and time.time() < deadline and proc.poll() is None:
            if (run / "checkpoint.ckpt").is_file():  # a task done, more to go: kill the worker that runs it
                pid = _holder(run / ".lock")
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    killed = len(records(run))
            time.sleep(0.02)
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, out[-3000:]
        assert killed is not None and killed < 6, out[-3000:]  # killed mid-run
        used = {line.rsplit("(node ", 1)[1] for line in out.splitlines() if "(node " in line}
        assert len(used) == 2, out  # the runs spread over both nodes
        assert ": failed:" not in out and "will be retried" in out  # Ray's word that it started the run again
        configs = sweep.expand(sweep.SweepSpec.from_dict(spec))
        assert [sweep.status(c) for c in configs] == ["done"] * 4
        straight = run_continual(dataclasses.replace(configs[0], logdir=str(tmp_path / "straight")))
        assert records(run) == [{k: v for k, v in r.items() if k != "wall_s"} for r in straight]
        print(
            f"worker killed after {killed} of 6 tasks; the run resumed to the uninterrupted result; "
            f"runs on {len(used)} nodes"
        )


@pytest.mark.slow
def test_a_sweep_stopped_with_ctrl_c_continues_where_it_stopped(tmp_path):
    spec = {
        "logdir": str(tmp_path / "runs"),
        "seeds": [0, 1, 2],
        "base": {**SMALL, "tasks": 4, "examples_per_task": 3000, "hidden": "300,300"},
        "grid": [{"method": "syre"}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    argv = [sys.executable, str(ROOT / "scripts" / "sweep.py"), str(path), "--cpus", "1", "--no-progress"]
    # SIGINT as a terminal delivers it: a test session started in the background (`cmd &`) ignores SIGINT, and a
    # child would inherit that
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    first = tmp_path / "runs" / "permuted-mnist" / "syre_s0" / "checkpoint.ckpt"
    deadline = time.time() + 120
    while not first.is_file() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)  # Ctrl-C, with seed 0 started
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to continue them" in out, out[-2000:]
    configs = sweep.expand(sweep.SweepSpec.from_dict(spec))
    before = [sweep.status(c) for c in configs]
    assert before[0] in ("partial", "done") and before[2] == "new", before
    again = subprocess.run(argv, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert f"3 runs, {before.count('done')} done" in again.stdout
    assert [sweep.status(c) for c in configs] == ["done"] * 3
    assert sorted(p.name for p in (tmp_path / "runs" / "permuted-mnist").iterdir()) == ["syre_s0", "syre_s1", "syre_s2"]


def test_a_renamed_run_field_is_refused_naming_its_new_name():
    spec = {"runs": "rl", "seeds": [0], "base": {"preset": "cartpole-tasks"}, "grid": [{"method": "vanilla"}]}
    in_base = {**spec, "base": {**spec["base"], "permute_every": 512}}
    in_grid = {**spec, "grid": [{"method": "vanilla", "permute_every": 512}]}
    for bad in (in_base, in_grid):
        with pytest.raises(ValueError, match="has key 'permute_every', which is now called 'task_every'; rename it"):
            sweep.SweepSpec.from_dict(bad)


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "agents" / "experiments").glob("*.yaml")))
def test_every_published_sweep_file_expands(name):
    """Every key, type, range, preset and env of the sweep files is checked when they expand."""
    configs = sweep.expand(sweep.load_spec(ROOT / "agents" / "experiments" / name))
    assert len({(c.label, c.seed) for c in configs}) == len(configs) > 0


@pytest.mark.parametrize("env", ["cartpole"])
def test_an_evaluation_runs_each_method_at_a_point_of_its_tuning_grid(env):
    """Each setting an evaluation sweep runs is one its tuning sweep tried (the chosen one, by hand from tuning.md:
    a typo would evaluate a setting nobody tuned), on seeds apart from the tuning seeds, with vanilla and the
    fresh networks on every evaluation seed."""
    folder = ROOT / "agents" / "experiments"
    evaluated = sweep.expand(sweep.load_spec(folder / f"cchain-{env}-evaluation.yaml"))
    tuned = sweep.expand(sweep.load_spec(folder / f"cchain-{env}-tuning.yaml"))
    points = {(c.method, json.dumps(c.method_args, sort_keys=True)) for c in tuned}
    seeds = {c.seed for c in evaluated}
    assert len(seeds) >= 10 and not seeds & {c.seed for c in tuned}
    for c in evaluated:
        assert (c.method, json.dumps(c.method_args, sort_keys=True)) in points, (c.label, c.method_args)
        assert c.label == c.method or c.label.startswith("fresh-task"), c.label
    labels = {c.label for c in evaluated}
    assert {"vanilla", "fresh-task1", "fresh-task2", "fresh-task3", "fresh-task4"} <= labels
    for label in labels:
        assert {c.seed for c in evaluated if c.label == label} == seeds, label


def test_only_selects_runs_by_label_pattern_and_refuses_a_pattern_that_matches_none():
    configs = sweep.expand(sweep.load_spec(ROOT / "agents" / "experiments" / "cchain-cartpole-tuning.yaml"))
    chosen = sweep.select(configs, ["fresh-*", "vanilla", "l2-gamma*"])
    assert sorted({c.label for c in chosen}) == [
        *(f"fresh-task{k}" for k in range(1, 5)),
        "l2-gamma0.0001",
        "l2-gamma0.001",
        "l2-gamma0.01",
        "vanilla",
    ]
    assert {c.seed for c in chosen} == {100, 101} and sweep.select(configs, None) == configs
    with pytest.raises(
        ValueError, match=r"--only syre-gamma9\* matches no run label; the labels: fresh-task1, fresh-task2, "
    ):
        sweep.select(configs, ["vanilla", "syre-gamma9*"])
    one = sweep.select(configs, ["vanilla", "fresh-task1"], [101])
    assert [(c.label, c.seed) for c in one] == [("fresh-task1", 101), ("vanilla", 101)]
    assert len(sweep.select(configs, None, [100])) == len(configs) // 2
    with pytest.raises(ValueError, match=r"--seeds \[0, 7\] are not seeds of this sweep; its seeds: \[100, 101\]"):
        sweep.select(configs, None, [0, 100, 7])


def test_a_name_that_is_a_run_field_and_a_method_setting_goes_where_it_is_written():
    """ReDo's tau (its dormancy threshold) and the run's tau (the metrics') share a name: under method_args it is
    ReDo's and the run keeps its own; at the top it is refused, naming both places."""
    [cfg] = sweep.expand(
        sweep.SweepSpec.from_dict({"seeds": [0], "grid": [{"method": "redo", "method_args": {"tau": 0.1}}]})
    )
    assert cfg.method_settings.tau == 0.1 and cfg.tau == 0.025 and cfg.label == "redo-tau0.1"
    [cfg] = sweep.expand(sweep.SweepSpec.from_dict({"seeds": [0], "base": {"tau": 0.2}, "grid": [{"method": "redo"}]}))
    assert cfg.tau == 0.2 and cfg.method_settings.tau == 0.025  # the run's, and ReDo keeps its default
    with pytest.raises(
        ValueError, match="'tau', both a run field and a setting of redo: write redo's under method_args"
    ):
        sweep.SweepSpec.from_dict({"seeds": [0], "grid": [{"method": "redo", "tau": 0.1}]})


def test_a_second_sweep_on_the_same_logdir_is_refused_while_the_first_runs(tmp_path):
    """Two drivers would train every run twice (``_s0`` and ``_s0_2``): the logdir has one owner, as a run folder
    has, and the refusal comes before Ray starts."""
    from tests.conftest import held_by_another_process

    spec = sweep.SweepSpec.from_dict({**SPEC, "logdir": str(tmp_path), "seeds": [0]})
    configs = sweep.expand(spec)
    with held_by_another_process(tmp_path):
        with pytest.raises(ValueError, match=f"{tmp_path} is in use by another process"):
            sweep.run_sweep(configs, spec, cpus=1, progress=False, log=print)
    assert not (tmp_path / "permuted-mnist").exists()


@pytest.mark.slow
def test_nothing_of_a_sweeps_ray_instance_outlives_its_killed_driver_by_10_s(tmp_path):
    """A SIGKILL gives the driver no chance to shut Ray down: its reaper kills what it had started."""
    from syre_rl.agents.reaper import descendants

    spec = {
        "logdir": str(tmp_path / "runs"),
        "seeds": [0],
        "base": {**SMALL, "tasks": 50, "examples_per_task": 3000, "hidden": "300,300"},
        "grid": [{"method": "syre"}],
    }
    path = tmp_path / "spec.yaml"
    path.write_text(json.dumps(spec))
    argv = [sys.executable, str(ROOT / "scripts" / "sweep.py"), str(path), "--cpus", "1", "--no-progress"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = tmp_path / "runs" / "permuted-mnist" / "syre_s0" / "checkpoint.ckpt"
    deadline = time.time() + 300
    while not started.is_file() and time.time() < deadline:
        time.sleep(0.1)
    assert started.is_file(), "the sweep's run did not start"
    helpers = descendants(proc.pid) - {p for p in descendants(proc.pid) if "reaper" in _cmdline(p)}
    assert len(helpers) >= 3  # Ray's GCS, raylet and a worker at least
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while (left := {p for p in helpers if _running(p)}) and time.time() < deadline:
        time.sleep(0.2)
    assert not left, f"still running 10 s after the driver's SIGKILL: {[_cmdline(p)[:80] for p in left]}"


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


TINY_CARTPOLE = str(Path(__file__).parent / "tiny-cartpole.yaml")


def test_with_batch_settings_a_tuning_grid_is_one_task_of_one_batched_run(tmp_path):
    """groups with batch_settings: grid points that differ only in the method's per-member settings (and their
    seeds) are one batch; points that differ in more (another method, decoupled, a first task) are batches of
    their own. run_group trains the batch, each run in its own folder, resuming the way seeds' batches do."""
    spec = sweep.SweepSpec.from_dict(
        {
            "runs": "rl",
            "logdir": str(tmp_path),
            "seeds": [0, 1],
            "batch_seeds": True,
            "batch_settings": True,
            "base": {"preset": TINY_CARTPOLE, "metrics_every": 0, "device": "cpu"},
            "grid": [
                {"method": "syre", "method_args": {"gamma": [1e-3, 1e-2], "scale": [0.5, 1.0]}},
                {"method": "syre", "method_args": {"gamma": 1e-2, "decoupled": True}},
                {"method": "redo", "method_args": {"tau": [0.0, 0.1]}},
                {"method": "vanilla", "first_task": [1, 2]},
            ],
        }
    )
    configs = sweep.expand(spec)
    batches = sweep.groups(configs, spec.batch_seeds, spec.batch_settings)
    assert [sorted({c.label for c in g}) for g in batches] == [  # the most env steps first, then in sweep order
        ["syre-gamma0.001-scale0.5", "syre-gamma0.001-scale1", "syre-gamma0.01-scale0.5", "syre-gamma0.01-scale1"],
        ["redo-tau0", "redo-tau0.1"],
        ["syre-gamma0.01-decoupledtrue"],
        ["vanilla-firsttask1"],
        ["vanilla-firsttask2"],
    ]
    assert [len(g) for g in batches] == [8, 4, 2, 2, 2]
    assert [(c.label, c.seed) for c in batches[1]] == [
        ("redo-tau0", 0),
        ("redo-tau0", 1),
        ("redo-tau0.1", 0),
        ("redo-tau0.1", 1),
    ]
    split = sweep.groups(configs, True, True, max_batch=3)  # at most 3 runs a batch, in label and seed order
    assert [len(g) for g in split] == [3, 3, 3, 2, 2, 2, 2, 1]
    assert [(c.label, c.seed) for c in split[1]] == [
        ("syre-gamma0.001-scale1", 1),
        ("syre-gamma0.01-scale0.5", 0),
        ("syre-gamma0.01-scale0.5", 1),
    ]
    assert len(sweep.groups(configs, True)) == 9  # batch_seeds alone: each point's seeds

    out = sweep.run_group(batches[1])
    assert out["label"] == "redo-tau0,redo-tau0.1" and out["seed"] == "0,1" and out["runs"] == 4
    assert out["result"].startswith("4 runs batched")
    for c in batches[1]:
        saved = json.loads((tmp_path / "CartPole-v1" / f"{c.label}_s{c.seed}" / "config.json").read_text())
        assert saved["method_settings"]["tau"] == c.method_settings.tau and saved["batched"] is True
        summary = json.loads((tmp_path / "CartPole-v1" / f"{c.label}_s{c.seed}" / "summary.json").read_text())
        assert summary["seeds_in_batch"] == 4 and summary["timesteps"] == 832
    shutil.rmtree(tmp_path / "CartPole-v1" / "redo-tau0.1_s1")
    assert sweep.run_group(batches[1])["result"].startswith("3 done already; 1 runs batched")
    with pytest.raises(ValueError, match="batch_settings batches grid points' seeds together: give batch_seeds"):
        sweep.SweepSpec.from_dict({**spec.to_dict(), "batch_seeds": False})
    with pytest.raises(ValueError, match="sweep max_batch must be an integer >= 1 .*, got 0"):
        sweep.SweepSpec.from_dict({**spec.to_dict(), "max_batch": 0})


def test_with_batch_seeds_a_grid_points_seeds_are_one_task_of_one_batched_run(tmp_path):
    """groups: the seeds of each grid point, where the kind can batch them; run_group trains them as one batch
    (each seed's folder as its single run), resumes what was started and skips what is done."""
    spec = sweep.SweepSpec.from_dict(
        {
            "runs": "rl",
            "logdir": str(tmp_path),
            "seeds": [2, 0, 1],
            "batch_seeds": True,
            "base": {"preset": TINY_CARTPOLE, "metrics_every": 0, "device": "cpu"},
            "grid": [{"method": "vanilla"}, {"method": "syre", "method_args": {"gamma": 1e-2}}],
        }
    )
    configs = sweep.expand(spec)
    batches = sweep.groups(configs, spec.batch_seeds)
    assert [(g[0].label, [c.seed for c in g]) for g in batches] == [
        ("vanilla", [0, 1, 2]),
        ("syre-gamma0.01", [0, 1, 2]),
    ]
    assert len(sweep.groups(configs, False)) == 6
    sac = [dataclasses.replace(c, algo="sac") for c in configs[:3]]  # a kind's settings that cannot batch
    assert all(c.batch_of_seeds([0, 1]) is None for c in sac)

    out = sweep.run_group(batches[1])
    assert out["seed"] == "0,1,2" and out["result"].startswith("3 runs batched") and out["runs"] == 3
    assert [sweep.status(c) for c in batches[1]] == ["done"] * 3
    summary = json.loads((tmp_path / "CartPole-v1" / "syre-gamma0.01_s1" / "summary.json").read_text())
    assert summary["seeds_in_batch"] == 3 and summary["timesteps"] == 832
    direct = train_seeds(dataclasses.replace(batches[1][0].batch_of_seeds([0, 1, 2]), logdir=str(tmp_path / "d")))
    assert direct[1]["mean_return"] == summary["mean_return"]  # the same batch as scripts/train.py --seeds 0-2

    shutil.rmtree(tmp_path / "CartPole-v1" / "syre-gamma0.01_s2")  # seed 2 lost: the others are done
    again = sweep.run_group(batches[1])
    assert again["result"].startswith("2 done already; 1 runs batched")
    assert [sweep.status(c) for c in batches[1]] == ["done"] * 3
