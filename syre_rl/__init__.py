"""syre_rl: syre (symmetry removal) for PyTorch and Stable-Baselines3."""

from syre_rl.base import Method, default_params
from syre_rl.methods import METHODS, make_method
from syre_rl.syre import DEFAULT_SCALE, Syre, attach_syre

__all__ = ["DEFAULT_SCALE", "METHODS", "Method", "Syre", "attach_syre", "default_params", "make_method",
           "SyreActorCriticPolicy", "MethodActorCriticPolicy"]


def __getattr__(name: str):
    # The SB3 policy is imported lazily so that `import syre_rl` stays light for plain-torch users.
    if name in ("SyreActorCriticPolicy", "MethodActorCriticPolicy"):
        try:
            from syre_rl import policies
        except ImportError as error:
            raise ImportError(f"syre_rl.{name} needs Stable-Baselines3 ({error}); install it with "
                              "pip install 'syre_rl[sb3]'") from error
        return getattr(policies, name)
    raise AttributeError(f"module 'syre_rl' has no attribute {name!r}")
