"""syre_rl: syre (symmetry removal) for PyTorch and Stable-Baselines3."""

from syre_rl.syre import DEFAULT_SCALE, Syre, attach_syre, default_syre_params

__all__ = ["DEFAULT_SCALE", "Syre", "attach_syre", "default_syre_params", "SyreActorCriticPolicy"]


def __getattr__(name: str):
    # The SB3 policy is imported lazily so that `import syre_rl` stays light for plain-torch users.
    if name == "SyreActorCriticPolicy":
        from syre_rl.policies import SyreActorCriticPolicy

        return SyreActorCriticPolicy
    raise AttributeError(f"module 'syre_rl' has no attribute {name!r}")
