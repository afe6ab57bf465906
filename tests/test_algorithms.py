"""Every SB3 and sb3-contrib algorithm with its syre_rl policy: trains, decays toward the anchors, keeps target
networks equal at the start and undecayed, reloads exactly in a fresh process, and with gamma 0 and scale 0 trains
bit-identically to SB3's own policy."""

import subprocess
import sys

import pytest
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.envs import FakeImageEnv, SimpleMultiObsEnv
from stable_baselines3.common.logger import KVWriter, Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy

import syre_rl
from syre_rl.callbacks import MethodLoggerCallback, PlasticityCallback
from tests.conftest import ALGOS, OFF, build, hook_acts


@pytest.mark.parametrize("algo", list(ALGOS))
def test_trains_with_syre_and_keeps_target_networks_plain(algo):
    model = build(algo, syre_gamma=0.05, syre_scale=0.5)
    policy = model.policy
    for name in ("actor", "critic", "q_net", "quantile_net"):
        online, copy = getattr(policy, name, None), getattr(policy, f"{name}_target", None)
        if copy is not None:  # the target copy starts equal to the shifted online network, with no anchors
            assert all(torch.equal(a, b) for a, b in zip(online.parameters(), copy.parameters(), strict=True))
            assert not any("_syre_" in k for k in copy.state_dict())
    covered = {id(p) for m in policy.methods.values() for p in m.params()}
    for name in ("actor_target", "critic_target", "q_net_target", "quantile_net_target"):
        if hasattr(policy, name):  # never decayed: no method covers them (and SB3 >= 2.4 gives no optimizer them)
            assert not any(id(p) in covered for p in getattr(policy, name).parameters())
    expected = {"dqn": {"critic"}, "qrdqn": {"critic"}}.get(algo, {"actor", "critic"})
    assert set(policy.methods) == expected
    model.learn(128, callback=MethodLoggerCallback())
    assert all(torch.isfinite(p).all() for p in policy.parameters())
    assert all(hook_acts(m, 0.05) for m in policy.methods.values())


@pytest.mark.parametrize("algo", list(ALGOS))
def test_gamma_0_scale_0_is_bit_identical_to_sb3s_own_policy(algo):
    own = build(algo, ALGOS[algo][2], seed=3).learn(160)  # one after the other: SB3 seeds torch's global RNG
    ours = build(algo, seed=3, syre_gamma=0.0, syre_scale=0.0).learn(160)
    theirs = dict(own.policy.named_parameters())
    assert theirs.keys() == dict(ours.policy.named_parameters()).keys()
    assert all(torch.equal(p, theirs[n]) for n, p in ours.policy.named_parameters())


LOAD = """
import sys, torch, {module}
from tests.conftest import hook_acts, make_env
model = {module}.{cls}.load(sys.argv[1], env=make_env({env!r}, instance=True), device="cpu")
anchors = {{k: v for k, v in model.policy.state_dict().items() if k.endswith("_syre_anchor")}}
model.learn(64, reset_num_timesteps=False)  # training goes on ...
after = {{k: v for k, v in model.policy.state_dict().items() if k.endswith("_syre_anchor")}}
same = all(torch.equal(anchors[k], after[k]) for k in anchors)  # ... toward the same anchors
active = all(hook_acts(m, 0.05) for m in model.policy.methods.values())
torch.save(anchors, sys.argv[2])
print(type(model.policy).__name__, ",".join(sorted(model.policy.methods)), same, active)
"""


@pytest.mark.parametrize("algo", list(ALGOS))
def test_load_in_a_fresh_process_restores_the_anchors_exactly(algo, tmp_path):
    model = build(algo, seed=1, syre_gamma=0.05, syre_scale=0.5)
    model.learn(64)
    model.save(tmp_path / "m.zip")
    cls = ALGOS[algo][0]
    code = LOAD.format(module=cls.__module__.split(".")[0], cls=cls.__name__, env=ALGOS[algo][3])
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.zip"), str(tmp_path / "anchors.pt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == [type(model.policy).__name__, ",".join(sorted(model.policy.methods)), "True", "True"]
    saved = {k: v for k, v in model.policy.state_dict().items() if k.endswith("_syre_anchor")}
    loaded = torch.load(tmp_path / "anchors.pt")
    assert saved.keys() == loaded.keys() and len(saved) > 0
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)


@pytest.mark.parametrize(
    "algo,policy,use",
    [
        ("sac", syre_rl.SyreActorCriticPolicy, "syre_rl.MethodSACPolicy"),
        ("ppo", syre_rl.SyreSACPolicy, "syre_rl.MethodActorCriticPolicy"),
        ("dqn", syre_rl.SyreTD3Policy, "syre_rl.MethodDQNPolicy"),
        ("maskable-ppo", syre_rl.SyreActorCriticPolicy, "syre_rl.MethodMaskableActorCriticPolicy"),
        ("recurrent-ppo", syre_rl.SyreActorCriticPolicy, "syre_rl.MethodRecurrentActorCriticPolicy"),
        ("qrdqn", syre_rl.SyreDQNPolicy, "syre_rl.MethodQRDQNPolicy"),
    ],
)
def test_a_policy_class_of_another_algorithm_is_named_in_one_line(algo, policy, use):
    with pytest.raises(
        ValueError,
        match=f"{policy.__name__} is a policy for .*; {ALGOS[algo][0].__name__} needs a "
        f"policy built on [A-Za-z]+Policy: use {use}",
    ) as error:
        build(algo, policy)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("algo", list(ALGOS))
def test_the_method_figures_of_the_end_of_training_are_written(algo):
    """SB3 writes its logs before each iteration's training: the logger callback writes the last record itself."""
    capture = Capture()
    model = build(algo, syre_gamma=0.05)
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model.learn(160, callback=MethodLoggerCallback())
    assert {
        key: values[-1] for key, values in capture.values.items() if key in model.policy.method_stats()
    } == model.policy.method_stats()


@pytest.mark.parametrize("algo", list(ALGOS))
def test_sb3_string_names_with_syre_and_method_for_every_family(algo):
    cls, family, own = ALGOS[algo][:3]
    for kind in ("Syre", "Method"):
        ours = getattr(syre_rl, f"{kind}{family}Policy")
        model = build(algo, f"{kind}{own}")  # "SyreMlpPolicy", RecurrentPPO's "SyreMlpLstmPolicy", ...
        assert type(model.policy) is ours and model.policy.methods
        for name in cls.policy_aliases.copy():  # every name SB3 has, Cnn and MultiInput included
            if not name.startswith(("Syre", "Method")):
                assert cls.policy_aliases[f"{kind}{name}"] is ours


def test_string_names_pick_sb3s_extractor_for_images():
    model = PPO(
        "SyreCnnPolicy",
        FakeImageEnv(screen_height=40, screen_width=40, discrete=True),
        device="cpu",
        n_steps=32,
        batch_size=16,
    )
    assert type(model.policy).__name__ == "SyreActorCriticPolicy"
    assert type(model.policy.features_extractor).__name__ == "NatureCNN"


def test_importing_the_policies_registers_every_string_name_in_a_fresh_process():
    code = (
        "import syre_rl.policies; from stable_baselines3 import PPO; from sb3_contrib import TQC\n"
        "print(PPO('SyreMlpPolicy', 'Pendulum-v1').policy.__class__.__name__, "
        "TQC('MethodMlpPolicy', 'Pendulum-v1').policy.__class__.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["SyreActorCriticPolicy", "MethodTQCPolicy"]


class MinimalOnPolicy(OnPolicyAlgorithm):
    """A user's own algorithm: SB3's on-policy base, no policy_aliases, a training step of its own."""

    def train(self) -> None:
        self.policy.set_training_mode(True)
        data = next(self.rollout_buffer.get(batch_size=16))
        values, log_prob, _ = self.policy.evaluate_actions(data.observations, data.actions)
        loss = ((values.flatten() - data.returns) ** 2).mean() - log_prob.mean() * 0
        self.policy.optimizer.zero_grad()
        loss.backward()
        self.policy.optimizer.step()


class MyActorCriticPolicy(ActorCriticPolicy):
    pass


class PPOWithAliases(PPO):
    policy_aliases = {"MlpPolicy": MyActorCriticPolicy}


def test_a_users_own_algorithm_takes_our_policies():
    for algorithm in (MinimalOnPolicy, PPOWithAliases, type("MyPPO", (PPO,), {})):
        kwargs = (
            dict(
                learning_rate=1e-3,
                n_steps=32,
                gamma=0.99,
                gae_lambda=0.95,
                ent_coef=0.0,
                vf_coef=0.5,
                max_grad_norm=0.5,
                use_sde=False,
                sde_sample_freq=-1,
            )
            if algorithm is MinimalOnPolicy
            else dict(n_steps=32, batch_size=16, n_epochs=1)
        )
        model = algorithm(
            syre_rl.SyreActorCriticPolicy,
            "Pendulum-v1",
            device="cpu",
            seed=0,
            policy_kwargs=dict(syre_gamma=0.05),
            **kwargs,
        )
        model.learn(64)
        assert all(hook_acts(m, 0.05) for m in model.policy.methods.values())
    with pytest.raises(
        ValueError,
        match="SyreSACPolicy is a policy for SAC; PPOWithAliases needs a policy "
        "built on ActorCriticPolicy: use syre_rl.MethodActorCriticPolicy",
    ):
        PPOWithAliases(syre_rl.SyreSACPolicy, "Pendulum-v1", device="cpu")


def test_recurrent_lstm_weights_are_a_target():
    model = build("recurrent-ppo", syre_targets="lstm", syre_gamma=0.05)
    names = model.policy.methods["lstm"].names
    assert "lstm_actor.weight_ih_l0" in names and "lstm_critic.bias_hh_l0" in names
    # an LSTM bias gets the anchor std of its layer's weight (1/sqrt(hidden size 8)), not 1 (no `weight` there)
    bias = dict(zip(names, model.policy.methods["lstm"].anchors()))["lstm_actor.bias_hh_l0"]
    assert 0.5 / 8**0.5 < float(bias.std()) < 1.5 / 8**0.5
    model.learn(64)
    assert hook_acts(model.policy.methods["lstm"], 0.05)


class Capture(KVWriter):
    """Keeps every value the SB3 logger dumps."""

    def __init__(self):
        self.values: dict[str, list] = {}

    def write(self, key_values, key_excluded, step=0):
        for key, value in key_values.items():
            self.values.setdefault(key, []).append(value)


def logged(model, steps, *callbacks):
    capture = Capture()
    model.set_logger(Logger(folder=None, output_formats=[capture]))
    model.learn(steps, callback=list(callbacks), log_interval=1)
    model.logger.dump(model.num_timesteps)
    return capture.values


@pytest.mark.parametrize("algo", list(ALGOS))
def test_plasticity_metrics_under_the_same_tags_for_every_algorithm(algo):
    values = logged(build(algo, syre_gamma=0.01), 192, PlasticityCallback(probe_size=64), MethodLoggerCallback())
    targets = ["critic"] if algo in ("dqn", "qrdqn") else ["actor", "critic"]
    for target in targets:
        ranks = values[f"plasticity/{target}/layer0/effective_rank"]
        assert all(1 <= r <= 16 for r in ranks) and 0 <= values[f"plasticity/{target}/layer1/dead_units"][-1] <= 1
        assert f"plasticity/{target}/layer0/duplicate_units_learned" in values  # weights minus the anchors
        assert values[f"syre/{target}/anchor_distance"][-1] > 0


def test_image_observations_put_conv_layers_under_the_features_target():
    env = FakeImageEnv(screen_height=40, screen_width=40, discrete=True)
    for cls, policy in ((PPO, syre_rl.SyreActorCriticPolicy), (DQN, syre_rl.SyreDQNPolicy)):
        kwargs = dict(n_steps=32, batch_size=16) if cls is PPO else dict(OFF, buffer_size=200)
        model = cls(policy, env, device="cpu", seed=0, policy_kwargs=dict(syre_targets="features,critic"), **kwargs)
        names = model.policy.methods["features"].names
        assert any(n.endswith("cnn.0.weight") for n in names) and any(n.endswith("cnn.4.bias") for n in names)
        values = logged(model, 64, PlasticityCallback(probe_size=16))
        assert 0 <= values["plasticity/features/layer0/dead_units"][-1] <= 1  # conv1 -> conv2: channels as units
        assert (
            "plasticity/features/layer1/effective_rank" in values
            and "plasticity/features/layer2/dead_units" not in values
        )  # conv3 -> flatten -> linear is not a hidden layer


def test_redo_on_conv_features():
    env = FakeImageEnv(screen_height=40, screen_width=40, discrete=True)
    model = PPO(
        syre_rl.MethodActorCriticPolicy,
        env,
        device="cpu",
        seed=0,
        n_steps=32,
        batch_size=16,
        policy_kwargs=dict(method="redo", method_kwargs=dict(every=2), method_targets="features"),
    )
    model.learn(64)
    redo = model.policy.methods["features"]
    assert [type(h.incoming).__name__ for h in redo.layers] == ["Conv2d", "Conv2d"] and redo.steps == 40


@pytest.mark.parametrize("cls,policy", [(PPO, syre_rl.SyreActorCriticPolicy), (DQN, syre_rl.SyreDQNPolicy)])
def test_dict_observations_get_sb3s_combined_extractor(cls, policy):
    env = SimpleMultiObsEnv(random_start=False)
    kwargs = dict(n_steps=32, batch_size=16) if cls is PPO else dict(OFF, buffer_size=200)
    model = cls(policy, env, device="cpu", seed=0, policy_kwargs=dict(syre_targets="features,critic"), **kwargs)
    assert (
        type(model.policy.features_extractor if cls is PPO else model.policy.q_net.features_extractor).__name__
        == "CombinedExtractor"
    )
    values = logged(model, 64, PlasticityCallback(probe_size=16))
    assert "plasticity/critic/layer0/effective_rank" in values and "plasticity/features/layer0/dead_units" in values


def test_a_target_without_hidden_layers_is_said_once():
    model = PPO(
        syre_rl.MethodActorCriticPolicy,
        "Pendulum-v1",
        device="cpu",
        n_steps=32,
        batch_size=16,
        policy_kwargs=dict(net_arch=dict(pi=[], vf=[16, 16])),
    )
    with pytest.warns(UserWarning, match="MethodActorCriticPolicy's actor has no hidden layer to measure") as record:
        values = logged(model, 64, PlasticityCallback())
    assert len(record) == 1 and "plasticity/critic/layer0/effective_rank" in values
    assert not any(k.startswith("plasticity/actor/layer") for k in values)
