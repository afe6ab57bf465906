"""Copies keep the method: ``copy.deepcopy``, ``pickle`` and ``torch.save`` of a network with its optimizer and
method, and of every SB3 policy family with every method, give a copy that trains exactly as the original would
from there (its own hooks on its own optimizer, its own statistics and generators) and leaves the original alone."""

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import syre_rl
from syre_rl.callbacks import probe_forwards
from syre_rl.methods import METHODS, make_method
from tests.conftest import ACTIVE, ALGOS, build, mlp, step

WAYS = ("deepcopy", "pickle", "torch.save")


def copied(obj, how: str):
    if how == "deepcopy":
        return copy.deepcopy(obj)
    if how == "pickle":
        return pickle.loads(pickle.dumps(obj))
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def same(a, b) -> bool:
    """Equal nested values: tensors bit-equal, containers element by element."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def snapshot(module: nn.Module, methods) -> dict:
    return {"module": copy.deepcopy(module.state_dict()), "methods": [copy.deepcopy(m.state_dict()) for m in methods]}


def test_same_can_fail():
    assert same({"a": [torch.ones(2)]}, {"a": [torch.ones(2)]})
    assert not same({"a": [torch.ones(2)]}, {"a": [torch.tensor([1.0, 1.5])]})


def network(name: str):
    net = mlp()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    return net, opt, make_method(name, **ACTIVE[name]).attach(net, opt)


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("name", list(METHODS))
def test_a_copied_network_optimizer_and_method_train_as_the_original_would(name, how):
    net, opt, method = network(name)
    step(net, opt, 5, seed=0)
    twin_net, twin_opt, twin = copied((net, opt, method), how)
    assert (twin.module, twin.optimizer) == (twin_net, twin_opt)
    before = snapshot(net, [method])
    step(twin_net, twin_opt, 6, seed=1)
    assert same(snapshot(net, [method]), before)  # the copy's steps and forward passes left the original alone
    step(net, opt, 6, seed=1)
    assert same(snapshot(twin_net, [twin]), snapshot(net, [method]))
    if name != "vanilla":  # the method changes these steps: a copy without it would not have matched
        plain_net, plain_opt, plain = copied((net, opt, method), how)
        plain.detach()
        step(plain_net, plain_opt, 6, seed=2)
        step(net, opt, 6, seed=2)
        assert not all(torch.equal(a, b) for a, b in zip(plain_net.parameters(), net.parameters()))


def exercise(policy, obs: torch.Tensor, actions: torch.Tensor, steps: int, seed: int) -> None:
    """Training-mode forward passes through every target (what ReDo and CBP record) and optimizer steps of every
    optimizer on a fixed random linear loss."""
    gen = torch.Generator().manual_seed(seed)
    params = list(policy.parameters())
    optimizers = policy._optimizers()
    policy.set_training_mode(True)
    for _ in range(steps):
        for run in probe_forwards(policy)["features"]:
            run(obs, actions)
        for opt in optimizers:
            opt.zero_grad()
        sum((p * torch.randn(p.shape, generator=gen)).sum() for p in params).backward()
        for opt in optimizers:
            opt.step()


def probe(model) -> tuple[torch.Tensor, torch.Tensor]:
    model.observation_space.seed(0)
    model.action_space.seed(0)
    obs = np.stack([model.observation_space.sample() for _ in range(16)])
    actions = np.stack([model.action_space.sample() for _ in range(16)])
    return torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(actions, dtype=torch.float32)


@pytest.mark.parametrize("how", ["deepcopy", "torch.save"])
@pytest.mark.parametrize("name", list(METHODS))
@pytest.mark.parametrize("algo", list(ALGOS))
def test_a_copied_policy_keeps_its_method_for_every_family(algo, name, how):
    family = ALGOS[algo][1]
    model = build(algo, getattr(syre_rl, f"Method{family}Policy"), method=name, method_kwargs=ACTIVE[name])
    policy = model.policy
    obs, actions = probe(model)
    exercise(policy, obs, actions, 2, seed=0)
    twin = copied(policy, how)
    assert all(m.module is twin for m in twin.methods.values())
    assert {id(m.optimizer) for m in twin.methods.values()} <= {id(o) for o in twin._optimizers()}
    before = snapshot(policy, policy.methods.values())
    exercise(twin, obs, actions, 3, seed=1)
    assert same(snapshot(policy, policy.methods.values()), before)
    exercise(policy, obs, actions, 3, seed=1)
    assert same(snapshot(twin, twin.methods.values()), snapshot(policy, policy.methods.values()))
    if name in ("syre", "l2-init"):  # after a step, the copy decays toward the same anchors as the original
        for target, method in twin.methods.items():
            assert same(method.anchors(), policy.methods[target].anchors())
    if name != "vanilla":
        plain = copied(policy, how)
        for method in plain.methods.values():
            method.detach()
        exercise(plain, obs, actions, 3, seed=2)
        exercise(policy, obs, actions, 3, seed=2)
        assert not all(torch.equal(a, b) for a, b in zip(plain.parameters(), policy.parameters()))
