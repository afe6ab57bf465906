"""Moved to :mod:`syre_rl.agents.analysis`; this module re-exports its public names, so old imports keep working."""

from syre_rl.agents.analysis import *  # noqa: F403
from syre_rl.agents.analysis import __all__  # noqa: F401
