"""The package's shape: one import name, a library that never imports the harness, a method core that needs only
torch and numpy. Checked from the code's imports and from a real install, so a wrong import fails CI."""

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LIBRARY = ROOT / "syre_rl"  # the folder holds the library only; agents/ and envs/ install as syre_rl.agents/.envs
HARNESS = ("syre_rl.agents", "syre_rl.envs", "agents", "envs")
CORE = ("__init__", "settings", "base", "syre", "methods", "metrics")  # needs torch and numpy, nothing else
CORE_PACKAGES = {"torch", "numpy", "syre_rl"}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, those inside functions included; ``importlib`` calls and
    string tables of module names (lazy exports) count too, as string constants naming a module path."""
    tree = ast.parse(path.read_text(), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError(f"{path}:{node.lineno}: relative import; use absolute syre_rl imports")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("syre_rl."):
            found.append((node.lineno, node.value.split(":")[0]))
    return found


def is_under(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.py")), ids=lambda p: p.name)
def test_the_library_never_imports_the_harness(path):
    wrong = [f"{path.name}:{line}: {module}" for line, module in imported_modules(path) if is_under(module, HARNESS)]
    assert not wrong, f"the library imports the harness: {wrong}"


@pytest.mark.parametrize("name", CORE)
def test_the_method_core_imports_only_torch_numpy_and_the_standard_library(name):
    outside = [f"{line}: {module}" for line, module in imported_modules(LIBRARY / f"{name}.py")
               if module.split(".")[0] not in sys.stdlib_module_names | CORE_PACKAGES]
    assert not outside, f"syre_rl/{name}.py imports {outside}"


def test_the_direction_check_catches_a_wrong_import(tmp_path):
    """The checks above can fail: a library file with a lazy harness import is caught, an importlib string too."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from syre_rl.agents.runs import atomic_write\n"
                   "TABLE = {'x': 'syre_rl.envs.vec'}\n")
    assert [m for _, m in imported_modules(bad) if is_under(m, HARNESS)] == [
        "syre_rl.agents.runs", "syre_rl.agents.runs.atomic_write", "syre_rl.envs.vec"]


@pytest.mark.parametrize("folder", ["agents", "envs", "scripts", "tests"])
def test_nothing_imports_the_old_top_level_names(folder):
    wrong = [f"{p.relative_to(ROOT)}:{line}: {m}" for p in sorted((ROOT / folder).rglob("*.py"))
             for line, m in imported_modules(p) if m.split(".")[0] in ("agents", "envs")]
    assert not wrong


BLOCKER = """
import importlib.abc, sys
BLOCKED = {"pybullet", "pybullet_envs_gymnasium", "matplotlib", "tensorboard", "yaml", "stable_baselines3",
           "gymnasium"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Block())
"""


def test_import_syre_rl_and_attach_syre_work_without_the_harness_packages():
    """In a process where PyBullet, matplotlib, TensorBoard, PyYAML, SB3 and gymnasium cannot be imported,
    the method core works: every method by name, and syre trains a network toward its anchors."""
    code = BLOCKER + """
import torch, syre_rl
from syre_rl.methods import METHODS, make_method
net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
opt = torch.optim.SGD(net.parameters(), lr=0.1)
syre = syre_rl.attach_syre(net, opt, gamma=0.5, seed=0)
before = syre.anchor_distance()
for _ in range(20):
    opt.zero_grad()
    sum(p.sum() * 0 for p in net.parameters()).backward()  # zero loss: only the decay acts
    opt.step()
names = [make_method(n).name for n in METHODS]
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(round(syre.anchor_distance() / before, 6), len(names), loaded)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{(1 - 0.1 * 0.5) ** 20:.6f}".rstrip("0"), "9", "[]"]


def test_an_install_adds_one_top_level_name(tmp_path):
    """A wheel built from the project holds ``syre_rl`` (with ``syre_rl.agents``, ``syre_rl.envs`` and their
    YAML files) and its metadata, nothing else: no ``agents`` or ``envs`` on the user's path."""
    src = tmp_path / "src"
    for name in ("syre_rl", "agents", "envs"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(src)],
                   check=True, capture_output=True)
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("*.whl"))).namelist()
    assert sorted({n.split("/")[0] for n in names}) == ["syre_rl", "syre_rl-0.1.0.dist-info"]
    assert {"syre_rl/agents/presets/dohare.yaml", "syre_rl/agents/experiments/pm-online.yaml",
            "syre_rl/envs/slippery.py", "syre_rl/syre.py"} <= set(names)
