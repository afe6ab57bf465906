"""PlasticityCallback: what it logs for actor and critic, on which batch, and that it changes no run;
HParamsCallback: what TensorBoard's HParams tab shows over several runs."""

import csv
import inspect

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure

from syre_rl import MethodActorCriticPolicy
from syre_rl.callbacks import HParamsCallback, PlasticityCallback, plain_hparams
from syre_rl.metrics import effective_rank, hidden_activations

NET = dict(net_arch=dict(pi=[16, 16], vf=[16, 8]))


def ppo(policy="MlpPolicy", **policy_kwargs):
    return PPO(
        policy,
        "Pendulum-v1",
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs={**NET, **policy_kwargs},
    )


def test_logs_every_layer_of_actor_and_critic(tmp_path):
    model = ppo(MethodActorCriticPolicy, method="syre", method_kwargs=dict(scale=0.5))
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = PlasticityCallback(every=2, probe_size=50)
    expected = []

    class Independent(BaseCallback):
        """The critic's last-layer effective rank on the 50 newest observations, computed on its own."""

        def _on_rollout_end(self):
            obs = torch.as_tensor(self.model.rollout_buffer.observations.reshape(-1, 3)[-50:])
            acts = hidden_activations(callback.probes["critic"].layers, lambda: self.model.policy.predict_values(obs))
            expected.append(effective_rank(acts[1]))

        def _on_step(self):
            return True

    model.learn(64 * 4, callback=[callback, Independent()])
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    key = "plasticity/critic/layer1/effective_rank"
    measured = [r[key] for r in rows]
    assert [bool(v) for v in measured] == [True, False, True, False]  # rollouts 1 and 3
    assert 1 <= float(measured[0]) <= 8  # the critic's second hidden layer has 8 units
    for target, layers in (("actor", 2), ("critic", 2)):
        for i in range(layers):
            for metric in (
                "effective_rank",
                "approximate_rank",
                "dead_units",
                "dormant_ratio",
                "duplicate_units",
                "duplicate_units_learned",
                "weight_magnitude",
            ):
                assert rows[0][f"plasticity/{target}/layer{i}/{metric}"] != "", (target, i, metric)
    assert rows[2]["plasticity/actor/layer0/weight_change"] != ""
    assert [float(measured[0]), float(measured[2])] == pytest.approx([expected[0], expected[2]], rel=1e-9)


def test_measuring_changes_nothing_in_training():
    plain = ppo()
    plain.learn(192)
    measured = ppo()
    measured.learn(192, callback=PlasticityCallback(probe_size=64))
    for a, b in zip(plain.policy.parameters(), measured.policy.parameters()):
        assert torch.equal(a, b)


def test_bad_arguments():
    with pytest.raises(ValueError, match="every must be an integer >= 1, got 0"):
        PlasticityCallback(every=0)
    with pytest.raises(ValueError, match="probe_size must be an integer >= 1, got -5"):
        PlasticityCallback(probe_size=-5)
    assert np.isfinite(PlasticityCallback().tau)


def hparams_columns(logdir) -> dict[str, list]:
    """The columns of TensorBoard's HParams tab over every run under ``logdir``, as TensorBoard's own hparams
    plugin builds them, with the values it found (text and bool columns)."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(
        base_plugin.TBContext(logdir=str(logdir), data_provider=provider, multiplexer=multiplexer)
    )
    ctx = context.RequestContext()
    # no data provider fallback: the runs' sessions are there. TensorBoard 2.14 has no include_metrics yet
    newer = "include_metrics" in inspect.signature(backend.experiment_from_metadata).parameters
    experiment = backend.experiment_from_metadata(
        ctx,
        "",
        hparams_run_to_tag_to_content=backend.hparams_metadata(ctx, ""),
        data_provider_hparams=None,
        **({"include_metrics": False} if newer else {}),
    )
    return {
        h.name: sorted(v.string_value or v.bool_value for v in h.domain_discrete.values)
        for h in experiment.hparam_infos
    }


def test_the_hparams_tab_shows_every_runs_keys_with_plain_values(tmp_path):
    for method, settings in (("syre", dict(gamma=0.01)), ("redo", dict(tau=0.1))):
        model = PPO(
            MethodActorCriticPolicy,
            "Pendulum-v1",
            n_steps=32,
            batch_size=16,
            n_epochs=1,
            device="cpu",
            tensorboard_log=str(tmp_path),
            policy_kwargs=dict(NET, method=method, method_kwargs=settings),
        )
        model.learn(32, callback=HParamsCallback({"env": "Pendulum-v1", "run": {"seeds": (0, 1)}}), tb_log_name=method)
    columns = hparams_columns(tmp_path)
    assert {
        "algo",
        "policy",
        "env",
        "run/seeds",
        "method",
        "method/targets",
        "method/gamma",
        "method/scale",
        "method/tau",
        "method/every",
    } <= columns.keys()  # syre's settings and ReDo's, from two runs
    assert columns["method/targets"] == ["actor,critic"] and columns["method"] == ["redo", "syre"]
    assert columns["run/seeds"] == ["0,1"] and columns["algo"] == ["PPO"]


def test_hparams_that_are_not_plain_are_refused():
    assert plain_hparams({"a": {"b": 1, "c": [True, "x"]}}) == {"a/b": 1, "a/c": "True,x"}
    with pytest.raises(
        ValueError,
        match="hyperparameter 'net/arch' must be a number, text, a bool, a mapping of them or a list of them, got None",
    ):
        HParamsCallback({"net": {"arch": None}})
