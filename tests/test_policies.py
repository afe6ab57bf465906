"""SyreActorCriticPolicy: targets, twin-exactness with MlpPolicy, save/load, SB3 compatibility, bad input."""

import csv
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import configure
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from syre_rl import SyreActorCriticPolicy
from syre_rl.callbacks import SyreLoggerCallback
from syre_rl.syre import SyreSettings

SMALL = dict(n_steps=64, batch_size=32, n_epochs=2)
NET = dict(net_arch=dict(pi=[16, 16], vf=[16, 16]))


class LinearExtractor(BaseFeaturesExtractor):
    def __init__(self, observation_space, features_dim: int = 8):
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(int(np.prod(observation_space.shape)), features_dim)

    def forward(self, obs):
        return torch.relu(self.linear(obs))


def ppo(policy="syre", env="Pendulum-v1", seed=0, **policy_kwargs):
    cls = SyreActorCriticPolicy if policy == "syre" else "MlpPolicy"
    return PPO(cls, env, seed=seed, device="cpu", policy_kwargs={**NET, **policy_kwargs}, **SMALL)


def covered(model, target):
    return model.policy.syre[target].names


def test_default_targets_cover_actor_and_critic_but_not_log_std():
    model = ppo(syre_gamma=0.01)
    assert covered(model, "actor") == [
        "mlp_extractor.policy_net.0.weight",
        "mlp_extractor.policy_net.0.bias",
        "mlp_extractor.policy_net.2.weight",
        "mlp_extractor.policy_net.2.bias",
        "action_net.weight",
        "action_net.bias",
    ]
    assert covered(model, "critic")[-2:] == ["value_net.weight", "value_net.bias"]
    assert set(model.policy.syre) == {"actor", "critic"}
    assert not any(k.startswith("log_std_") for k in model.policy.state_dict())


def test_numbers_written_as_text_are_refused_with_the_fix():  # YAML 1.1 (rl-zoo3's loader) reads 1e-3 as text
    with pytest.raises(
        ValueError,
        match=r"syre gamma must be a number, got '1e-3' \(text, not a number: write "
        r"1.0e-3 rather than 1e-3 in YAML 1.1 files, or !!float 1e-3\)",
    ):
        ppo(syre_gamma="1e-3")
    method = ppo(syre_gamma=1e-3, syre_scale=0.5, syre_ar_eps=0.0).policy.syre["actor"]
    assert (method.name, method.settings) == ("syre", SyreSettings(gamma=0.001, scale=0.5, ar_eps=0.0, seed=0))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(net_arc=[8]), "SyreActorCriticPolicy has no setting 'net_arc'; did you mean 'net_arch'?"),
        (dict(ortho_init=1), "SyreActorCriticPolicy ortho_init must be true or false, got 1"),
        (dict(syre_seed=1.5), None),
    ],
)
def test_policy_kwargs_are_checked_before_sb3_sees_them(kwargs, match):
    if match is None:
        with pytest.raises(ValueError, match="syre seed must be an integer, got 1.5"):
            ppo(**kwargs)
        return
    with pytest.raises(ValueError, match=match):
        ppo(**kwargs)


@pytest.mark.parametrize("share", [True, False])
def test_features_target_with_shared_or_separate_extractors(share):
    model = ppo(syre_targets="features,actor", features_extractor_class=LinearExtractor, share_features_extractor=share)
    names = covered(model, "features")
    if share:
        assert names == ["features_extractor.linear.weight", "features_extractor.linear.bias"]
    else:  # pi's extractor is registered as `features_extractor` too; the value extractor is separate
        assert names == [
            "features_extractor.linear.weight",
            "features_extractor.linear.bias",
            "vf_features_extractor.linear.weight",
            "vf_features_extractor.linear.bias",
        ]
    assert "critic" not in model.policy.syre


def test_syre_twin_starts_at_vanilla_weights_plus_anchors():
    vanilla, syre = ppo("mlp", seed=4), ppo(seed=4, syre_scale=0.5)
    anchors = {n: a for h in syre.policy.syre.values() for n, a in zip(h.names, h.anchors())}
    assert len(anchors) == 12
    syre_params = dict(syre.policy.named_parameters())
    for name, p in vanilla.policy.named_parameters():
        torch.testing.assert_close(syre_params[name], p + anchors.get(name, 0), rtol=0, atol=0)
    assert max(float(a.abs().max()) for a in anchors.values()) > 0.1


def test_zero_decay_zero_scale_trains_bit_identically_to_mlp_policy():
    vanilla = ppo("mlp", seed=1)  # build and train one after the other: both share torch's global RNG
    vanilla.learn(192)
    syre = ppo(seed=1, syre_gamma=0.0, syre_scale=0.0)
    syre.learn(192)
    syre_params = dict(syre.policy.named_parameters())
    for name, p in vanilla.policy.named_parameters():
        assert torch.equal(syre_params[name], p), name


def check_hook_active(model, gamma):
    """The coupled hook on the model's optimizer adds gamma * (p - anchor) to a zero gradient."""
    handle = model.policy.syre["actor"]
    p, anchor = handle.params()[0], handle.anchors()[0]
    before = p.detach().clone()
    for q in model.policy.parameters():
        q.grad = torch.zeros_like(q)
    model.policy.optimizer.step()
    torch.testing.assert_close(p.grad, gamma * (before - anchor))
    assert float((before - anchor).abs().max()) > 0


def test_save_load_restores_anchors_and_keeps_syre_active(tmp_path):
    model = ppo(seed=2, syre_gamma=0.05, syre_scale=0.3, syre_ar_eps=0.1)
    model.learn(128)
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", env=gym.make("Pendulum-v1"), device="cpu")
    assert isinstance(loaded.policy, SyreActorCriticPolicy)
    saved = model.policy.state_dict()
    for key, value in loaded.policy.state_dict().items():
        assert torch.equal(value, saved[key]) if key != "_extra_state" else value == saved[key], key
    assert loaded.policy.syre["actor"].settings.ar_eps == 0.1
    ds = loaded.policy.syre["actor"].diagonals()
    assert ds is not None and float(ds[0].std()) > 0
    loaded.learn(64)  # training continues
    # check_hook_active assumes D = 1: check the decay of a loaded plain-syre model
    plain = ppo(seed=2, syre_gamma=0.05, syre_scale=0.3)
    plain.save(tmp_path / "plain.zip")
    check_hook_active(PPO.load(tmp_path / "plain.zip", device="cpu"), 0.05)


def test_load_in_a_fresh_process_that_only_imported_syre_rl(tmp_path):
    model = ppo(seed=3, syre_gamma=0.02, syre_scale=0.4)
    model.save(tmp_path / "m.zip")
    anchor_sum = float(model.policy.syre["critic"].anchors()[0].sum())
    code = (
        "import syre_rl, stable_baselines3, sys\n"
        f"m = stable_baselines3.PPO.load({str(tmp_path / 'm.zip')!r}, device='cpu')\n"
        "h = m.policy.syre['critic']\n"
        "print(type(m.policy).__name__, repr(float(h.anchors()[0].sum())), h.settings.gamma)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["SyreActorCriticPolicy", repr(anchor_sum), "0.02"]


def test_policy_save_load_round_trip(tmp_path):
    policy = ppo(seed=5, syre_gamma=0.01, syre_targets=["critic"]).policy
    policy.save(tmp_path / "policy.pth")
    loaded = SyreActorCriticPolicy.load(tmp_path / "policy.pth")
    assert loaded.method_targets == ("critic",) and loaded.method_settings.seed == 5
    for (k, a), b in zip(policy.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b) if k != "_extra_state" else a == b, k


def test_evaluate_predict_gsde_and_a2c():
    model = PPO(
        SyreActorCriticPolicy,
        "Pendulum-v1",
        use_sde=True,
        seed=0,
        device="cpu",
        policy_kwargs={**NET, "syre_gamma": 0.01},
        **SMALL,
    )
    model.learn(64)
    mean, std = evaluate_policy(model, model.get_env(), n_eval_episodes=2)
    assert np.isfinite(mean) and -2000 < mean <= 0  # Pendulum's returns are negative
    action, _ = model.predict(np.zeros(3, dtype=np.float32), deterministic=True)
    assert action.shape == (1,)
    a2c = A2C(
        SyreActorCriticPolicy,
        "CartPole-v1",
        n_steps=8,
        seed=0,
        device="cpu",
        policy_kwargs=dict(syre_gamma=0.01, syre_scale=0.2),
    )
    before = a2c.policy.syre["actor"].anchor_distance()
    a2c.learn(64)
    assert a2c.policy.syre["actor"].anchor_distance() != before  # RMSprop trains the syre policy
    check_hook_active(a2c, 0.01)


def test_logger_callback_records_syre_figures(tmp_path):
    model = ppo(syre_gamma=0.1, syre_scale=0.2)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    model.learn(192, callback=SyreLoggerCallback())
    with open(tmp_path / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4  # after each of the 3 rollouts, and once more at the end of training
    assert {k: float(rows[-1][k]) for k in model.policy.method_stats()} == model.policy.method_stats()
    for target in ("actor", "critic"):
        handle = model.policy.syre[target]
        n = sum(p.numel() for p in handle.params())
        # penalty = gamma/2 * n * distance^2 in every row, and the figures move as training goes on
        penalty = np.array([float(r[f"syre/{target}/penalty"]) for r in rows])
        dist = np.array([float(r[f"syre/{target}/anchor_distance"]) for r in rows])
        np.testing.assert_allclose(penalty, 0.05 * n * dist**2, rtol=1e-5)
        assert dist[0] > 0 and dist[2] != dist[0]


@pytest.mark.parametrize(
    "kwargs,env,match",
    [
        (dict(syre_gamma=-1.0), "Pendulum-v1", "gamma must be a finite number >= 0, got -1.0"),
        (dict(syre_scale=-0.1), "Pendulum-v1", "scale must be a finite number >= 0, got -0.1"),
        (dict(syre_ar_eps=1.5), "Pendulum-v1", r"ar_eps must be a finite number in \[0, 1\)"),
        (
            dict(syre_targets="actor,value"),
            "Pendulum-v1",
            r"targets must be one or more of \['actor', 'critic', "
            r"'features', 'lstm'\], got 'actor,value'",
        ),
        (dict(syre_targets=[]), "Pendulum-v1", "targets must be one or more of"),
        (dict(syre_targets="features"), "Pendulum-v1", "target 'features' has no Linear, Conv or recurrent layer"),
    ],
)
def test_bad_policy_kwargs(kwargs, env, match):
    with pytest.raises(ValueError, match=match):
        ppo(env=env, **kwargs)


@pytest.mark.gpu
def test_policy_trains_on_gpu_with_anchors_on_the_device(tmp_path):
    model = PPO(
        SyreActorCriticPolicy,
        "Pendulum-v1",
        seed=0,
        device="cuda",
        policy_kwargs={**NET, "syre_gamma": 0.01, "syre_scale": 0.2},
        **SMALL,
    )
    assert all(a.is_cuda for h in model.policy.syre.values() for a in h.anchors())
    model.learn(128)
    check_hook_active(model, 0.01)
    model.save(tmp_path / "gpu.zip")
    cpu = PPO.load(tmp_path / "gpu.zip", device="cpu")
    for a, b in zip(cpu.policy.syre["actor"].anchors(), model.policy.syre["actor"].anchors()):
        assert torch.equal(a, b.cpu())


def test_method_state_travels_with_the_model(tmp_path):
    from syre_rl import MethodActorCriticPolicy

    model = PPO(
        MethodActorCriticPolicy,
        "Pendulum-v1",
        seed=0,
        device="cpu",
        **SMALL,
        policy_kwargs={**NET, "method": "redo", "method_kwargs": {"every": 3, "tau": 1e-1}},
    )
    model.learn(128)
    redo = model.policy.methods["critic"]
    assert redo.settings.tau == 0.1 and redo.steps == 8  # 2 epochs x 2 minibatches x 2 rollouts
    model.save(tmp_path / "redo.zip")
    loaded = PPO.load(tmp_path / "redo.zip", device="cpu").policy.methods["critic"]
    assert (loaded.steps, loaded.total_reset, loaded._counts) == (redo.steps, redo.total_reset, redo._counts)
    for a, b in zip(loaded._sums, redo._sums):
        assert torch.equal(a, b)


def test_shrink_perturb_draws_independent_noise_for_actor_and_critic():
    from syre_rl import MethodActorCriticPolicy

    model = PPO(
        MethodActorCriticPolicy,
        "Pendulum-v1",
        seed=0,
        device="cpu",
        **SMALL,
        policy_kwargs={
            "net_arch": dict(pi=[16], vf=[16]),
            "method": "shrink-perturb",
            "method_kwargs": {"shrink": 0.0, "noise": 0.1},
        },
    )
    policy = model.policy
    before = [
        p.detach().clone()
        for p in (policy.mlp_extractor.policy_net[0].weight, policy.mlp_extractor.value_net[0].weight)
    ]
    for p in policy.parameters():
        p.grad = torch.zeros_like(p)
    policy.optimizer.param_groups[0]["lr"] = 0.0
    policy.optimizer.step()
    actor_noise = policy.mlp_extractor.policy_net[0].weight.detach() - before[0]
    critic_noise = policy.mlp_extractor.value_net[0].weight.detach() - before[1]
    assert float(actor_noise.std()) == pytest.approx(0.1, rel=0.3)
    assert float((actor_noise - critic_noise).abs().max()) > 0.05  # not the same draw


def test_method_kwargs_take_the_methods_own_settings_object():
    from syre_rl import MethodActorCriticPolicy
    from syre_rl.methods import ReDoSettings

    kwargs = {**NET, "method": "redo", "method_kwargs": ReDoSettings(tau=0.2, every=4)}
    model = PPO(MethodActorCriticPolicy, "Pendulum-v1", seed=0, device="cpu", policy_kwargs=kwargs, **SMALL)
    assert all(m.settings == ReDoSettings(tau=0.2, every=4) for m in model.policy.methods.values())
    with pytest.raises(ValueError, match="method 'syre' takes SyreSettings, got ReDoSettings"):
        PPO(MethodActorCriticPolicy, "Pendulum-v1", device="cpu", policy_kwargs={**kwargs, "method": "syre"}, **SMALL)
