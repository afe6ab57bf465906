"""syre_rl: syre (symmetry removal) for PyTorch and Stable-Baselines3."""

from syre_rl.base import Method, default_params
from syre_rl.methods import METHODS, make_method
from syre_rl.syre import DEFAULT_SCALE, Syre, SyreSettings, attach_syre

# The SB3 policies load on first use, so that `import syre_rl` stays light (torch and numpy) for plain-torch users.
FAMILIES = ("ActorCritic", "SAC", "TD3", "DQN", "RecurrentActorCritic", "MaskableActorCritic", "TQC", "QRDQN")
POLICIES = tuple(f"{kind}{family}Policy" for family in FAMILIES for kind in ("Syre", "Method"))

__all__ = ["DEFAULT_SCALE", "METHODS", "Method", "Syre", "SyreSettings", "attach_syre", "default_params",
           "make_method", *POLICIES]


def __getattr__(name: str):
    if name in POLICIES:
        try:
            from syre_rl import policies
        except ImportError as error:
            raise ImportError(f"syre_rl.{name} needs Stable-Baselines3 and sb3-contrib ({error}); install them "
                              "with pip install 'syre_rl[sb3]'") from error
        return getattr(policies, name)
    raise AttributeError(f"module 'syre_rl' has no attribute {name!r}")
