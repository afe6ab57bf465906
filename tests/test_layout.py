"""The package's shape: one import name, a library that never imports the harness, a method core that needs only
torch and numpy. Checked from the code's imports and from a real install, so a wrong import fails CI."""

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

import syre_rl
from syre_rl.extras import EXTRAS, INCLUDES

ROOT = Path(__file__).parent.parent
LIBRARY = ROOT / "syre_rl"  # the folder holds the library only; agents/ and envs/ install as syre_rl.agents/.envs
HARNESS = ("syre_rl.agents", "syre_rl.envs", "agents", "envs")
CORE = (
    "__init__",
    "settings",
    "base",
    "syre",
    "methods",
    "metrics",
    "extras",
    "files",
)  # needs torch and numpy, nothing else
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


@pytest.mark.parametrize("path", sorted((ROOT / "envs").glob("*.py")), ids=lambda p: p.name)
def test_the_environments_never_import_the_rest_of_the_harness(path):
    """Imports go one way: agents builds on envs, envs only on the library."""
    wrong = [f"{path.name}:{line}: {m}" for line, m in imported_modules(path) if is_under(m, ("syre_rl.agents",))]
    assert not wrong, f"envs imports agents: {wrong}"


@pytest.mark.parametrize("name", CORE)
def test_the_method_core_imports_only_torch_numpy_and_the_standard_library(name):
    outside = [
        f"{line}: {module}"
        for line, module in imported_modules(LIBRARY / f"{name}.py")
        if module.split(".")[0] not in sys.stdlib_module_names | CORE_PACKAGES
    ]
    assert not outside, f"syre_rl/{name}.py imports {outside}"


def test_the_direction_check_catches_a_wrong_import(tmp_path):
    """The checks above can fail: a library file with a lazy harness import is caught, an importlib string too."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from syre_rl.agents.runs import atomic_write\nTABLE = {'x': 'syre_rl.envs.vec'}\n")
    assert [m for _, m in imported_modules(bad) if is_under(m, HARNESS)] == [
        "syre_rl.agents.runs",
        "syre_rl.agents.runs.atomic_write",
        "syre_rl.envs.vec",
    ]


@pytest.mark.parametrize("folder", ["agents", "envs", "scripts", "tests"])
def test_nothing_imports_the_old_top_level_names(folder):
    wrong = [
        f"{p.relative_to(ROOT)}:{line}: {m}"
        for p in sorted((ROOT / folder).rglob("*.py"))
        for line, m in imported_modules(p)
        if m.split(".")[0] in ("agents", "envs")
    ]
    assert not wrong


def blocking(modules: set[str]) -> str:
    """Code that makes ``modules`` (and their submodules) impossible to import in the process that runs it."""
    return f"""
import importlib.abc, sys
BLOCKED = {sorted(modules)!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{{name}} is blocked in this test")
sys.meta_path.insert(0, Block())
"""


BLOCKER = blocking(
    {"pybullet", "pybullet_envs_gymnasium", "matplotlib", "tensorboard", "yaml", "stable_baselines3", "gymnasium"}
)


def test_import_syre_rl_and_attach_syre_work_without_the_harness_packages():
    """In a process where PyBullet, matplotlib, TensorBoard, PyYAML, SB3 and gymnasium cannot be imported,
    the method core works: every method by name, and syre trains a network toward its anchors."""
    code = (
        BLOCKER
        + """
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
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [f"{(1 - 0.1 * 0.5) ** 20:.6f}".rstrip("0"), "9", "[]"]


BUILT = {".venv", "runs", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache", "syre_rl.egg-info"}


def project_files() -> list[str]:
    """The project's files, relative to its root: what git tracks or would (a checkout), or everything but what
    building and testing leave behind (an unpacked sdist, which has no git)."""
    if (ROOT / ".git").exists():
        names = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    else:
        names = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if not BUILT & set(p.relative_to(ROOT).parts)]
    return sorted(n for n in names if (ROOT / n).is_file())


def build(tmp_path: Path, kind: str) -> Path:
    """A wheel or an sdist built from the tracked files (what a clean clone has), without build isolation."""
    src = tmp_path / "src"
    for name in project_files():
        if not name.startswith("results/"):
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, src / name)
    code = f"import setuptools.build_meta as b; print(b.build_{kind}({str(tmp_path / 'dist')!r}))"
    (tmp_path / "dist").mkdir()
    result = subprocess.run([sys.executable, "-c", code], cwd=src, capture_output=True, text=True, check=True)
    assert "absent from the packages configuration" not in result.stdout + result.stderr  # a clean build
    return tmp_path / "dist" / result.stdout.split()[-1]


def test_an_install_adds_one_top_level_name(tmp_path):
    """A wheel built from the project holds ``syre_rl`` (with ``syre_rl.agents``, ``syre_rl.envs`` and their
    YAML files, and ``py.typed``) and its metadata, nothing else: no ``agents`` or ``envs`` on the user's path."""
    names = zipfile.ZipFile(build(tmp_path, "wheel")).namelist()
    assert sorted({n.split("/")[0] for n in names}) == ["syre_rl", f"syre_rl-{syre_rl.__version__}.dist-info"]
    assert {
        "syre_rl/agents/presets/dohare.yaml",
        "syre_rl/agents/experiments/pm-online.yaml",
        "syre_rl/py.typed",
        "syre_rl/envs/slippery.py",
        "syre_rl/syre.py",
        "syre_rl/contrib.py",
    } <= set(names)


def test_the_sdist_holds_every_file_its_tests_need(tmp_path):
    """Everything tracked but the published results: the tests, their YAML files and conftest, the scripts, the
    Makefile and constraints.txt (``make test`` in the unpacked sdist sets up and runs the suite)."""
    with tarfile.open(build(tmp_path, "sdist")) as sdist:
        held = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    wanted = {f for f in project_files() if not f.startswith("results/") and f != ".gitignore"}
    assert wanted - held == set()
    assert {
        "tests/conftest.py",
        "tests/tiny-preset.yaml",
        "scripts/train_ppo.py",
        "Makefile",
        "constraints.txt",
    } <= held


def test_the_version_is_written_once():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["dynamic"] == ["version"] and "version" not in pyproject["project"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "syre_rl.__version__"}
    assert importlib.metadata.version("syre_rl") == syre_rl.__version__


def test_tab_completion_shows_the_lazily_loaded_policies():
    assert {"SyreActorCriticPolicy", "MethodTQCPolicy", "attach_syre", "__version__"} <= set(dir(syre_rl))


def test_the_extras_table_is_pyprojects():
    """syre_rl.extras names what each extra brings, for its messages: the same packages as pyproject.toml."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, pairs in EXTRAS.items():
        names = {re.split(r"[<>=\[ ]", r)[0] for r in declared[extra]} - {"syre_rl"}
        assert names == {dist for _, dist in pairs}, extra
        included, new = set(), {extra}
        while new:  # the extras it includes, and theirs
            new = {r.split("[")[1].rstrip("]") for e in new for r in declared[e] if r.startswith("syre_rl[")}
            included |= new
        assert included == set(INCLUDES.get(extra, ())), extra
    assert declared["sb3"] == ["stable-baselines3>=2.3,<3", "gymnasium>=0.29.1,<2"]  # SB3's own, nothing more


@pytest.mark.parametrize(
    "blocked,code,message",
    [
        (
            {"sb3_contrib"},
            "import syre_rl.callbacks, syre_rl.policies; syre_rl.SyreTQCPolicy",
            "syre_rl.SyreTQCPolicy needs sb3-contrib, not installed here: pip install 'syre_rl[contrib]'",
        ),
        (
            {"sb3_contrib"},
            "from syre_rl.policies import MethodQRDQNPolicy",
            "syre_rl.policies.MethodQRDQNPolicy needs sb3-contrib, not installed here: pip install 'syre_rl[contrib]'",
        ),
        (
            {"stable_baselines3"},
            "import syre_rl; syre_rl.SyreSACPolicy",
            "syre_rl.SyreSACPolicy needs stable-baselines3, not installed here: pip install 'syre_rl[sb3]'",
        ),
        (
            {"stable_baselines3"},
            "import syre_rl.callbacks",
            "syre_rl.callbacks needs stable-baselines3, not installed here: pip install 'syre_rl[sb3]'",
        ),
        (
            {"yaml", "ray"},
            "import syre_rl.agents",
            "syre_rl.agents needs pyyaml, ray, not installed here: pip install 'syre_rl[harness]'",
        ),
        (
            {"pybullet"},
            "import syre_rl.envs",
            "syre_rl.envs needs pybullet, not installed here: pip install 'syre_rl[harness]'",
        ),
    ],
)
def test_a_missing_extra_is_named_in_one_line(blocked, code, message):
    """Each part of syre_rl, its optional packages missing, says in one line which extra to install; the SB3
    policies and callbacks need no sb3-contrib."""
    result = subprocess.run([sys.executable, "-c", blocking(blocked) + code], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"ImportError: {message}"


def test_the_sb3_extra_alone_is_enough_for_the_policies_and_callbacks():
    """Without sb3-contrib, TensorBoard and the harness's packages, the SB3 policies train with every callback."""
    code = (
        blocking({"sb3_contrib", "tensorboard", "yaml", "pybullet", "matplotlib", "ray"})
        + """
from stable_baselines3 import PPO
from syre_rl import SyreActorCriticPolicy
from syre_rl.callbacks import HParamsCallback, MethodLoggerCallback, PlasticityCallback
model = PPO(SyreActorCriticPolicy, "Pendulum-v1", n_steps=32, batch_size=16, n_epochs=1, device="cpu")
model.learn(64, callback=[HParamsCallback(), MethodLoggerCallback(), PlasticityCallback()])
print(sorted(model.policy.methods), model.num_timesteps)
"""
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[-2] == "['actor', 'critic'] 64"


def test_the_old_import_paths_still_work():
    import syre_rl.callbacks
    import syre_rl.contrib
    from syre_rl.policies import MethodLoggerCallback, SyreLoggerCallback, SyreTQCPolicy

    assert MethodLoggerCallback is SyreLoggerCallback is syre_rl.callbacks.MethodLoggerCallback
    assert SyreTQCPolicy is syre_rl.contrib.SyreTQCPolicy is syre_rl.SyreTQCPolicy


def test_no_text_points_to_files_users_do_not_have():
    """The developers' background folder is not shipped: no code, doc or result may send a user there."""
    pattern = re.compile(r"\.\./" + "shared|shared/(method|platform|style)" + r"\.md")
    texts = [f for f in project_files() if f.endswith((".py", ".md", ".yaml", ".yml", ".toml", ".txt"))]
    found = [f for f in texts if (ROOT / f).is_file() and pattern.search((ROOT / f).read_text(errors="replace"))]
    assert texts and not found, f"these point to the background folder: {found}"
