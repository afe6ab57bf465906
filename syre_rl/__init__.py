"""syre_rl: syre (symmetry removal) for PyTorch and Stable-Baselines3."""

__version__ = "0.1.0"  # the one place the version is written: pyproject.toml reads it from here

from syre_rl.base import Method, default_params  # noqa: E402
from syre_rl.methods import METHODS, make_method  # noqa: E402
from syre_rl.syre import DEFAULT_SCALE, Syre, SyreSettings, attach_syre  # noqa: E402

# The SB3 policies load on first use, so that `import syre_rl` stays light (torch and numpy) for plain-torch users:
# SB3's families from syre_rl.policies (the `sb3` extra), sb3-contrib's from syre_rl.contrib (the `contrib` extra).
SB3_FAMILIES = ("ActorCritic", "SAC", "TD3", "DQN")
CONTRIB_FAMILIES = ("RecurrentActorCritic", "MaskableActorCritic", "TQC", "QRDQN")
POLICY_MODULES = {
    f"{kind}{family}Policy": module
    for families, module in ((SB3_FAMILIES, "policies"), (CONTRIB_FAMILIES, "contrib"))
    for family in families
    for kind in ("Syre", "Method")
}
POLICIES = tuple(POLICY_MODULES)

__all__ = [
    "DEFAULT_SCALE",
    "METHODS",
    "Method",
    "Syre",
    "SyreSettings",
    "__version__",
    "attach_syre",
    "default_params",
    "make_method",
    *POLICIES,
]


def __getattr__(name: str):
    if name in POLICY_MODULES:
        import importlib

        from syre_rl.extras import require

        require("sb3" if POLICY_MODULES[name] == "policies" else "contrib", f"syre_rl.{name}")
        globals()[name] = value = getattr(importlib.import_module(f"syre_rl.{POLICY_MODULES[name]}"), name)
        return value  # found here from now on, without __getattr__
    raise AttributeError(f"module 'syre_rl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
