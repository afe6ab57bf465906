"""The lowest versions pyproject.toml allows work: scripts/check_lower_bounds.py installs exactly them in a fresh
venv (torch at constraints.txt's version, the local CPU wheel) and runs the library's tests there. And installing
the sb3 extra into an older SB3 project leaves its SB3 and torch alone."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from check_lower_bounds import lower_bounds, lowest, pinned, run  # noqa: E402

import syre_rl  # noqa: E402


def installed(python: Path) -> dict[str, str]:
    """Distribution (normalised name) -> version in the environment of ``python``."""
    frozen = run(python, "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check")
    return {
        re.sub(r"[-_.]+", "-", name).lower(): version
        for name, version in re.findall(r"^(\S+)==(\S+)$", frozen, re.MULTILINE)
    }


def test_the_lowest_version_of_a_range():
    assert lowest("torch>=2.1") == "torch==2.1.0"
    assert lowest("gymnasium>=0.29.1,<2") == "gymnasium==0.29.1"
    with pytest.raises(ValueError, match="has no single >= lower bound"):
        lowest("pandas<3")
    assert lower_bounds() == {
        "torch": "torch==2.1.0",
        "numpy": "numpy==1.24.0",
        "stable-baselines3": "stable-baselines3==2.3.0",
        "gymnasium": "gymnasium==0.29.1",
        "sb3-contrib": "sb3-contrib==2.3.0",
        "tensorboard": "tensorboard==2.14.0",
    }


@pytest.mark.slow
def test_the_library_passes_its_tests_at_the_lower_bounds():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "check_lower_bounds.py")], capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    installed = dict(re.findall(r"(\S+) (\S+?)(?:,|$)", proc.stdout.splitlines()[0].removeprefix("installed: ")))
    assert installed == {
        "torch": "2.13.0+cpu",
        "numpy": "1.24.0",
        "stable-baselines3": "2.3.0",
        "gymnasium": "0.29.1",
        "sb3-contrib": "2.3.0",
        "tensorboard": "2.14.0",
    }
    assert re.search(r"\d+ passed", proc.stdout) and "failed" not in proc.stdout.splitlines()[1]


@pytest.mark.slow
def test_installing_the_sb3_extra_keeps_an_older_sb3_and_its_torch(tmp_path):
    """A user's project on SB3 2.3.2: ``pip install 'syre_rl[sb3]'`` changes none of its SB3, gymnasium, numpy or
    torch, and brings no sb3-contrib."""
    python = tmp_path / "venv" / "bin" / "python"
    run(sys.executable, "-m", "venv", tmp_path / "venv")
    pip = (python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check")
    run(*pip, pinned("torch"))
    run(*pip, "stable-baselines3==2.3.2")
    before = installed(python)
    run(python, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path / "dist", ROOT)
    wheel = next((tmp_path / "dist").glob("syre_rl-*.whl"))
    run(*pip, f"syre_rl[sb3] @ {wheel.as_uri()}")
    after = installed(python)
    kept = ("stable-baselines3", "gymnasium", "numpy", "torch")
    print("before:", {k: before[k] for k in kept}, "after:", {k: after[k] for k in kept})
    assert {k: after[k] for k in kept} == {k: before[k] for k in kept} and before["stable-baselines3"] == "2.3.2"
    assert "sb3-contrib" not in after and after["syre-rl"] == syre_rl.__version__
