"""Fingerprints of a few small runs made through the command lines, to show that a change of the harness changes
no result: run it before and after (in a checkout of each) and compare the two JSON files.

    python scripts/fingerprint_runs.py --out /tmp/after.json       # about 2 minutes on 2 cores
    python scripts/fingerprint_runs.py --compare /tmp/before.json /tmp/after.json

Each run's fingerprint is the SHA-256 of its records without their wall-clock times, and of its final weights:
a 3-task permuted-MNIST continual run (syre), a PPO run with syre on permuted-observation CartPole, a PPO run on
the slippery Ant with its friction schedule, and experiment 1 (``scripts/symmetric_init.py``, 2 seeds; its full
5-seed run is compared with ``results/symmetric-init`` the same way).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "continual": [
        "scripts/continual.py",
        "--tasks",
        "3",
        "--examples-per-task",
        "600",
        "--probe-size",
        "300",
        "--method",
        "syre",
        "--method-args",
        "gamma=1e-2,scale=1.0",
        "--hidden",
        "64,64",
        "--seed",
        "3",
    ],
    "ppo-cartpole": [
        "scripts/train.py",
        "--algo",
        "ppo",
        "--preset",
        "cartpole-tasks",
        "--env",
        "CartPole-v1",
        "--timesteps",
        "4096",
        "--permute-every",
        "2048",
        "--task-shift",
        "permute-repeating",  # the stream the flag meant before issue 21 (fingerprints compare across it)
        "--syre",
        "--seed",
        "1",
        "--metrics-every",
        "1",
    ],
    "ppo-slippery": [
        "scripts/train.py",
        "--algo",
        "ppo",
        "--env",
        "SlipperyAntBulletEnv-v0",
        "--n-envs",
        "2",
        "--timesteps",
        "2048",
        "--friction-every",
        "512",
        "--method",
        "redo",
        "--seed",
        "2",
    ],
}
TIMES = ("wall_s", "time/fps", "time/time_elapsed", "steps_per_s")


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def tensors_digest(state: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        if isinstance(state[key], torch.Tensor):
            h.update(key.encode() + state[key].detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def continual(run_dir: Path) -> dict:
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    for r in records:
        r.pop("wall_s")
    checkpoint = next(p for p in run_dir.glob("checkpoint.*") if not p.name.endswith(".prev"))
    from syre_rl.agents.runs import read_verified

    state = torch.load(io.BytesIO(read_verified(checkpoint)), weights_only=False)
    return {"records": digest(records), "weights": tensors_digest(state["learner"]["net"])}


def rl(run_dir: Path) -> dict:
    with open(run_dir / "progress.csv", newline="") as f:
        rows = [{k: v for k, v in row.items() if k not in TIMES} for row in csv.DictReader(f)]
    with zipfile.ZipFile(run_dir / "model.zip") as z:
        weights = torch.load(io.BytesIO(z.read("policy.pth")), weights_only=False)
    summary = {
        k: v
        for k, v in json.loads((run_dir / "summary.json").read_text()).items()
        if k not in TIMES + ("run_dir", "model")
    }
    return {"records": digest(rows), "summary": digest(summary), "weights": tensors_digest(weights)}


def experiment_1(out: Path) -> dict:
    subprocess.run(
        [sys.executable, "scripts/symmetric_init.py", "--seeds", "2", "--out", str(out)],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest()[:16] for name in ("curves.csv", "summary.csv")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="write the fingerprints here (JSON)")
    parser.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"), help="compare two fingerprint files")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(Path(p).read_text()) for p in args.compare)
        for name in sorted(set(before) | set(after)):
            same = before.get(name) == after.get(name)
            print(f"{name:14} {'identical' if same else 'DIFFERENT'}  {before.get(name)}  {after.get(name)}")
        raise SystemExit(0 if before == after else 1)
    prints = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, argv in RUNS.items():
            logdir = Path(tmp) / name
            subprocess.run(
                [sys.executable, *argv, "--logdir", str(logdir), "--no-progress"],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            [run_dir] = [p.parent for p in logdir.glob("*/*/config.json")]
            prints[name] = continual(run_dir) if name == "continual" else rl(run_dir)
            print(name, prints[name], flush=True)
        prints["experiment-1"] = experiment_1(Path(tmp) / "exp1")
        print("experiment-1", prints["experiment-1"])
    if args.out:
        Path(args.out).write_text(json.dumps(prints, indent=2) + "\n")


if __name__ == "__main__":
    main()
