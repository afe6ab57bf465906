"""Plasticity metrics on constructed inputs whose answers are known."""

import math

import pytest
import torch
from torch import nn

from syre_rl.base import hidden_layers
from syre_rl.metrics import (
    LayerProbe,
    approximate_rank,
    dead_units,
    dormant_ratio,
    duplicate_units,
    effective_rank,
    gradient_norm,
    hidden_activations,
    weight_change,
    weight_magnitude,
)
from syre_rl.syre import attach_syre


def test_dead_units_counts_units_zero_on_every_example():
    acts = torch.rand(50, 8) + 0.1
    acts[:, [1, 5]] = 0
    acts[3, 2] = 0  # zero on one example only: alive
    assert dead_units(acts) == 2 / 8


def test_a_leaky_relu_unit_is_dead_when_its_input_is_never_positive():
    pre = torch.randn(200, 6)
    pre[:, [0, 4]] = -pre[:, [0, 4]].abs() - 0.01  # never positive
    pre[7, 4] = 0.3  # positive on one example: alive
    assert dead_units(torch.nn.LeakyReLU(0.1)(pre)) == 1 / 6
    assert dead_units(torch.relu(pre)) == 1 / 6  # the same units as dead ReLUs


def test_dormant_ratio_uses_scores_relative_to_the_layer_mean():
    acts = torch.ones(10, 4)
    acts[:, 0] = 0.01  # mean |a| per unit: 0.01, 1, 1, 1 -> layer mean 0.7525; score 0.0133
    assert dormant_ratio(acts, tau=0.025) == 0.25
    assert dormant_ratio(acts, tau=0.01) == 0.0
    assert dormant_ratio(torch.zeros(5, 3)) == 1.0


def test_effective_rank_of_known_spectra():
    q, _ = torch.linalg.qr(torch.randn(40, 40, dtype=torch.float64))
    for k in (1, 3, 10):
        a = q[:, :k] @ torch.eye(k, 6 + k, dtype=torch.float64) * 2.0  # k equal singular values
        assert effective_rank(a) == pytest.approx(k, rel=1e-9)
    a = q[:, :2] @ torch.diag(torch.tensor([3.0, 1.0], dtype=torch.float64))  # p = (3/4, 1/4)
    assert effective_rank(a) == pytest.approx(math.exp(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25))))
    assert effective_rank(torch.zeros(4, 3)) == 0.0


def test_approximate_rank_covers_99_percent_of_the_singular_value_sum():
    q, _ = torch.linalg.qr(torch.randn(30, 30, dtype=torch.float64))
    s = torch.tensor([50.0, 30.0, 18.5, 1.0, 0.5], dtype=torch.float64)  # cumulative: .5 .8 .985 .995 1
    a = q[:, :5] @ torch.diag(s)
    assert approximate_rank(a) == 4
    assert approximate_rank(a, threshold=0.98) == 3
    assert approximate_rank(torch.ones(10, 6)) == 1  # rank one
    assert approximate_rank(torch.zeros(3, 3)) == 0


def test_duplicate_units_finds_planted_copies_with_and_without_bias():
    torch.manual_seed(0)
    w, b = torch.randn(10, 20), torch.randn(10)
    w[3], b[3] = w[7] * 2.0, b[7] * 2.0  # same direction (with bias): a copy
    w[5], b[5] = w[1], b[1] + 10.0  # same weights, very different bias
    assert duplicate_units(w, b) == 2 / 10
    assert duplicate_units(w) == 4 / 10
    w[8] = w[1] + 0.05 * torch.randn(20)  # near-copy: above 0.99 only at a looser threshold
    assert duplicate_units(w, threshold=0.999) == 4 / 10 and duplicate_units(w, threshold=0.9) == 5 / 10
    z = torch.zeros(4, 3)
    z[0] = 1.0
    assert duplicate_units(z) == 3 / 4  # the three zero vectors are copies of each other


def test_weight_figures():
    a, b = torch.tensor([[1.0, -3.0]]), torch.tensor([2.0, 0.0, -2.0])
    assert weight_magnitude(a) == 2.0 and weight_magnitude([a, b]) == pytest.approx(8 / 5)
    assert weight_change([a, b], [a + 0.5, b]) == pytest.approx(1 / 5)
    p, q = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(1))
    p.grad = torch.tensor([3.0, 0.0])
    q.grad = torch.tensor([4.0])
    assert gradient_norm([p, q, nn.Parameter(torch.zeros(1))]) == 5.0


def test_layer_probe_measures_every_hidden_layer_and_the_learned_part():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 5), nn.Tanh(), nn.Linear(5, 2))
    with torch.no_grad():
        net[0].bias[:3] = -100.0  # three dead ReLUs
        net[2].weight[1] = net[2].weight[0]  # planted copy in layer 1
        net[2].bias[1] = net[2].bias[0]
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    syre = attach_syre(net, opt, gamma=0.1, scale=1.0)
    layers = hidden_layers(net, syre.names)
    assert [layer.name for layer in layers] == ["0", "2"]
    x = torch.randn(64, 6)
    acts = hidden_activations(layers, lambda: net(x))
    assert acts[0].shape == (64, 8) and acts[1].shape == (64, 5)
    assert float(acts[1].abs().max()) <= 1  # tanh outputs: the outgoing layer's input is seen after activation

    probe = LayerProbe(layers, syre)
    first = probe.measure(lambda: net(x))
    assert first["layer0/dead_units"] == 3 / 8
    assert first["layer1/duplicate_units_learned"] == 2 / 5  # the copy is there in weights minus anchors ...
    assert first["layer1/duplicate_units"] == 0.0  # ... while the anchors (scale 1) make the weights differ
    assert "layer0/weight_change" not in first
    with torch.no_grad():
        net[0].weight.add_(0.5)
    second = probe.measure(lambda: net(x))
    assert second["layer0/weight_change"] == pytest.approx(0.5) and second["layer1/weight_change"] == 0.0
    assert 1 <= second["layer1/effective_rank"] <= 5 and second["layer1/approximate_rank"] <= 5
    with pytest.raises(RuntimeError, match=r"did not reach the outgoing layer of \['2'\]"):
        probe.measure(lambda: net[:4](x))  # stops before the last outgoing layer


def test_conv_channels_are_units():
    """A conv hidden layer's activation matrix has every example and position as a row and a channel as a
    column; a dead channel is dead, duplicate filters are duplicates."""
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))
    with torch.no_grad():
        net[0].bias[3] = -100.0  # channel 3 dead
        net[0].weight[1] = net[0].weight[0]  # channels 0 and 1 copies
        net[0].bias[1] = net[0].bias[0]
    layers = hidden_layers(net, [n for n, _ in net.named_parameters()])
    assert len(layers) == 1
    x = torch.randn(5, 1, 7, 7)
    acts = hidden_activations(layers, lambda: net(x))[0]
    assert acts.shape == (5 * 5 * 5, 4)
    out = LayerProbe(layers).measure(lambda: net(x))
    assert out["layer0/dead_units"] == 0.25 and out["layer0/duplicate_units"] == 0.5
    assert out["layer0/effective_rank"] <= 2 + 1e-6  # two copies and a dead channel: 2 distinct channels left
