"""K networks as one (syre_rl/members.py): every member of a batch trains exactly as its own network, for every
method, and a member's state is a plain network's.

Equivalence is checked in float64 over 60 Adam steps (a batched matrix product sums in another order than a single
one, so float32 would agree only to rounding, and chaotic training would drift apart over long runs)."""

import copy

import pytest
import torch
from torch import nn

from syre_rl.members import (
    MemberLinear,
    member_optimizer_state,
    member_state,
    stack_modules,
    stack_optimizer_states,
)
from syre_rl.methods import METHODS, make_method
from tests.conftest import METHOD_CASES as CASES

SEEDS = [3, 0, 7]
STEPS = 60


def net(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)).double()


def settings(name: str, values: dict, seed: int):
    own = {"seed": seed} if "seed" in METHODS[name].Settings.__dataclass_fields__ else {}
    return METHODS[name].Settings.from_dict({**values, **own})


def data(seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1000 * seed + step)
    return torch.randn(16, 6, generator=g, dtype=torch.float64), torch.randint(0, 3, (16,), generator=g)


def train(model, opt, inputs) -> None:
    for x, y in inputs:
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.flatten(0, -2), y.flatten(), reduction="none")
        opt.zero_grad()
        loss.view(*y.shape).mean(-1).sum().backward()
        opt.step()


@pytest.mark.parametrize("name,values", CASES, ids=[f"{n}-{'-'.join(map(str, v.values()))}" for n, v in CASES])
def test_every_member_of_a_batch_trains_as_its_own_network(name, values):
    check_members_train_alone(name, [values] * len(SEEDS))


# Members with settings of their own (each method's PER_MEMBER: a tuning grid as one batch), one per seed of SEEDS;
# a zero where a member may act as if the method were off (no draw of noise, no decay)
MIXED = [
    ("l2", [{"gamma": 1e-2}, {"gamma": 0.0}, {"gamma": 1e-1}]),
    (
        "l2",
        [{"gamma": 1e-2, "decoupled": True}, {"gamma": 3e-2, "decoupled": True}, {"gamma": 1e-1, "decoupled": True}],
    ),
    ("syre", [{"gamma": 1e-2, "scale": 1.0}, {"gamma": 1e-1, "scale": 0.1}, {"gamma": 1e-3, "scale": 0.5}]),
    ("syre-ar", [{"gamma": 1e-2, "ar_eps": 0.1}, {"gamma": 1e-1, "ar_eps": 0.5, "scale": 0.3}, {"gamma": 0.0}]),
    ("syre-ar", [{"gamma": 1e-2, "decoupled": True}, {"gamma": 1e-1, "ar_eps": 0.5, "decoupled": True}] * 2),
    ("l2-init", [{"gamma": 1e-2}, {"gamma": 1e-1}, {"gamma": 1e-3}]),
    ("jitter", [{"gamma": 1e-2, "scale": 0.0}, {"gamma": 1e-1, "scale": 0.5}, {"gamma": 1e-3, "scale": 1.0}]),
    (
        "shrink-perturb",
        [{"shrink": 1e-3, "noise": 1e-3}, {"shrink": 1e-2, "noise": 0.0}, {"shrink": 0.0, "noise": 1e-2}],
    ),
    ("redo", [{"every": 10, "tau": 0.3}, {"every": 10, "tau": 0.0}, {"every": 10, "tau": 0.6}]),
    (
        "cbp",
        [
            {"replacement_rate": 0.05, "maturity": 5},
            {"replacement_rate": 0.1, "maturity": 2, "decay": 0.9},
            {"replacement_rate": 0.0, "maturity": 20, "decay": 0.5},
        ],
    ),
]


@pytest.mark.parametrize("name,members", MIXED, ids=[name for name, _ in MIXED])
def test_members_with_settings_of_their_own_train_as_their_own_networks(name, members):
    check_members_train_alone(name, members[: len(SEEDS)], resets=False)


def check_members_train_alone(name: str, member_values: list[dict], resets: bool = True) -> None:
    """Each member of a batch (seeds SEEDS, settings ``member_values``) trains exactly as its own network: weights,
    anchors, the optimizer's state, the method's figures and state."""
    singles = []
    for seed, values in zip(SEEDS, member_values):
        model = net(seed)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        method = make_method(name, settings(name, values, seed)).attach(model, opt)
        train(model, opt, [data(seed, t) for t in range(STEPS)])
        singles.append((model, opt, method))

    batched = stack_modules([net(seed) for seed in SEEDS])
    opt = torch.optim.Adam(batched.parameters(), lr=1e-2)
    members = [settings(name, values, seed) for seed, values in zip(SEEDS, member_values)]
    method = make_method(name, members).attach(batched, opt)
    inputs = [[data(seed, t) for seed in SEEDS] for t in range(STEPS)]
    train(batched, opt, [(torch.stack([x for x, _ in xs]), torch.stack([y for _, y in xs])) for xs in inputs])

    for k, (model, single_opt, single) in enumerate(singles):
        mine = member_state(batched.state_dict(), k)
        assert mine.keys() == model.state_dict().keys()
        for key, value in model.state_dict().items():  # weights and anchors
            torch.testing.assert_close(mine[key], value, rtol=1e-10, atol=1e-12)
        own = member_optimizer_state(opt.state_dict(), k, single_opt.state_dict()["param_groups"])
        for i, entry in single_opt.state_dict()["state"].items():
            for key, value in entry.items():
                torch.testing.assert_close(own["state"][i][key], value, rtol=1e-10, atol=1e-12)
        assert method.stats(member=k) == pytest.approx(single.stats(), rel=1e-10)
        state, expected = method.state_dict(member=k), single.state_dict()
        assert state.keys() == expected.keys()
        assert torch.testing.assert_close(state, expected, rtol=1e-10, atol=1e-12) is None
    if name in ("redo", "cbp"):  # the case is meant to reset units: in every member, or as its settings ask
        key = {"redo": "reset_units_total", "cbp": "replaced_units_total"}[name]
        totals = [method.stats(member=k)[key] for k in range(len(SEEDS))]
        assert all(t > 0 for t in totals) if resets else (totals[0] > 0 and len(set(totals)) > 1), totals


@pytest.mark.parametrize("name,values", [c for c in CASES if c[0] in ("shrink-perturb", "redo", "cbp")][:4])
def test_a_members_state_resumes_its_own_network_and_back(name, values):
    """A member's state (network, optimizer, method) continues on a plain network exactly as the batch goes on,
    and a plain network's state continues as a member."""
    batched = stack_modules([net(seed) for seed in SEEDS])
    opt = torch.optim.Adam(batched.parameters(), lr=1e-2)
    method = make_method(name, [settings(name, values, s) for s in SEEDS]).attach(batched, opt)

    def batch(t):
        xs = [data(s, t) for s in SEEDS]
        return torch.stack([x for x, _ in xs]), torch.stack([y for _, y in xs])

    train(batched, opt, [batch(t) for t in range(25)])
    k = 1
    model = net(SEEDS[k])
    single_opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    single = make_method(name, settings(name, values, SEEDS[k])).attach(model, single_opt)
    model.load_state_dict(member_state(batched.state_dict(), k))
    single_opt.load_state_dict(member_optimizer_state(opt.state_dict(), k, single_opt.state_dict()["param_groups"]))
    single.load_state_dict(method.state_dict(member=k))

    again = stack_modules([net(seed) for seed in SEEDS])
    again_opt = torch.optim.Adam(again.parameters(), lr=1e-2)
    again_method = make_method(name, [settings(name, values, s) for s in SEEDS]).attach(again, again_opt)
    again.load_state_dict(batched.state_dict())
    again_opt.load_state_dict(copy.deepcopy(opt.state_dict()))  # (loading would share its tensors)
    for member in range(len(SEEDS)):
        again_method.load_state_dict(copy.deepcopy(method.state_dict(member=member)), member=member)

    train(batched, opt, [batch(t) for t in range(25, STEPS)])
    train(model, single_opt, [data(SEEDS[k], t) for t in range(25, STEPS)])
    train(again, again_opt, [batch(t) for t in range(25, STEPS)])
    for key, value in model.state_dict().items():
        torch.testing.assert_close(batched.state_dict()[key][k], value, rtol=1e-10, atol=1e-12)
    for key, value in batched.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key
    torch.testing.assert_close(single.state_dict(), method.state_dict(member=k), rtol=1e-10, atol=1e-12)


def test_member_linear_maps_each_member_with_its_own_weights():
    layer = MemberLinear(3, 4, 2, dtype=torch.float64)
    nn.init.normal_(layer.weight)
    nn.init.normal_(layer.bias)
    x = torch.randn(3, 5, 7, 4, dtype=torch.float64)
    out = layer(x)
    assert out.shape == (3, 5, 7, 2)
    for k in range(3):
        torch.testing.assert_close(out[k], x[k] @ layer.weight[k].T + layer.bias[k])
    no_bias = MemberLinear(2, 4, 2, bias=False)
    assert no_bias.bias is None and no_bias(torch.ones(2, 3, 4)).shape == (2, 3, 2)


def test_what_cannot_be_batched_is_refused_by_name():
    with pytest.raises(ValueError, match="at least one module"):
        stack_modules([])
    with pytest.raises(ValueError, match="one architecture"):
        stack_modules([nn.Linear(2, 3), nn.Linear(2, 4)])
    with pytest.raises(ValueError, match=r"not Conv2d \(0\)"):
        stack_modules([nn.Sequential(nn.Conv2d(1, 2, 3)), nn.Sequential(nn.Conv2d(1, 2, 3))])
    with pytest.raises(ValueError, match="differ in seed and gamma and scale and ar_eps only; member 1 differs "):
        make_method("syre", [settings("syre", {"decoupled": True}, 0), settings("syre", {"gamma": 1e-2}, 1)])
    with pytest.raises(ValueError, match="differ in seed and tau only; member 1 differs from member 0 in every"):
        make_method("redo", [settings("redo", {"every": 10}, 0), settings("redo", {"every": 20}, 1)])
    with pytest.raises(ValueError, match="in gamma only; member 1 differs from member 0 in decoupled"):
        make_method("l2", [settings("l2", {}, 0), settings("l2", {"decoupled": True}, 1)])
    with pytest.raises(ValueError, match=r"all syre-ar \(ar_eps > 0\) or all syre .*\[0.0, 0.1\]"):
        batched = stack_modules([net(0), net(1)])
        mixed = make_method("syre", [settings("syre", {}, 0), settings("syre", {"ar_eps": 0.1}, 1)])
        mixed.attach(batched, torch.optim.Adam(batched.parameters()))
    method = make_method("syre", [settings("syre", {}, 0), settings("syre", {}, 1)])
    with pytest.raises(ValueError, match=r"needs a leading axis of 2 members .*\['0.weight', '0.bias'"):
        model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 3))
        method.attach(model, torch.optim.Adam(model.parameters()))
    batched = stack_modules([net(0), net(1)])
    method.attach(batched, torch.optim.Adam(batched.parameters()))
    with pytest.raises(ValueError, match="give member=0"):
        method.stats()
    with pytest.raises(ValueError, match=r"member must be an integer in \[0, 2\), got 2"):
        method.state_dict(member=2)


def test_members_at_different_steps_are_refused():
    a, b = net(0), net(1)
    opts = [torch.optim.Adam(m.parameters()) for m in (a, b)]
    train(a, opts[0], [data(0, 0)])
    train(b, opts[1], [data(1, 0)])
    train(b, opts[1], [data(1, 1)])
    batched = stack_modules([a, b])
    opt = torch.optim.Adam(batched.parameters())
    with pytest.raises(ValueError, match="different points"):
        stack_optimizer_states([o.state_dict() for o in opts], opt.state_dict()["param_groups"])
