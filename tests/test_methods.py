"""Every method does what it must, on a plain network and on an SB3 policy, behind the one interface."""

import copy

import pytest
import torch
from stable_baselines3 import PPO
from torch import nn

from syre_rl import METHODS, MethodActorCriticPolicy, make_method
from syre_rl.callbacks import MethodLoggerCallback
from syre_rl.methods import method_defaults
from syre_rl.metrics import hidden_activations
from tests.conftest import ACTIVE, mlp, step


def zero_grad_step(net, opt):
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()


def test_registry_names_and_defaults():
    assert list(METHODS) == ["vanilla", "l2", "syre", "syre-ar", "l2-init", "jitter", "shrink-perturb", "redo", "cbp"]
    assert method_defaults("syre") == dict(gamma=1e-3, scale=1.0, ar_eps=0.0, decoupled=False, seed=0)
    assert method_defaults("redo") == dict(tau=0.025, every=1000, moment_reset="zero", seed=0)
    assert method_defaults("shrink-perturb") == dict(shrink=1e-4, noise=1e-5, seed=0)
    assert method_defaults("cbp") == dict(
        replacement_rate=1e-4, maturity=10_000, decay=0.99, moment_reset="zero", seed=0
    )


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_a_network_and_an_sb3_policy(name):
    net = mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    method = make_method(name, **ACTIVE[name]).attach(net, opt)
    step(net, opt, 5)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert all(isinstance(v, float) for v in method.stats().values())
    method.detach()
    plain = mlp()
    plain_opt = torch.optim.Adam(plain.parameters(), lr=1e-2)
    step(plain, plain_opt, 5)  # the same steps without the method: only vanilla leaves them as they were
    same = all(torch.equal(a, b) for a, b in zip(net.parameters(), plain.parameters()))
    assert same == (name == "vanilla")
    model = PPO(
        MethodActorCriticPolicy,
        "Pendulum-v1",
        n_steps=64,
        batch_size=32,
        n_epochs=1,
        seed=0,
        device="cpu",
        policy_kwargs=dict(
            method=name, net_arch=dict(pi=[16, 16], vf=[16, 16]), method_kwargs={"every": 1} if name == "redo" else {}
        ),
    )
    model.learn(128, callback=MethodLoggerCallback())
    assert set(model.policy.methods) == {"actor", "critic"}
    assert all(m.name == name for m in model.policy.methods.values())


def test_vanilla_changes_nothing():
    a, b = mlp(), mlp()
    oa, ob = torch.optim.SGD(a.parameters(), lr=0.1), torch.optim.SGD(b.parameters(), lr=0.1)
    make_method("vanilla").attach(b, ob)
    step(a, oa, 3)
    step(b, ob, 3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_l2_init_pulls_toward_the_saved_initial_values():
    net = mlp()
    init = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    method = make_method("l2-init", gamma=0.5).attach(net, opt)
    assert all(torch.equal(a, p) for a, p in zip(method.anchors(), init))  # no shift at the start
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    zero_grad_step(net, opt)
    for p, p0 in zip(net.parameters(), init):  # p - init shrinks by (1 - lr * gamma) = 0.95
        torch.testing.assert_close(p - p0, torch.full_like(p, 0.95))


def test_l2_is_decay_toward_zero():
    net = mlp()
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    make_method("l2", gamma=0.5).attach(net, opt)
    zero_grad_step(net, opt)
    for p, p0 in zip(net.parameters(), before):
        torch.testing.assert_close(p, 0.95 * p0)


def test_jitter_shifts_by_syres_anchors_and_decays_toward_zero():
    syre_net, jitter_net, plain = mlp(), mlp(), mlp()
    s_opt = torch.optim.SGD(syre_net.parameters(), lr=0.1)
    j_opt = torch.optim.SGD(jitter_net.parameters(), lr=0.1)
    syre = make_method("syre", gamma=0.5, scale=0.3, seed=4).attach(syre_net, s_opt)
    jitter = make_method("jitter", gamma=0.5, scale=0.3, seed=4).attach(jitter_net, j_opt)
    for p, q, r in zip(syre_net.parameters(), jitter_net.parameters(), plain.parameters()):
        assert torch.equal(p, q)  # the same perturbed start ...
        assert not torch.equal(p, r)
    assert all(float(a.abs().max()) == 0 for a in jitter.anchors())  # ... but anchors at 0
    shifted = [p.detach().clone() for p in jitter_net.parameters()]
    zero_grad_step(jitter_net, j_opt)
    for p, p0 in zip(jitter_net.parameters(), shifted):
        torch.testing.assert_close(p, 0.95 * p0)
    assert syre.stats()["anchor_distance"] > 0


def test_syre_ar_needs_a_positive_eps():
    with pytest.raises(ValueError, match="ar_eps = 0 is plain syre"):
        make_method("syre-ar", ar_eps=0.0)
    method = make_method("syre-ar")
    assert method.settings.ar_eps == 0.01


def test_shrink_is_exact_without_noise():
    net = nn.Sequential(nn.Linear(20, 30))
    before = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    method = make_method("shrink-perturb", shrink=0.1, noise=0.0).attach(net, opt)
    rms = float(torch.cat([p.flatten() for p in before]).square().mean().sqrt())
    assert method.stats() == pytest.approx({"weights_per_step": 20 * 30 + 30, "weight_rms": rms}, rel=1e-6)
    zero_grad_step(net, opt)
    for p, p0 in zip(net.parameters(), before):  # weight and bias
        assert torch.equal(p, p0 * (1 - 0.1))
    assert method.stats()["weight_rms"] == pytest.approx(0.9 * rms, rel=1e-6)


def test_decay_is_exactly_zero_at_the_anchor():
    net = mlp()
    init = [p.detach().clone() for p in net.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=0.01)  # Adam would turn any rounding residue into a full step
    make_method("l2-init", gamma=0.5).attach(net, opt)
    for _ in range(20):
        zero_grad_step(net, opt)
    assert all(torch.equal(p, p0) for p, p0 in zip(net.parameters(), init))


def test_syre_with_ar_eps_is_syre_ar():
    from syre_rl.methods import canonical_name

    assert canonical_name("syre", {"ar_eps": 0.1}) == "syre-ar" and canonical_name("syre", {}) == "syre"
    assert canonical_name("l2", {"gamma": 1.0}) == "l2"


def test_shrink_perturb_has_the_asked_shrink_and_noise():
    net = nn.Sequential(nn.Linear(200, 300))
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # only the method moves the weights
    make_method("shrink-perturb", shrink=0.1, noise=0.01, seed=3).attach(net, opt)
    before = net[0].weight.detach().clone()
    zero_grad_step(net, opt)
    noise = net[0].weight.detach() - 0.9 * before
    assert abs(float(noise.mean())) < 1e-3 and float(noise.std()) == pytest.approx(0.01, rel=0.02)
    # the same seed gives the same noise
    net2 = nn.Sequential(nn.Linear(200, 300))
    net2.load_state_dict({"0.weight": before, "0.bias": torch.zeros(300)})
    opt2 = torch.optim.SGD(net2.parameters(), lr=0.0)
    make_method("shrink-perturb", shrink=0.1, noise=0.01, seed=3).attach(net2, opt2)
    zero_grad_step(net2, opt2)
    assert torch.equal(net2[0].weight, net[0].weight)


def test_redo_resets_exactly_the_dormant_units():
    net = mlp()
    with torch.no_grad():
        net[0].bias[[2, 7]] = -100.0  # dead in layer 0
        net[2].weight[4] *= 1e-4  # nearly silent in layer 1: dormant at tau 0.1
        net[2].bias[4] = 0.0
    opt = torch.optim.Adam(net.parameters(), lr=0.0)  # only ReDo moves the weights
    redo = make_method("redo", tau=0.1, every=2).attach(net, opt)
    x = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))  # the first batch `step` draws
    # The dormant sets, computed independently from the activations of the two batches ReDo will see
    acts = hidden_activations(redo.layers, lambda: net(torch.cat([x, x])))
    expected = [((a.abs().mean(0) / a.abs().mean()) <= 0.1).nonzero().flatten().tolist() for a in acts]
    assert {2, 7} <= set(expected[0]) and 4 in expected[1]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for _ in range(2):  # the same batch twice; the second step triggers the check
        step(net, opt, 1)
        if redo.steps == 1:
            assert redo.stats()["reset_units"] == 0 and torch.equal(net[0].weight, before["0.weight"])
    after = net.state_dict()
    n = sum(len(e) for e in expected)
    assert redo.stats() == {"reset_units": float(n), "reset_units_total": float(n)}
    zeroed_in = {"0": [], "2": expected[0]}  # columns of a layer's input that the previous reset zeroed
    for (layer, out), units in zip((("0", "2"), ("2", "4")), expected):
        cols = [c for c in range(net.get_submodule(layer).in_features) if c not in zeroed_in[layer]]
        changed = (after[f"{layer}.weight"][:, cols] != before[f"{layer}.weight"][:, cols]).any(dim=1)
        assert changed.nonzero().flatten().tolist() == units  # incoming weights redrawn for these only
        bound = 1 / net.get_submodule(layer).in_features ** 0.5
        assert float(after[f"{layer}.weight"][units].abs().max()) <= bound  # PyTorch's Linear init range
        zeroed = (after[f"{out}.weight"] == 0).all(dim=0)
        assert zeroed.nonzero().flatten().tolist() == units  # outgoing weights zeroed for these only
    w2 = [r for r in range(12) if r not in expected[1]], [c for c in range(12) if c not in expected[0]]
    assert torch.equal(after["2.weight"][w2[0]][:, w2[1]], before["2.weight"][w2[0]][:, w2[1]])
    kept = [c for c in range(12) if c not in expected[1]]
    assert torch.equal(after["4.weight"][:, kept], before["4.weight"][:, kept])
    state = opt.state[net[0].weight]
    assert float(state["exp_avg"][[2, 7]].abs().max()) == 0 and float(state["exp_avg_sq"][[2, 7]].abs().max()) == 0
    assert float(state["exp_avg_sq"].abs().max()) > 0  # the other units keep their moments
    for p, index in ((net[2].weight, (4, slice(None))), (net[4].weight, (slice(None), 4))):  # layer 1's unit 4
        assert all(float(opt.state[p][key][index].abs().max()) == 0 for key in ("exp_avg", "exp_avg_sq"))


@pytest.mark.parametrize("moment_reset", ["zero", "mean"])
def test_redo_moment_reset_sets_the_size_of_a_reset_weights_first_adam_step(moment_reset):
    """With Adam's (per-tensor) step count large, zeroed moments make a reset weight's first update
    lr * 0.1 g / sqrt(0.001 g^2) = 3.16 lr whatever g; "mean" starts it from the layer's typical second moment."""
    net = mlp()
    with torch.no_grad():  # units 2 and 7 of layer 0: alive (so they have Adam moments) but dormant at tau 0.1
        net[0].weight[[2, 7]] *= 1e-2
        net[0].bias[[2, 7]] = 1e-3
    lr = 1e-3
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    redo = make_method("redo", tau=0.1, every=21, moment_reset=moment_reset).attach(net, opt)
    step(net, opt, 20)
    for state in opt.state.values():
        state["step"].fill_(1e6)  # a long-trained optimizer: bias corrections are 1
    before = opt.state[net[2].weight]
    had = before["exp_avg_sq"][:, [2, 7]] > 0  # their outgoing weights had moments (rows of dead units have none)
    assert int(had.sum()) >= 12 and bool((before["exp_avg"][:, [2, 7]][had] != 0).all())
    step(net, opt, 1, seed=2)  # the check: units 2 and 7 of layer 0 are reset
    assert redo.stats()["reset_units"] >= 2
    cols = (net[2].weight == 0).all(dim=0)  # outgoing weights of the reset units of layer 0
    assert cols[[2, 7]].all()
    state = opt.state[net[2].weight]
    assert float(state["exp_avg"][:, cols].abs().max()) == 0
    if moment_reset == "zero":
        assert float(state["exp_avg_sq"][:, cols].abs().max()) == 0
    else:
        kept_mean = state["exp_avg_sq"][:, ~cols].mean()  # the kept entries, which the reset left alone
        assert torch.allclose(state["exp_avg_sq"][:, cols], kept_mean.expand(12, int(cols.sum())))
    v_reset = state["exp_avg_sq"].clone()
    w = net[2].weight.detach().clone()
    step(net, opt, 1, seed=3)
    moved = net[2].weight.grad.abs() > 1e-3  # entries with a gradient well above Adam's eps
    ratio = ((net[2].weight.detach() - w).abs() / lr)[moved & cols]  # |update| in units of lr
    assert ratio.numel() >= 4
    if moment_reset == "zero":
        assert torch.allclose(ratio, torch.full_like(ratio, 0.1 / 0.001**0.5), rtol=1e-3)
    else:  # m = 0.1 g, v = 0.999 v_reset + 0.001 g^2: a step below 3.16 lr, typically well below lr
        g = net[2].weight.grad[moved & cols]
        expected = 0.1 * g.abs() / ((0.999 * v_reset[moved & cols] + 0.001 * g * g).sqrt() + 1e-8)
        assert torch.allclose(ratio, expected, rtol=1e-3)
        assert float(ratio.median()) < 1.0


def test_redo_ignores_evaluation_passes():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    redo = make_method("redo").attach(net, opt)
    net.eval()
    net(torch.randn(8, 6))
    net.train()
    with torch.no_grad():
        net(torch.randn(8, 6))
    assert redo._counts == [0, 0]
    net(torch.randn(8, 6))
    assert redo._counts == [8, 8]


@pytest.mark.parametrize(
    "name,settings,match",
    [
        (
            "sgdw",
            {},
            r"unknown method 'sgdw' \(valid: vanilla, l2, syre, syre-ar, l2-init, jitter, "
            r"shrink-perturb, redo, cbp\)",
        ),
        ("syre_ar", {}, "unknown method 'syre_ar'; did you mean 'syre-ar'?"),
        ("l2", {"scale": 0.1}, r"l2 has no setting 'scale' \(valid: gamma, decoupled\)"),
        ("vanilla", {"gamma": 0.1}, r"vanilla has no setting 'gamma' \(valid: none\)"),
        ("redo", {"tua": 0.1}, "redo has no setting 'tua'; did you mean 'tau'?"),
        ("redo", {"every": 10.0}, "redo every must be an integer, got 10.0"),
        ("redo", {"every": True}, "redo every must be an integer, got True"),
        ("syre", {"decoupled": 1}, "syre decoupled must be true or false, got 1"),
        ("syre", {"gamma": "1e-3"}, "syre gamma must be a number, got '1e-3' \\(text, not a number"),
        ("shrink-perturb", {"shrink": 1.0}, r"shrink must be a finite number in \[0, 1\), got 1.0"),
        ("shrink-perturb", {"noise": -1.0}, "noise must be a finite number >= 0, got -1.0"),
        ("redo", {"every": 0}, "redo every must be an integer >= 1, got 0"),
        ("redo", {"tau": -0.1}, "redo tau must be a finite number >= 0"),
        ("redo", {"moment_reset": "keep"}, "redo moment_reset must be one of 'zero', 'mean', got 'keep'"),
        ("jitter", {"gamma": -1.0}, "gamma must be a finite number >= 0, got -1.0"),
    ],
)
def test_bad_method_settings(name, settings, match):
    with pytest.raises(ValueError, match=match):
        make_method(name, **settings)


@pytest.mark.parametrize("name", list(METHODS))
def test_a_saved_method_continues_identically_in_a_fresh_network(name):
    """Save the weights (anchors included), the optimizer and the method's own state; a fresh network of another
    seed with a fresh method and optimizer, loaded from them, takes bit-identical next steps."""

    def attached(seed: int):
        net = mlp(seed)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        return net, opt, make_method(name, **ACTIVE[name]).attach(net, opt)

    net, opt, method = attached(0)
    step(net, opt, 4)
    saved = copy.deepcopy((net.state_dict(), opt.state_dict(), method.state_dict()))
    fresh_net, fresh_opt, fresh = attached(9)
    fresh_net.load_state_dict(saved[0])
    fresh_opt.load_state_dict(saved[1])
    fresh.load_state_dict(saved[2])
    step(net, opt, 5, seed=5)
    step(fresh_net, fresh_opt, 5, seed=5)
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), fresh_net.parameters()))
    if name in ("shrink-perturb", "redo", "cbp"):  # state of their own, which the fresh method did not have
        fresh_net, fresh_opt, fresh = attached(9)
        fresh_net.load_state_dict(saved[0])
        fresh_opt.load_state_dict(saved[1])
        step(fresh_net, fresh_opt, 5, seed=5)
        assert not all(torch.equal(a, b) for a, b in zip(net.parameters(), fresh_net.parameters()))


def test_a_method_attaches_once():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    method = make_method("redo").attach(net, opt)
    with pytest.raises(ValueError, match="attached already"):
        method.attach(net, opt)


def test_redo_resets_exactly_the_dormant_channels_of_conv_layers():
    """Conv layers: a unit is a channel; its score averages |activation| over examples and positions."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(2, 6, 3), nn.ReLU(), nn.Conv2d(6, 5, 3), nn.ReLU(), nn.Flatten(), nn.Linear(20, 3))
    with torch.no_grad():
        net[0].bias[[1, 4]] = -100.0  # dead channels of layer 0
    opt = torch.optim.Adam(net.parameters(), lr=0.0)
    redo = make_method("redo", tau=0.1, every=1).attach(net, opt)
    assert [(h.name, type(h.incoming).__name__) for h in redo.layers] == [("0", "Conv2d")]  # conv->linear is not one
    x = torch.randn(8, 2, 6, 6, generator=torch.Generator().manual_seed(2))
    act = nn.functional.relu(net[0](x))  # independently: the input of conv 2, (examples, channels, h, w)
    expected = ((act.abs().mean(dim=(0, 2, 3)) / act.abs().mean()) <= 0.1).nonzero().flatten().tolist()
    assert expected == [1, 4]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loss = net(x).sum()
    opt.zero_grad()
    loss.backward()
    opt.step()
    after = net.state_dict()
    changed = (after["0.weight"] != before["0.weight"]).flatten(1).any(dim=1).nonzero().flatten().tolist()
    assert changed == expected and redo.stats()["reset_units"] == 2.0
    assert float(after["0.weight"][expected].abs().max()) <= 1 / (2 * 3 * 3) ** 0.5  # Conv init range
    assert (after["2.weight"][:, expected] == 0).all() and (after["2.weight"][:, [0, 2, 3, 5]] != 0).any()
