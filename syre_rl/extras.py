"""Optional dependencies: what each extra of ``pyproject.toml`` brings, and one line naming the extra to install
when a part of syre_rl needs what is missing (the standard library only)."""

from __future__ import annotations

import importlib.util

# extra -> (import name, distribution name) of what it adds; the harness extra includes contrib, contrib sb3
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "sb3": (("stable_baselines3", "stable-baselines3"), ("gymnasium", "gymnasium")),
    "contrib": (("sb3_contrib", "sb3-contrib"),),
    "harness": (
        ("pybullet", "pybullet"),
        ("pybullet_envs_gymnasium", "pybullet-envs-gymnasium"),
        ("tensorboard", "tensorboard"),
        ("matplotlib", "matplotlib"),
        ("yaml", "pyyaml"),
        ("tqdm", "tqdm"),
        ("rich", "rich"),
        ("ray", "ray"),
        ("rliable", "rliable"),
        ("pandas", "pandas"),
    ),
}
INCLUDES = {"contrib": ("sb3",), "harness": ("sb3", "contrib")}


def importable(module: str) -> bool:
    """Whether ``module`` can be found (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` (and of the extras it includes) that cannot be imported here."""
    wanted = [pair for name in (*INCLUDES.get(extra, ()), extra) for pair in EXTRAS[name]]
    return [dist for module, dist in wanted if not importable(module)]


def require(extra: str, what: str) -> None:
    """Raise ImportError in one line, naming what is missing and the extra that brings it, unless everything
    ``extra`` adds can be imported.

    :param extra: a key of :data:`EXTRAS`
    :param what: the part of syre_rl that needs it, for the message (``"syre_rl.policies"``)
    """
    absent = missing(extra)
    if absent:
        raise ImportError(f"{what} needs {', '.join(absent)}, not installed here: pip install 'syre_rl[{extra}]'")
