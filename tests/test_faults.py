"""Fault injection (slow; `make test-slow`, CI): real continual and PPO runs killed with SIGKILL at random moments
and resumed until they finish. Every resume must complete with nothing lost; a continual run's results must equal
an uninterrupted run's exactly."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
KILLS = 10  # per kind of run, at least


def kill_and_resume(argv: list[str], started: Path, rng: random.Random, low: float, high: float) -> int:
    """Run ``argv`` (with ``--resume`` once ``started`` exists), killing it with SIGKILL after a random time in
    [low, high] s, again and again until a run ends by itself; returns the number of kills."""
    kills = 0
    while True:
        resume = ["--resume"] if started.is_file() else []
        proc = subprocess.Popen(
            [sys.executable, *argv, *resume],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=rng.uniform(low, high))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the run and any worker it started
            proc.wait()
            kills += 1
            continue
        err = proc.stderr.read()
        # a kill after the last checkpoint but before the end of the process leaves a finished run, said so
        assert proc.returncode == 0 or "is finished" in err, err[-2000:]
        return kills


def records(run: Path) -> list[dict]:
    return [
        {k: v for k, v in json.loads(line).items() if k != "wall_s"}
        for line in (run / "results.jsonl").read_text().splitlines()
    ]


@pytest.mark.slow
def test_continual_runs_killed_at_random_resume_to_the_uninterrupted_result(tmp_path):
    rng = random.Random(0)
    base = [
        str(ROOT / "scripts" / "continual.py"),
        "--tasks",
        "4",
        "--examples-per-task",
        "500",
        "--hidden",
        "32,32",
        "--probe-size",
        "100",
        "--batch-size",
        "32",
        "--method",
        "syre",
        "--no-progress",
        "--threads",
        "1",
    ]
    subprocess.run([sys.executable, *base, "--logdir", str(tmp_path / "straight")], check=True, capture_output=True)
    reference = records(tmp_path / "straight" / "permuted-mnist" / "syre_s0")
    kills, attempt = 0, 0
    while kills < KILLS:
        attempt += 1
        logdir = tmp_path / f"killed{attempt}"
        run = logdir / "permuted-mnist" / "syre_s0"
        kills += kill_and_resume([*base, "--logdir", str(logdir)], run / "config.json", rng, 0.5, 6.0)
        assert records(run) == reference  # the same numbers as the uninterrupted run, bit for bit
        assert sorted(p.name for p in run.parent.iterdir() if not p.name.startswith(".")) == ["syre_s0"]  # no orphan
        assert not [p for p in run.iterdir() if ".tmp" in p.name]  # no temporary file left behind
    print(f"continual: {kills} kills over {attempt} runs, every one resumed to the uninterrupted result")


@pytest.mark.slow
def test_ppo_runs_killed_at_random_resume_to_completion(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rng = random.Random(1)
    kills, attempt = 0, 0
    while kills < KILLS:
        attempt += 1
        logdir = tmp_path / f"killed{attempt}"
        run = logdir / "AntBulletEnv-v0" / "syre_s0"
        argv = [
            str(ROOT / "scripts" / "train_ppo.py"),
            "--syre",
            "--preset",
            str(ROOT / "tests" / "tiny-preset.yaml"),
            "--timesteps",
            "1280",
            "--checkpoint-every",
            "128",
            "--metrics-every",
            "0",
            "--no-progress",
            "--device",
            "cpu",
            "--logdir",
            str(logdir),
        ]
        kills += kill_and_resume(argv, run / "config.json", rng, 1.0, 8.0)
        summary = json.loads((run / "summary.json").read_text())
        assert summary["timesteps"] == 1280
        events = EventAccumulator(str(run))
        events.Reload()
        steps = [e.step for e in events.Scalars("time/fps")]
        assert steps == list(range(128, 1281, 128))  # every rollout logged, once
        assert sorted(p.name for p in run.parent.iterdir() if not p.name.startswith(".")) == ["syre_s0"]
        assert not [p for p in run.iterdir() if ".tmp" in p.name]
    print(f"ppo: {kills} kills over {attempt} runs, every one resumed to completion")


def test_kill_and_resume_counts_kills(tmp_path):
    """The harness of the slow tests: a process that outlives the wait is killed and started again."""
    flag = tmp_path / "flag"
    code = (
        "import sys, time, pathlib\np = pathlib.Path(sys.argv[1])\n"
        "if not p.exists():\n    p.write_text('1')\n    time.sleep(60)\n"
    )
    start = time.time()
    assert kill_and_resume(["-c", code, str(flag)], tmp_path / "never", random.Random(0), 1.0, 1.5) == 1
    assert time.time() - start < 30
