"""Test the library at the lowest versions pyproject.toml allows: a fresh venv gets exactly the lower bound of
every range of the core, ``sb3`` and ``contrib`` extras (torch, numpy, stable-baselines3, gymnasium, sb3-contrib)
and of tensorboard, then syre_rl from this checkout without dependencies, then runs the library's tests there.

    python scripts/check_lower_bounds.py                  # torch at constraints.txt's 2.13.0 (the local CPU wheel)
    python scripts/check_lower_bounds.py --torch lower    # torch at its own lower bound too (a multi-GB download)

It prints the versions installed and pytest's summary, and exits with pytest's status. tests/test_lower_bounds.py
runs the first form (``make test-slow``).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = ("sb3", "contrib")
ALSO = ("tensorboard",)  # the HParams test reads TensorBoard's own event files
TESTS = (
    "test_syre.py",
    "test_methods.py",
    "test_settings.py",
    "test_metrics.py",
    "test_cbp.py",
    "test_policies.py",
    "test_algorithms.py",
    "test_copies.py",
    "test_callbacks.py",
)
REPORTED = ("torch", "numpy", "stable-baselines3", "gymnasium", "sb3-contrib", "tensorboard")


def lowest(requirement: str) -> str:
    """``name==X`` for a requirement with a ``>=X`` bound (``torch>=2.1`` -> ``torch==2.1.0``)."""
    req = Requirement(requirement)
    floors = [s.version for s in req.specifier if s.operator == ">="]
    if len(floors) != 1:
        raise ValueError(f"{requirement!r} has no single >= lower bound to test")
    version = floors[0] + ".0" * (2 - floors[0].count("."))
    return f"{req.name}=={version}"


def lower_bounds() -> dict[str, str]:
    """Distribution name -> ``name==lowest`` of every range the library declares (core, sb3, contrib) and of
    :data:`ALSO` (from the harness extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    requirements = [*project["dependencies"], *(r for e in EXTRAS for r in optional[e])]
    requirements += [r for r in optional["harness"] if Requirement(r).name in ALSO]
    return {Requirement(r).name: lowest(r) for r in requirements if not r.startswith("syre_rl")}


def pinned(name: str) -> str:
    """``name==X`` as constraints.txt pins it."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if re.match(rf"{re.escape(name)}==", line, re.IGNORECASE):
            return line.strip()
    raise ValueError(f"constraints.txt pins no {name}")


def run(*args: str | Path) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--torch",
        choices=("pinned", "lower"),
        default="pinned",
        help="torch at constraints.txt's version (default; the local CPU wheel) or at its lower "
        "bound (downloads a CUDA build of several GB)",
    )
    parser.add_argument("--venv", type=Path, help="where to make the venv (default: a temporary folder)")
    args = parser.parse_args()
    bounds = lower_bounds()
    if args.torch == "pinned":
        bounds["torch"] = pinned("torch")
    with tempfile.TemporaryDirectory() as scratch:
        venv = args.venv or Path(scratch) / "venv"
        python = venv / "bin" / "python"
        run(sys.executable, "-m", "venv", venv)
        pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
        run(*pip, bounds["torch"])  # first and alone: nothing else may choose another torch
        run(*pip, *bounds.values(), "pytest")
        run(*pip, "--no-deps", ROOT)
        versions = dict(re.findall(r"^(\S+)==(\S+)$", run(python, "-m", "pip", "freeze"), re.MULTILINE))
        found = {name: versions.get(name, versions.get(name.replace("-", "_"), "?")) for name in REPORTED}
        print("installed: " + ", ".join(f"{name} {version}" for name, version in found.items()), flush=True)
        tests = [str(ROOT / "tests" / name) for name in TESTS]
        proc = subprocess.run(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow and not gpu", *tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        print(proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-3000:])
        if proc.returncode != 0:
            print(proc.stdout[-6000:])
        return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
