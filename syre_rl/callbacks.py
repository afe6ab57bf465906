"""SB3 callbacks for every algorithm: the methods' own figures (:class:`MethodLoggerCallback`), plasticity metrics
of a policy's networks (:class:`PlasticityCallback`), and hyperparameters for TensorBoard's HParams tab
(:class:`HParamsCallback`)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from syre_rl.extras import require

try:
    import stable_baselines3  # noqa: F401
except ImportError:  # one line naming the extra to install
    require("sb3", "syre_rl.callbacks")
    raise
import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import TensorBoardOutputFormat
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import BasePolicy

from syre_rl.base import hidden_layers
from syre_rl.metrics import LayerProbe
from syre_rl.policies import TARGET_MODULES, MethodPolicy, target_params

Observation = torch.Tensor | dict[str, torch.Tensor]


def _recurrent_run(policy: Any, method: str) -> Callable[[Observation, Any], object]:
    """A recurrent policy's forward from zero LSTM states, every observation an episode start (``policy``:
    sb3-contrib's RecurrentActorCriticPolicy, untyped as in :func:`probe_forwards`)."""

    def run(obs: Observation, actions: Any) -> object:
        n = len(next(iter(obs.values())) if isinstance(obs, dict) else obs)
        shape = (policy.lstm_actor.num_layers, n, policy.lstm_actor.hidden_size)
        states = (torch.zeros(shape, device=policy.device), torch.zeros(shape, device=policy.device))
        starts = torch.ones(n, device=policy.device)
        if method == "get_distribution":
            return policy.get_distribution(obs, states, starts)
        return policy.predict_values(obs, states, starts)

    return run


def probe_forwards(policy: BasePolicy) -> dict[str, list[Callable[[Observation, Any], object]]]:
    """Per target, the forward passes that run its layers on a probe batch ``(observations, actions)`` without
    sampling anything (no random generator is touched): the actor's distribution parameters, the value or Q
    network; ``features`` runs every one of them."""
    # Untyped: the families share no interface for these forwards and each is told by an attribute it has, which
    # mypy cannot follow on an nn.Module (its __getattr__ types every attribute as Tensor | Module).
    sb3_policy: Any = policy
    if hasattr(sb3_policy, "lstm_actor"):  # sb3-contrib's RecurrentActorCriticPolicy
        actor, critic = _recurrent_run(sb3_policy, "get_distribution"), _recurrent_run(sb3_policy, "predict_values")
    elif hasattr(sb3_policy, "get_distribution"):  # PPO, A2C, MaskablePPO
        actor, critic = (lambda o, a: sb3_policy.get_distribution(o)), (lambda o, a: sb3_policy.predict_values(o))
    elif hasattr(sb3_policy, "actor"):  # SAC, TQC (distribution parameters, no sample), TD3, DDPG
        net = sb3_policy.actor
        actor = (
            (lambda o, a: net.get_action_dist_params(o))
            if hasattr(net, "get_action_dist_params")
            else (lambda o, a: net(o))
        )
        critic = lambda o, a: sb3_policy.critic(o, a)  # noqa: E731
    else:  # DQN, QR-DQN
        net = sb3_policy.q_net if hasattr(sb3_policy, "q_net") else sb3_policy.quantile_net
        actor, critic = None, (lambda o, a: net(o))
    runs = {"actor": [actor] if actor else [], "critic": [critic]}
    runs["features"] = runs["actor"] + runs["critic"]
    return runs


class PlasticityCallback(BaseCallback):
    """Every ``every`` rollouts, measures every hidden layer (Linear units, or conv channels) of the policy's
    actor, critic and features extractors (:class:`syre_rl.metrics.LayerProbe`) on the ``probe_size`` most recent
    observations (the rollout buffer's for PPO, A2C and their contrib variants; the replay buffer's, with their
    actions, for SAC, TD3, DDPG, DQN, TQC and QR-DQN), and records ``plasticity/<target>/layer<i>/<metric>`` and
    ``plasticity/<target>/gradient_norm`` (the last update's gradients). A target with no hidden layer to measure
    (e.g. a features extractor of one Linear layer, or LSTMs) is said once, as a warning, at the start. The probe
    neither samples actions nor touches any random generator, so runs with and without it are identical.

    :param every: rollouts between measurements (>= 1); an off-policy algorithm's rollout is ``train_freq``
        steps
    :param probe_size: recent observations in the probe batch (>= 1)
    :param tau: dormancy threshold
    :param duplicate_threshold: cosine similarity above which two units count as copies
    """

    def __init__(
        self,
        every: int = 1,
        probe_size: int = 1000,
        tau: float = 0.025,
        duplicate_threshold: float = 0.99,
        verbose: int = 0,
    ):
        super().__init__(verbose)
        for name, value in (("every", every), ("probe_size", probe_size)):
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"PlasticityCallback {name} must be an integer >= 1, got {value!r}")
        self.every, self.probe_size = every, probe_size
        self.tau, self.duplicate_threshold = tau, duplicate_threshold
        self.rollouts = 0

    def _init_callback(self) -> None:
        policy = self.model.policy
        methods = getattr(policy, "methods", {})
        self.forwards = probe_forwards(policy)
        self.probes: dict[str, LayerProbe] = {}
        unmeasured = []
        for target in TARGET_MODULES:
            names = target_params(policy, target)
            layers = hidden_layers(policy, names)
            if layers and self.forwards.get(target):
                self.probes[target] = LayerProbe(layers, methods.get(target), self.tau, self.duplicate_threshold)
            elif names:
                unmeasured.append(target)
        if unmeasured:
            verb = "has" if len(unmeasured) == 1 else "have"
            warnings.warn(
                f"PlasticityCallback: {type(policy).__name__}'s {' and '.join(unmeasured)} {verb} no "
                "hidden layer to measure (two connected Linear or Conv layers): no plasticity/<target> "
                "figures for it",
                stacklevel=2,
            )

    def probe_batch(self) -> tuple[Observation, torch.Tensor | None]:
        """The most recent observations (and, from a replay buffer, their actions) as the policy sees them,
        normalised as in training, on the policy's device."""
        if isinstance(self.model, OffPolicyAlgorithm):  # a replay buffer: circular, (size, n_envs, ...)
            buffer = self.model.replay_buffer
            assert buffer is not None  # SB3 makes it with the model
            size = buffer.buffer_size if buffer.full else buffer.pos
            rows = (np.arange(buffer.pos - min(size, self.probe_size), buffer.pos)) % buffer.buffer_size
            recent = lambda x: x[rows].reshape(-1, *x.shape[2:])  # noqa: E731  (time-major, then envs)
            obs = (
                {k: recent(v) for k, v in buffer.observations.items()}
                if isinstance(buffer.observations, dict)
                else recent(buffer.observations)
            )
            normalizer = self.model.get_vec_normalize_env()
            if normalizer is not None:  # the replay buffer keeps raw observations and normalises when sampling
                obs = normalizer.normalize_obs(obs)
            actions = torch.as_tensor(recent(buffer.actions), device=self.model.device)
        else:  # a rollout buffer: (n_steps, n_envs, ...), time-major, already normalised
            # not off-policy: PPO, A2C and their contrib variants, whose rollout buffer BaseAlgorithm does not declare
            rollout = cast(OnPolicyAlgorithm, self.model).rollout_buffer
            recent = lambda x: x.reshape(-1, *x.shape[2:])[-self.probe_size :]  # noqa: E731
            obs = (
                {k: recent(v) for k, v in rollout.observations.items()}
                if isinstance(rollout.observations, dict)
                else recent(rollout.observations)
            )
            actions = None
        to_tensor = lambda x: torch.as_tensor(np.ascontiguousarray(x), device=self.model.device)  # noqa: E731
        return ({k: to_tensor(v) for k, v in obs.items()} if isinstance(obs, dict) else to_tensor(obs)), actions

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if (self.rollouts - 1) % self.every or not self.probes:
            return
        obs, actions = self.probe_batch()
        for target, probe in self.probes.items():

            def forward(runs=self.forwards[target]) -> None:
                for run in runs:
                    run(obs, actions)

            for key, value in probe.measure(forward).items():
                self.logger.record(f"plasticity/{target}/{key}", value)

    def _on_step(self) -> bool:
        return True


class MethodLoggerCallback(BaseCallback):
    """Records :meth:`syre_rl.policies.MethodPolicy.method_stats` (``<method>/<target>/<figure>``) to the SB3
    logger at the end of every ``every``-th rollout (written with the other values of that iteration; an off-policy
    rollout is ``train_freq`` steps), and once more at the end of training, written out at once (SB3 writes its
    logs before each iteration's training, so what the last training step left would be lost).

    :param every: rollouts between records (>= 1)
    """

    def __init__(self, every: int = 1):
        super().__init__()
        if not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
            raise ValueError(f"MethodLoggerCallback every must be an integer >= 1, got {every!r}")
        self.every, self.rollouts = every, 0

    def _on_rollout_end(self) -> None:
        self.rollouts += 1
        if (self.rollouts - 1) % self.every == 0:
            self._record()

    def _on_training_end(self) -> None:
        self._record()
        self.logger.dump(self.num_timesteps)

    def _record(self) -> None:
        for key, value in getattr(self.model.policy, "method_stats", dict)().items():
            self.logger.record(key, value)

    def _on_step(self) -> bool:
        return True


SyreLoggerCallback = MethodLoggerCallback  # the name the SB3 quick start uses

HParamValue = bool | int | float | str


def plain_hparams(values: Mapping[str, Any], prefix: str = "") -> dict[str, HParamValue]:
    """Hyperparameters as TensorBoard's HParams tab shows them: numbers, text and bools as they are, a mapping
    flattened to ``<key>/<name>`` columns, a list or tuple of plain values joined by commas (``"actor,critic"``).

    :raises ValueError: naming a key whose value is none of these (None included: leave the key out)
    """
    flat: dict[str, HParamValue] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(plain_hparams(value, f"{name}/"))
        elif isinstance(value, (bool, int, float, str)):
            flat[name] = value
        elif isinstance(value, Sequence) and all(isinstance(v, (bool, int, float, str)) for v in value):
            flat[name] = ",".join(str(v) for v in value)
        else:
            raise ValueError(
                f"hyperparameter {name!r} must be a number, text, a bool, a mapping of them or a list "
                f"of them, got {value!r}"
            )
    return flat


def policy_hparams(model: Any) -> dict[str, HParamValue]:
    """What a model's classes and method say of a run: ``algo``, ``policy``, and for a syre_rl policy ``method``,
    ``method/targets`` and ``method/<setting>`` for each of its settings."""
    policy = model.policy
    found: dict[str, Any] = {"algo": type(model).__name__, "policy": type(policy).__name__}
    if isinstance(policy, MethodPolicy):
        settings = {k: v for k, v in policy.method_settings.to_dict().items() if v is not None}
        found.update(method=policy.method, **plain_hparams({"targets": policy.method_targets, **settings}, "method/"))
    return found


class HParamsCallback(BaseCallback):
    """Writes a run's hyperparameters to TensorBoard's HParams tab once, at the start of training: the model's own
    (:func:`policy_hparams`: algorithm, policy class, method, its targets and every setting) and ``hparams``, all as
    plain values (:func:`plain_hparams`). Each run writes only its own session, not an experiment summary, so the
    tab shows the union of every run's keys as columns (TensorBoard builds the experiment from all sessions when no
    run fixes it) and every scalar as a metric; runs sort and filter by ``method/gamma`` as by any column.

    :param hparams: more name -> value pairs (a value given here wins over the model's own)
    :raises ValueError: naming a value that is not plain (see :func:`plain_hparams`)
    """

    def __init__(self, hparams: Mapping[str, Any] | None = None):
        super().__init__()
        self.hparams = plain_hparams(hparams or {})

    def _on_training_start(self) -> None:
        write_hparams(self.logger, {**policy_hparams(self.model), **self.hparams})

    def _on_step(self) -> bool:
        return True


def write_hparams(logger: Any, values: Mapping[str, HParamValue]) -> None:
    """Write ``values`` as the run's HParams session to every TensorBoard output of an SB3 ``logger``."""
    writers = [out.writer for out in logger.output_formats if isinstance(out, TensorBoardOutputFormat)]
    if not writers:
        return
    from torch.utils.tensorboard.summary import hparams  # needs tensorboard, which SB3's TensorBoard log has

    _, session_start, _ = hparams(dict(values), {})
    for writer in writers:
        # torch types file_writer as None (its __init__ says so; an unannotated method sets the FileWriter)
        writer.file_writer.add_summary(session_start)  # type: ignore[attr-defined]
        writer.flush()
