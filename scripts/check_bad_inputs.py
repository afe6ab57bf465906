"""Bad input as a new user gives it: every case must be refused in one line naming the value (exit 1 or 2, no
traceback), before any work. Prints a line per case and the count refused out of the total; exits 1 if any
case is not refused.

    python scripts/check_bad_inputs.py            # about 2 minutes on 2 cores (each case is a fresh process)
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--tasks", "2", "--examples-per-task", "200", "--probe-size", "100", "--hidden", "16", "--no-progress"]
API = "import torch, syre_rl\nnet = torch.nn.Sequential(torch.nn.Linear(4, 2))\n"


def cases(scratch: Path) -> list[tuple[str, list[str]]]:
    """(what, argv after the python executable)."""
    file = scratch / "a-file"
    file.write_text("")

    def preset(name: str, text: str) -> str:
        (scratch / f"{name}.yaml").write_text(f"algo: ppo\nenv: CartPole-v1\ntimesteps: 2048\n{text}\n")
        return str(scratch / f"{name}.yaml")

    def spec(name: str, text: str) -> str:
        (scratch / f"{name}.yaml").write_text(text)
        return str(scratch / f"{name}.yaml")

    sweep = ["scripts/sweep.py", "--list"]
    grid = "grid:\n  - {method: vanilla}\n"
    return [
        ("continual --seed -1", ["scripts/continual.py", "--seed", "-1"]),
        ("continual --seeds -1-2", ["scripts/continual.py", "--seeds", "-1-2"]),
        ("continual --seeds=-1-2", ["scripts/continual.py", "--seeds=-1-2"]),
        ("continual --hidden 100000000", ["scripts/continual.py", "--hidden", "100000000"]),
        ("continual --logdir FILE", ["scripts/continual.py", "--logdir", str(file)]),
        ("train --logdir FILE/x", ["scripts/train.py", "--logdir", str(file / "x")]),
        ("train --save FILE/m.zip", ["scripts/train.py", "--save", str(file / "m.zip")]),
        ("train --env CarRacing-v3 (no Box2D)", ["scripts/train.py", "--env", "CarRacing-v3", "--algo", "ppo"]),
        (
            "preset net_arch pi [64, -1]",
            ["scripts/train.py", "--preset", preset("a", "policy_kwargs: {net_arch: {pi: [64, -1], vf: [64]}}")],
        ),
        (
            "preset learning_rate .inf",
            ["scripts/train.py", "--preset", preset("b", "algo_kwargs: {learning_rate: .inf}")],
        ),
        ("preset gamma .nan", ["scripts/train.py", "--preset", preset("c", "method_settings: {gamma: .nan}")]),
        (
            "preset key given twice",
            ["scripts/train.py", "--preset", preset("d", "algo_kwargs: {n_steps: 8, n_steps: 16}")],
        ),
        ("--method-args gamma twice", ["scripts/train.py", "--syre", "--method-args", "gamma=0.1,gamma=0.2"]),
        ("sweep seeds twice", [*sweep, spec("s1", f"seeds: [0]\n{grid}seeds: [1]\n")]),
        ("sweep seeds [-1, 0]", [*sweep, spec("s2", f"seeds: [-1, 0]\n{grid}")]),
        ("sweep base seeds", [*sweep, spec("s3", f"seeds: [0]\nbase: {{seeds: [0, 1]}}\n{grid}")]),
        ("sweep grid seeds", [*sweep, spec("s4", "seeds: [0]\ngrid:\n  - {method: vanilla, seeds: [1]}\n")]),
        ("sweep gamma: []", [*sweep, spec("s5", "seeds: [0]\ngrid:\n  - {method: l2, method_args: {gamma: []}}\n")]),
        ("sweep logdir and base logdir", [*sweep, spec("s6", f"seeds: [0]\nlogdir: a\nbase: {{logdir: b}}\n{grid}")]),
        ("sweep {method: redo, tau: 0.5}", [*sweep, spec("s7", "seeds: [0]\ngrid:\n  - {method: redo, tau: 0.5}\n")]),
        (
            "sweep runs: rl, redo tau",
            [*sweep, spec("s8", "runs: rl\nseeds: [0]\ngrid:\n  - {method: redo, tau: 0.5}\n")],
        ),
        ("compare --out FILE", ["scripts/compare.py", str(scratch / "runs"), "--out", str(file)]),
        (
            "resume: config.json damaged",
            ["scripts/continual.py", *TINY, "--logdir", str(scratch / "bad-config"), "--resume"],
        ),
        (
            "resume: config.json gone",
            ["scripts/continual.py", *TINY, "--logdir", str(scratch / "no-config"), "--resume"],
        ),
        (
            "resume: .lock is a folder",
            ["scripts/continual.py", *TINY, "--logdir", str(scratch / "lock-dir"), "--resume"],
        ),
        ("attach_syre(net, None)", ["-c", API + "syre_rl.attach_syre(net, None, gamma=0.1)"]),
        ("attach_syre(net, net)", ["-c", API + "syre_rl.attach_syre(net, net, gamma=0.1)"]),
        (
            "attach_syre params='0.weight'",
            [
                "-c",
                API + "opt = torch.optim.SGD(net.parameters(), lr=0.1)\n"
                "syre_rl.attach_syre(net, opt, gamma=0.1, params='0.weight')",
            ],
        ),
        (
            "attach_syre on AdamW (weight_decay 0.01)",
            ["-c", API + "syre_rl.attach_syre(net, torch.optim.AdamW(net.parameters()), gamma=0.1)"],
        ),
    ]


def prepare(scratch: Path) -> None:
    """Finished runs to damage: one whose config.json is not JSON, one without it, one whose .lock is a folder."""
    for name in ("bad-config", "no-config", "lock-dir"):
        subprocess.run(
            [sys.executable, "scripts/continual.py", *TINY, "--logdir", str(scratch / name), "--tasks", "1"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    run = "permuted-mnist/vanilla_s0"
    (scratch / "bad-config" / run / "config.json").write_text('{"tasks": ')
    (scratch / "no-config" / run / "config.json").unlink()
    (scratch / "lock-dir" / run / ".lock").unlink(missing_ok=True)
    (scratch / "lock-dir" / run / ".lock").mkdir()
    subprocess.run(
        [sys.executable, "scripts/continual.py", *TINY, "--logdir", str(scratch / "runs"), "--tasks", "1"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def refused(proc: subprocess.CompletedProcess) -> bool:
    """Exit 1 or 2, no traceback; a script's message is one line; the API's last line names the error."""
    err = proc.stderr.strip().splitlines()
    if proc.returncode not in (1, 2) or not err:
        return False
    if proc.args[1] == "-c":  # an exception in the user's own code: its last line must say what is wrong
        return err[-1].startswith(("TypeError: ", "ValueError: ")) and len(err[-1]) > 40
    return "Traceback" not in proc.stderr and len(err) == 1 and ": error: " in err[0]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        prepare(scratch)
        results = []
        for what, argv in cases(scratch):
            proc = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True, timeout=300)
            ok = refused(proc)
            results.append(ok)
            said = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"(exit {proc.returncode})"
            print(f"{'refused' if ok else 'NOT REFUSED':11} {what}: {said[:160]}", flush=True)
    print(json.dumps({"refused": sum(results), "cases": len(results)}))
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
