"""syre's exactness: against the optimizers' own decay, against the literal objective, and on symmetric states."""

import copy

import pytest
import torch
from torch import nn

import syre_rl
from syre_rl import attach_syre
from syre_rl.base import default_params


def mlp(seed: int = 0, hidden: int = 16) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.LayerNorm(hidden), nn.Linear(hidden, 3))


def batches(n: int, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(32, 5, generator=gen), torch.randn(32, 3, generator=gen)) for _ in range(n)]


def train(net, opt, data, offsets=None):
    """Plain training loop; with ``offsets`` the forward pass uses W + W0 (the literal objective)."""
    for x, y in data:
        opt.zero_grad()
        if offsets is None:
            out = net(x)
        else:
            params = {n: p + offsets.get(n, 0) for n, p in net.named_parameters()}
            out = torch.func.functional_call(net, params, (x,))
        nn.functional.mse_loss(out, y).backward()
        opt.step()


OPTIMIZERS = {
    "sgd": lambda ps, wd: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=wd),
    "adam": lambda ps, wd: torch.optim.Adam(ps, lr=0.01, weight_decay=wd),
    "adamw": lambda ps, wd: torch.optim.AdamW(ps, lr=0.01, weight_decay=wd),
}


def test_default_params_cover_linear_layers_only():
    assert default_params(mlp()) == ["0.weight", "0.bias", "3.weight", "3.bias"]


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_zero_scale_coupled_is_bit_identical_to_weight_decay(name):
    gamma, data = 0.05, batches(60)
    ref, net = mlp(), mlp()
    train(ref, OPTIMIZERS[name](ref.parameters(), gamma), data)
    opt = OPTIMIZERS[name](net.parameters(), 0.0)
    syre = attach_syre(net, opt, gamma=gamma, scale=0.0)
    train(net, opt, data)
    # The reference decays exactly the parameters under syre (the layer norm is not one of them).
    ref2 = mlp()
    groups = [
        {"params": [p for n, p in ref2.named_parameters() if n in syre.names], "weight_decay": gamma},
        {"params": [p for n, p in ref2.named_parameters() if n not in syre.names], "weight_decay": 0.0},
    ]
    train(ref2, OPTIMIZERS[name](groups, 0.0), data)
    for (n, a), b in zip(ref2.named_parameters(), net.parameters()):
        assert torch.equal(a, b), n
    assert not torch.equal(ref[0].weight, mlp()[0].weight)  # training moved the weights


def test_zero_scale_decoupled_is_bit_identical_to_adamw():
    gamma, data = 0.3, batches(60)
    ref, net = mlp(), mlp()
    groups = [
        {"params": [p for n, p in ref.named_parameters() if not n.startswith("2.")], "weight_decay": gamma},
        {"params": list(ref[2].parameters()), "weight_decay": 0.0},
    ]
    train(ref, torch.optim.AdamW(groups, lr=0.01), data)
    opt = torch.optim.AdamW(net.parameters(), lr=0.01, weight_decay=0.0)
    attach_syre(net, opt, gamma=gamma, scale=0.0, decoupled=True)
    train(net, opt, data)
    for (n, a), b in zip(ref.named_parameters(), net.parameters()):
        assert torch.equal(a, b), n


@pytest.mark.parametrize("name,decoupled", [("sgd", False), ("adam", False), ("adamw", True)])
@pytest.mark.parametrize("ar_eps", [0.0, 0.2])
def test_anchor_form_matches_literal_objective(name, decoupled, ar_eps):
    """Iterates of syre = iterates of L(theta + theta0) + gamma/2 theta^T D theta, shifted by theta0."""
    gamma, data = 0.1, [(x.double(), y.double()) for x, y in batches(60)]
    net = mlp().double()
    opt = OPTIMIZERS[name](net.parameters(), 0.0)
    syre = attach_syre(net, opt, gamma=gamma, scale=0.5, ar_eps=ar_eps, decoupled=decoupled, seed=3)
    anchors = dict(zip(syre.names, syre.anchors()))
    ds = dict(zip(syre.names, syre.diagonals() or [torch.ones_like(a) for a in anchors.values()]))
    train(net, opt, data)

    theta = mlp().double()  # the literal form: theta starts at init, forward uses theta + theta0
    lit_opt = OPTIMIZERS[name](theta.parameters(), 0.0)
    named = dict(theta.named_parameters())
    for x, y in data:
        lit_opt.zero_grad()
        params = {n: p + anchors.get(n, 0) for n, p in named.items()}
        loss = nn.functional.mse_loss(torch.func.functional_call(theta, params, (x,)), y)
        if not decoupled:
            loss = loss + 0.5 * gamma * sum((ds[n] * named[n] ** 2).sum() for n in anchors)
        loss.backward()
        if decoupled:  # AdamW's decoupled decay on theta, with D, before the update
            with torch.no_grad():
                for n in anchors:
                    named[n].sub_(lit_opt.param_groups[0]["lr"] * gamma * ds[n] * named[n])
        lit_opt.step()
    for n, p in net.named_parameters():
        torch.testing.assert_close(p - anchors.get(n, 0), named[n], rtol=1e-9, atol=1e-10)
    assert max(float(a.abs().max()) for a in anchors.values()) > 0.05  # anchors are not negligible


def copies_spread(layer: nn.Linear, groups) -> float:
    """Largest distance between the incoming weights (with bias) of units meant to be copies."""
    w = torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach()
    return max(float((w[g] - w[g[0]]).norm(dim=1).max()) for g in groups)


def symmetric_student(seed: int):
    """Two-layer ReLU net, 8 hidden units of which units {0,1,2} and {3,4} are exact copies."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
    groups = [[0, 1, 2], [3, 4]]
    with torch.no_grad():
        for g in groups:
            net[0].weight[g] = net[0].weight[g[0]].clone()
            net[0].bias[g] = net[0].bias[g[0]].clone()
            net[2].weight[:, g] = net[2].weight[:, g[0] : g[0] + 1].clone()
    return net, groups


@pytest.mark.parametrize("seed", [0, 1])
def test_symmetric_state_kept_by_weight_decay_and_left_under_syre(seed):
    torch.manual_seed(100 + seed)
    teacher = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 1))
    x = torch.randn(256, 4)
    y = teacher(x).detach()

    def run(use_syre: bool):
        net, groups = symmetric_student(seed)
        opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=0.0 if use_syre else 0.01)
        if use_syre:
            attach_syre(net, opt, gamma=0.01, scale=0.01, seed=seed)
        start = copies_spread(net[0], groups)
        for _ in range(1500):
            opt.zero_grad()
            nn.functional.mse_loss(net(x), y).backward()
            opt.step()
        return start, copies_spread(net[0], groups)

    start, end = run(use_syre=False)
    assert start == 0.0 and end == 0.0  # gradient descent never leaves the symmetric state
    start, end = run(use_syre=True)
    assert 0 < start < 0.05  # the anchors alone separate the copies only slightly ...
    assert end > 5 * start  # ... and training under syre pushes them apart (measured: 13x and 10x)


def test_anchor_statistics_and_distribution():
    net = nn.Sequential(nn.Linear(400, 300), nn.Linear(300, 2))
    init = copy.deepcopy(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    syre = attach_syre(net, opt, gamma=0.5, scale=0.2, ar_eps=0.1, seed=7)
    w0 = net[0].weight_syre_anchor
    assert torch.equal(net[0].weight, init[0].weight + w0)  # shifted by the anchor at attach time
    assert abs(float(w0.std()) - 0.2 / 400**0.5) < 0.02 * 0.2 / 400**0.5 * 5
    assert abs(float(net[1].bias_syre_anchor.std()) - 0.2 / 300**0.5) < 0.01  # bias uses the layer's fan_in
    d = net[0].weight_syre_d
    assert 0.9 <= float(d.min()) and float(d.max()) <= 1.1 and float(d.std()) > 0.05
    learned = syre.learned()
    assert torch.equal(learned[0], net[0].weight - w0)
    expected = 0.25 * sum(float((dd * t * t).sum()) for dd, t in zip(syre.diagonals(), learned))
    assert syre.penalty() == pytest.approx(expected)
    n = sum(t.numel() for t in learned)
    assert syre.anchor_distance() == pytest.approx((sum(float((t * t).sum()) for t in learned) / n) ** 0.5)


def test_anchors_reproducible_independent_and_in_state_dict():
    a, b = mlp(), mlp()
    sa = attach_syre(a, torch.optim.SGD(a.parameters(), lr=0.1), gamma=0.1, scale=1.0, seed=5)
    sb = attach_syre(b, torch.optim.SGD(b.parameters(), lr=0.1), gamma=0.1, scale=1.0, seed=5)
    for x, y in zip(sa.anchors(), sb.anchors()):
        assert torch.equal(x, y)
    # Layers draw from their own streams: the standardised draws of two layers differ.
    w0, w3 = sa.anchors()[0].flatten()[:9] * 5**0.5, sa.anchors()[2].flatten()[:9] * 16**0.5
    assert float((w0 - w3).abs().min()) > 1e-4
    keys = set(a.state_dict())
    assert {"0.weight_syre_anchor", "0.bias_syre_anchor", "3.weight_syre_anchor", "3.bias_syre_anchor"} <= keys
    assert "2.weight_syre_anchor" not in keys  # layer norm untouched

    c = mlp(seed=9)
    sc = attach_syre(c, torch.optim.SGD(c.parameters(), lr=0.1), gamma=0.1, scale=1.0, seed=6)
    c.load_state_dict(a.state_dict())
    for x, y in zip(sc.anchors(), sa.anchors()):
        assert torch.equal(x, y)


def test_anchors_follow_to_device_and_dtype():
    """After a step (which caches the tensors the decay uses), ``.double()`` replaces parameters and buffers: the
    next step's decay uses the new ones, exactly ``gamma * (p - anchor)`` in float64."""
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    syre = attach_syre(net, opt, gamma=0.1, scale=0.1)
    x, y = batches(1)[0]
    opt.zero_grad()
    nn.functional.mse_loss(net(x), y).backward()
    opt.step()  # fills the cache with the float32 tensors
    net.double()
    assert all(a.dtype == torch.float64 for a in syre.anchors())
    for a in syre.anchors():  # the new buffers only: a stale cache would still decay toward the old values
        a.add_(0.5)
    before = [p.detach().clone() for p in syre.params()]
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for p, b, a in zip(syre.params(), before, syre.anchors()):
        assert p.grad.dtype == torch.float64 and torch.equal(p.grad, 0.1 * (b - a))
        assert torch.allclose(p, b - 0.1 * p.grad, rtol=0, atol=1e-12)  # the step moved the float64 parameters


@pytest.mark.gpu
def test_cuda_matches_cpu():
    data = batches(20)
    results = []
    for device in ("cpu", "cuda"):
        net = mlp().double().to(device)
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        attach_syre(net, opt, gamma=0.1, scale=0.3, ar_eps=0.05)
        train(net, opt, [(x.double().to(device), y.double().to(device)) for x, y in data])
        results.append([p.detach().cpu() for p in net.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b)


def test_detach_stops_decay_and_removes_anchors():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    syre = attach_syre(net, opt, gamma=1.0, scale=0.1)
    syre.detach()
    assert not any("syre" in k for k in net.state_dict())
    before = [p.clone() for p in net.parameters()]
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    attach_syre(net, opt, gamma=1.0)  # can attach again once detached


def test_grad_free_parameters_are_not_decayed():
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    attach_syre(net, opt, gamma=1.0, scale=0.1)
    before = net[0].weight.clone()
    net[3].weight.grad = torch.zeros_like(net[3].weight)
    opt.step()
    assert torch.equal(before, net[0].weight)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(gamma=-0.1), "gamma must be a finite number >= 0, got -0.1"),
        (dict(gamma=float("nan")), "gamma must be a finite number >= 0, got nan"),
        (dict(gamma=0.1, scale=-1.0), "scale must be a finite number >= 0, got -1.0"),
        (dict(gamma=0.1, ar_eps=1.0), r"ar_eps must be a finite number in \[0, 1\)"),
        (dict(gamma=0.1, ar_eps=-0.1), r"ar_eps must be a finite number in \[0, 1\)"),
        (dict(gamma=0.1, params=["0.weight", "9.bias"]), r"unknown parameter name\(s\) \['9.bias'\]; valid:"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, match):
    net = mlp()
    with pytest.raises(ValueError, match=match):
        attach_syre(net, torch.optim.SGD(net.parameters(), lr=0.1), **kwargs)
    assert not any("syre" in k for k in net.state_dict())  # nothing half-attached


def test_parameters_outside_the_optimizer_and_double_attach_are_refused():
    net = mlp()
    opt = torch.optim.SGD(net[0].parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"\['3.weight', '3.bias'\] are not in the optimizer"):
        attach_syre(net, opt, gamma=0.1)
    attach_syre(net, opt, gamma=0.1, params=["0.weight"])
    with pytest.raises(ValueError, match=r"\['0.weight'\] already have an anchor method attached"):
        attach_syre(net, opt, gamma=0.1, params=["0.weight"])
    assert [k for k in net.state_dict() if "_syre_" in k] == ["0.weight_syre_anchor"]  # the refusals added nothing


@pytest.mark.parametrize(
    "module,params,match",
    [
        (
            nn.Sequential(nn.ReLU()),
            None,
            "syre: no parameters to act on \\(Sequential has no Linear, Conv or recurrent",
        ),
        (nn.Sequential(nn.Linear(2, 2)), [], "syre: no parameters to act on \\(params is empty\\)"),
    ],
)
def test_nothing_to_act_on_is_refused_at_attach(module, params, match):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=match):
        attach_syre(module, opt, gamma=0.1, params=params)


def test_an_optimizer_that_decays_already_is_refused_and_nothing_is_attached():
    """Its weight_decay on a covered parameter would decay it twice, the second time toward 0 (AdamW decays by
    default); the refusal leaves the network as it was, and the method may then be attached elsewhere."""
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    method = syre_rl.make_method("syre", gamma=0.1)
    with pytest.raises(ValueError, match=r"param group 0 has weight_decay=0.01, which would decay 0.weight, 0.bias"):
        method.attach(net, torch.optim.AdamW(net.parameters()))
    assert net.state_dict().keys() == before.keys() and all(
        torch.equal(v, before[k]) for k, v in net.state_dict().items()
    )
    method.attach(net, torch.optim.AdamW(net.parameters(), weight_decay=0.0))  # the same method, now attached
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    groups = [{"params": net[0].parameters(), "weight_decay": 0.1}, {"params": net[2].parameters()}]
    with pytest.raises(ValueError, match="param group 0 has weight_decay=0.1"):
        syre_rl.make_method("l2", gamma=0.1).attach(net, torch.optim.SGD(groups, lr=0.1))
    groups = [{"params": net[0].parameters(), "weight_decay": 0.1}, {"params": net[2].parameters()}]
    syre_rl.make_method("l2", gamma=0.1).attach(net, torch.optim.SGD(groups, lr=0.1), params=["2.weight"])  # uncovered


@pytest.mark.parametrize(
    "module,optimizer,params,message",
    [
        ("net", None, None, "the optimizer must be a torch.optim.Optimizer .*got NoneType"),
        ("net", "net", None, "the optimizer must be a torch.optim.Optimizer .*got Sequential"),
        (None, "opt", None, "the module must be a torch.nn.Module, got NoneType"),
        ("net", "opt", "0.weight", r"params is a list of parameter names, not one text: write \['0.weight'\]"),
    ],
)
def test_attach_refuses_what_is_not_a_module_an_optimizer_or_a_list_of_names(module, optimizer, params, message):
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    given = {"net": net, "opt": torch.optim.SGD(net.parameters(), lr=0.1), None: None}
    with pytest.raises(TypeError, match=message):
        syre_rl.attach_syre(given[module], given[optimizer], gamma=0.1, params=params)
