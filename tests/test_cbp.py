"""Continual backprop: which units it replaces, checked against an independent computation in numpy (float64) of
the utilities, ages and units owed; what a replaced unit looks like; exact resume; use by name everywhere."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from syre_rl.methods import CBP, make_method

SETTINGS = dict(replacement_rate=0.25, maturity=3, decay=0.8, seed=0)
LR = 0.05


def mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).double()


class Reference:
    """CBP's bookkeeping as the issue states it, written from scratch in numpy: utility = running average of
    mean |activation| x sum of |outgoing weights|; age; owed += rate x mature; replace the int(owed) mature units
    of lowest utility (ties: lowest index)."""

    def __init__(self, units):
        self.utility = [np.zeros(n) for n in units]
        self.age = [np.zeros(n, dtype=int) for n in units]
        self.owed = [0.0 for _ in units]

    def step(self, activations, outgoing_after_update):
        replaced = []
        for i, (h, w_out) in enumerate(zip(activations, outgoing_after_update)):
            contribution = np.abs(h).mean(axis=0) * np.abs(w_out).sum(axis=0)
            self.utility[i] = 0.8 * self.utility[i] + 0.2 * contribution
            self.age[i] += 1
            mature = np.flatnonzero(self.age[i] > 3)
            self.owed[i] += 0.25 * len(mature)
            n = min(int(self.owed[i]), len(mature))
            chosen = []
            if n:
                self.owed[i] -= n
                chosen = sorted(sorted(mature, key=lambda j: (self.utility[i][j], j))[:n])
                self.utility[i][chosen] = 0
                self.age[i][chosen] = 0
            replaced.append(chosen)
        return replaced


def test_cbp_replaces_the_units_an_independent_computation_says(tmp_path):
    net = mlp()
    opt = torch.optim.SGD(net.parameters(), lr=LR)
    cbp = make_method("cbp", **SETTINGS).attach(net, opt)
    ref = Reference([6, 5])
    gen = torch.Generator().manual_seed(1)
    total = 0
    for step in range(40):
        x = torch.randn(8, 4, generator=gen, dtype=torch.float64)
        with torch.no_grad():  # the hidden activations, computed apart from the method's hooks
            h1 = net[1](net[0](x))
            h2 = net[3](net[2](h1))
        loss = net(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        with torch.no_grad():  # the outgoing weights after the SGD update, before any replacement
            w2 = (net[2].weight - LR * net[2].weight.grad).numpy()
            w3 = (net[4].weight - LR * net[4].weight.grad).numpy()
        before = copy.deepcopy(net.state_dict())
        opt.step()
        expected = ref.step([h1.numpy(), h2.numpy()], [w2, w3])
        state = cbp.state_dict()  # a plain network's: per layer (units,)
        got = [torch.nonzero(a == 0).squeeze(1).tolist() for a in state["age"]]
        assert got == expected, f"step {step}"
        for i, (layer, outgoing, units) in enumerate([(net[0], net[2], expected[0]), (net[2], net[4], expected[1])]):
            np.testing.assert_allclose(state["utility"][i].numpy(), ref.utility[i], rtol=1e-12, atol=1e-15)
            assert state["age"][i].tolist() == ref.age[i].tolist()
            assert state["owed"][i] == pytest.approx(ref.owed[i], abs=1e-12)
            if units:  # a replaced unit: new incoming weights within the init bound, bias 0, outgoing 0
                bound = 1 / np.sqrt(layer.weight.shape[1])
                new = layer.weight[units]
                assert bool((new.abs() <= bound).all()) and not torch.equal(new, before[f"{2 * i}.weight"][units])
                assert bool((layer.bias[units] == 0).all()) and bool((outgoing.weight[:, units] == 0).all())
        total += sum(len(u) for u in expected)
    assert total >= 10 and cbp.stats()["replaced_units_total"] == total  # the test exercised replacements


def test_cbp_resets_the_optimizer_state_of_replaced_units():
    net = mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    cbp = make_method("cbp", **SETTINGS).attach(net, opt)
    gen = torch.Generator().manual_seed(2)
    for _ in range(12):
        opt.zero_grad()
        net(torch.randn(8, 4, generator=gen, dtype=torch.float64)).pow(2).mean().backward()
        opt.step()
        for i, (layer, outgoing) in enumerate([(net[0], net[2]), (net[2], net[4])]):
            fresh = cbp.state_dict()["age"][i] == 0
            if fresh.any():
                for key in ("exp_avg", "exp_avg_sq"):
                    assert bool((opt.state[layer.weight][key][fresh] == 0).all())
                    assert bool((opt.state[outgoing.weight][key][:, fresh] == 0).all())
    assert cbp.stats()["replaced_units_total"] > 0


def test_cbp_resumes_exactly_from_its_state():
    def train(net, opt, steps, seed):
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            opt.zero_grad()
            net(torch.randn(8, 4, generator=gen, dtype=torch.float64)).pow(2).mean().backward()
            opt.step()

    net = mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    cbp = make_method("cbp", **SETTINGS).attach(net, opt)
    train(net, opt, 10, 3)
    saved = copy.deepcopy((net.state_dict(), opt.state_dict(), cbp.state_dict()))
    train(net, opt, 15, 4)
    twin = mlp()
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1e-2)
    twin_cbp = make_method("cbp", **SETTINGS).attach(twin, twin_opt)
    twin.load_state_dict(saved[0])
    twin_opt.load_state_dict(saved[1])
    twin_cbp.load_state_dict(saved[2])
    train(twin, twin_opt, 15, 4)
    for a, b in zip(net.state_dict().values(), twin.state_dict().values()):
        assert torch.equal(a, b)
    state, twin_state = cbp.state_dict(), twin_cbp.state_dict()
    assert twin_state["total_reset"] == state["total_reset"] > 0
    assert all(torch.equal(a, b) for a, b in zip(state["utility"], twin_state["utility"]))


@pytest.mark.parametrize(
    "values,match",
    [
        ({"replacement_rate": 1.5}, r"cbp replacement_rate must be a finite number in \[0, 1\], got 1.5"),
        ({"decay": 1.0}, r"cbp decay must be a finite number in \[0, 1\), got 1.0"),
        ({"maturity": -1}, "cbp maturity must be an integer >= 0, got -1"),
        ({"maturity": 1.5}, "cbp maturity must be an integer, got 1.5"),
        ({"rate": 0.1}, "cbp has no setting 'rate'"),
    ],
)
def test_bad_cbp_settings(values, match):
    with pytest.raises(ValueError, match=match):
        make_method("cbp", **values)


def test_cbp_needs_hidden_layers():
    net = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="cbp needs at least two connected Linear"):
        make_method("cbp").attach(net, torch.optim.SGD(net.parameters(), lr=0.1))


def test_cbp_is_a_method_of_sb3_policies_and_the_harness(tmp_path):
    from stable_baselines3 import PPO

    from syre_rl import MethodActorCriticPolicy

    model = PPO(
        MethodActorCriticPolicy,
        "Pendulum-v1",
        seed=0,
        device="cpu",
        n_steps=64,
        batch_size=32,
        n_epochs=2,
        policy_kwargs={
            "net_arch": [16, 16],
            "method": "cbp",
            "method_kwargs": {"replacement_rate": 0.1, "maturity": 2},
        },
    )
    model.learn(128)
    critic = model.policy.methods["critic"]
    state = critic.state_dict()
    assert isinstance(critic, CBP) and state["total_reset"] > 0 and critic.steps == 8
    model.save(tmp_path / "cbp.zip")
    loaded = PPO.load(tmp_path / "cbp.zip", device="cpu").policy.methods["critic"].state_dict()
    assert loaded["total_reset"] == state["total_reset"]
    assert all(torch.equal(a, b) for a, b in zip(loaded["utility"], state["utility"]))
