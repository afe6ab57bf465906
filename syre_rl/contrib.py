"""sb3-contrib's policy families with a plasticity method: RecurrentPPO, MaskablePPO, TQC and QR-DQN (the
``contrib`` extra). They work as :mod:`syre_rl.policies`' SB3 families do, and load with it when sb3-contrib is
installed (``syre_rl.SyreTQCPolicy``, ``"SyreMlpLstmPolicy"``, ...)."""

from __future__ import annotations

from syre_rl.extras import require

try:
    import sb3_contrib  # noqa: F401
except ImportError:  # one line naming the extra to install
    require("contrib", "syre_rl.contrib")
    raise
from sb3_contrib import QRDQN, TQC, MaskablePPO, RecurrentPPO
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from sb3_contrib.qrdqn.policies import QRDQNPolicy
from sb3_contrib.tqc.policies import TQCPolicy

from syre_rl.policies import MethodPolicy, SyrePolicy, register_family


class MethodRecurrentActorCriticPolicy(MethodPolicy, RecurrentActorCriticPolicy):
    """RecurrentPPO's policy with a plasticity method; the ``lstm`` target covers its LSTMs. Ours: ``method``,
    ``method_kwargs``, ``method_targets`` (:class:`syre_rl.policies.MethodPolicy`); every other argument is
    sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/ppo_recurrent.html). String names:
    ``MethodMlpLstmPolicy``, ``MethodCnnLstmPolicy``, ``MethodMultiInputLstmPolicy``."""

    ALGORITHMS = (RecurrentPPO,)


class SyreRecurrentActorCriticPolicy(SyrePolicy, MethodRecurrentActorCriticPolicy):
    """RecurrentPPO's policy with syre. Ours: the ``syre_*`` keywords (:class:`syre_rl.policies.SyrePolicy`); every
    other argument is sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/ppo_recurrent.html).
    String names: ``SyreMlpLstmPolicy``, ``SyreCnnLstmPolicy``, ``SyreMultiInputLstmPolicy``."""


class MethodMaskableActorCriticPolicy(MethodPolicy, MaskableActorCriticPolicy):
    """MaskablePPO's policy with a plasticity method. Ours: ``method``, ``method_kwargs``, ``method_targets``
    (:class:`syre_rl.policies.MethodPolicy`); every other argument is sb3-contrib's
    (https://sb3-contrib.readthedocs.io/en/master/modules/ppo_mask.html)."""

    ALGORITHMS = (MaskablePPO,)


class SyreMaskableActorCriticPolicy(SyrePolicy, MethodMaskableActorCriticPolicy):
    """MaskablePPO's policy with syre. Ours: the ``syre_*`` keywords (:class:`syre_rl.policies.SyrePolicy`); every
    other argument is sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/ppo_mask.html)."""


class MethodTQCPolicy(MethodPolicy, TQCPolicy):
    """TQC's policy with a plasticity method; ``critic`` covers the quantile critics. Ours: ``method``,
    ``method_kwargs``, ``method_targets`` (:class:`syre_rl.policies.MethodPolicy`); every other argument is
    sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/tqc.html)."""

    ALGORITHMS = (TQC,)


class SyreTQCPolicy(SyrePolicy, MethodTQCPolicy):
    """TQC's policy with syre. Ours: the ``syre_*`` keywords (:class:`syre_rl.policies.SyrePolicy`); every other
    argument is sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/tqc.html)."""


class MethodQRDQNPolicy(MethodPolicy, QRDQNPolicy):
    """QR-DQN's policy with a plasticity method; ``critic`` is the quantile network. Ours: ``method``,
    ``method_kwargs``, ``method_targets`` (:class:`syre_rl.policies.MethodPolicy`); every other argument is
    sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/qrdqn.html)."""

    ALGORITHMS = (QRDQN,)
    DEFAULT_TARGETS = ("critic",)


class SyreQRDQNPolicy(SyrePolicy, MethodQRDQNPolicy):
    """QR-DQN's policy with syre. Ours: the ``syre_*`` keywords (:class:`syre_rl.policies.SyrePolicy`); every other
    argument is sb3-contrib's (https://sb3-contrib.readthedocs.io/en/master/modules/qrdqn.html)."""


for _pair in (
    (MethodRecurrentActorCriticPolicy, SyreRecurrentActorCriticPolicy),
    (MethodMaskableActorCriticPolicy, SyreMaskableActorCriticPolicy),
    (MethodTQCPolicy, SyreTQCPolicy),
    (MethodQRDQNPolicy, SyreQRDQNPolicy),
):
    register_family(*_pair)
