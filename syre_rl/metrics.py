"""Plasticity metrics: pure functions of activations and weights, plus one probe that measures every hidden
layer of a network (shared by the RL callback and the supervised harness).

Activations are matrices ``(examples, units)``: the hidden units' outputs on a probe batch. Fractions are in
[0, 1] so that layers of different widths compare.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import cast

import torch

from syre_rl.base import HiddenLayer, Method


def dead_units(acts: torch.Tensor) -> float:
    """Fraction of units that never fire: whose output is positive on no example. For ReLUs, those that output 0
    on every example (dead ReLUs); for leaky ReLUs, those whose input is never positive (stuck in the small linear
    part, where a ReLU would be dead). A measure for the ReLU family: a tanh, ELU or GELU unit whose output is
    always negative counts as dead here though it still passes gradient.

    :param acts: activations, shape (examples, units)
    """
    return float((acts <= 0).all(dim=0).double().mean())


def dormant_ratio(acts: torch.Tensor, tau: float = 0.025) -> float:
    """ReDo's dormant fraction: unit score = mean |activation| / layer mean of that; dormant if score <= tau.
    A layer whose activations are all 0 is wholly dormant.

    :param acts: activations, shape (examples, units)
    :param tau: threshold (0.025 or 0.1 in the literature)
    """
    mean_abs = acts.abs().mean(dim=0)
    if float(mean_abs.mean()) == 0:
        return 1.0
    return float((mean_abs / mean_abs.mean() <= tau).double().mean())


def _singular_values(acts: torch.Tensor) -> torch.Tensor | None:
    """The singular values, or None when the activations hold a NaN or an infinity (there are none then)."""
    acts = acts.double()
    return torch.linalg.svdvals(acts) if bool(torch.isfinite(acts).all()) else None


def effective_rank(acts: torch.Tensor) -> float:
    """exp(entropy of the singular values normalised to sum 1) (Roy & Vetterli 2007); 0 for a zero matrix; NaN
    when the activations are not finite.

    :param acts: activations, shape (examples, units)
    """
    s = _singular_values(acts)
    if s is None:
        return float("nan")
    if float(s.sum()) == 0:
        return 0.0
    p = s / s.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def approximate_rank(acts: torch.Tensor, threshold: float = 0.99) -> float:
    """Number of largest singular values needed to cover ``threshold`` of their sum: the "stable rank" of the
    plasticity literature (Kumar et al., Dohare et al.), not the textbook ``||A||_F^2 / ||A||_2^2``; NaN when the
    activations are not finite.

    :param acts: activations, shape (examples, units)
    :param threshold: fraction of the singular-value sum to cover
    """
    s = _singular_values(acts)
    if s is None:
        return float("nan")
    if float(s.sum()) == 0:
        return 0
    covered = torch.cumsum(s, 0) / s.sum()
    return int((covered < threshold - 1e-12).sum()) + 1


def weight_magnitude(weights: torch.Tensor | Iterable[torch.Tensor]) -> float:
    """Mean |w| over all scalars of the given tensors."""
    ts = [weights] if isinstance(weights, torch.Tensor) else list(weights)
    return float(sum(t.abs().sum() for t in ts) / max(1, sum(t.numel() for t in ts)))


def weight_change(before: torch.Tensor | Iterable[torch.Tensor], after: torch.Tensor | Iterable[torch.Tensor]) -> float:
    """Mean |after - before| over all scalars (the size of the change between two measurements)."""
    b = [before] if isinstance(before, torch.Tensor) else list(before)
    a = [after] if isinstance(after, torch.Tensor) else list(after)
    return weight_magnitude([x - y for x, y in zip(a, b)])


def gradient_norm(params: Iterable[torch.Tensor]) -> float:
    """Global L2 norm of the ``.grad`` of the given parameters (those without a gradient count as 0)."""
    return global_norm([p.grad for p in params if p.grad is not None])


def global_norm(tensors: Sequence[torch.Tensor]) -> float:
    """L2 norm of all scalars of ``tensors`` together (0 for none), in float64."""
    if not tensors:
        return 0.0
    squares = cast(torch.Tensor, sum((t.double() ** 2).sum() for t in tensors))  # a tensor: there is one at least
    return float(torch.sqrt(squares))


def duplicate_units(weight: torch.Tensor, bias: torch.Tensor | None = None, threshold: float = 0.99) -> float:
    """Fraction of units whose incoming weight vector (with its bias) has cosine similarity above
    ``threshold`` with another unit's in the same layer: units in a permutation-symmetric state. All-zero
    vectors are duplicates of each other.

    :param weight: incoming weights, shape (units, inputs)
    :param bias: biases, shape (units,), or None
    :param threshold: cosine similarity above which two units count as copies
    """
    w = weight.detach().double().reshape(weight.shape[0], -1)
    if bias is not None:
        w = torch.cat([w, bias.detach().double()[:, None]], dim=1)
    norms = w.norm(dim=1)
    zero = norms == 0
    unit = w / norms.clamp_min(1e-300)[:, None]
    cos = unit @ unit.T
    cos.fill_diagonal_(-2.0)
    dup = (cos > threshold).any(dim=1) & ~zero
    if int(zero.sum()) > 1:
        dup |= zero
    return float(dup.double().mean())


def hidden_activations(
    layers: Sequence[HiddenLayer], forward: Callable[[], object], batched: bool = False
) -> list[torch.Tensor]:
    """Run ``forward()`` once and return, per hidden layer, its units' activations: the input of the layer's
    outgoing layer (so any activation function is seen as it is), as (rows, units) (:meth:`HiddenLayer.units`:
    a conv layer's rows are every example and position); (members, rows, units) on a ``batched`` network."""
    captured: list[torch.Tensor | None] = [None] * len(layers)

    def recorder(i: int):
        def record(module, inputs):
            captured[i] = layers[i].units(inputs[0].detach(), batched)

        return record

    hooks = [layer.outgoing.register_forward_pre_hook(recorder(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            forward()
    finally:
        for hook in hooks:
            hook.remove()
    missing = [layers[i].name for i, c in enumerate(captured) if c is None]
    if missing:
        raise RuntimeError(f"forward() did not reach the outgoing layer of {missing}")
    return captured  # type: ignore[return-value]


class LayerProbe:
    """Measures every hidden layer of a network on a probe batch: activation metrics (effective_rank,
    approximate_rank, dead_units, dormant_ratio), weight metrics of the incoming layer (weight_magnitude,
    weight_change since the previous measurement, duplicate_units), duplicates on the learned part
    (``duplicate_units_learned``: weights minus the random offsets) when the network's method added random
    offsets (syre, syre-ar, jitter: ``Method.drawn_offsets``), and the
    gradient norm of the covered parameters. On K networks batched as one (:mod:`syre_rl.members`), each
    member's (:meth:`measure_members`).

    :param layers: the hidden layers (:func:`syre_rl.base.hidden_layers`)
    :param method: the method acting on these layers, for its random offsets (None: skipped)
    :param tau: dormancy threshold
    :param duplicate_threshold: cosine threshold of :func:`duplicate_units`
    :param batched: the layers hold K members along a leading axis
    """

    def __init__(
        self,
        layers: Sequence[HiddenLayer],
        method: Method | None = None,
        tau: float = 0.025,
        duplicate_threshold: float = 0.99,
        batched: bool = False,
    ):
        self.layers, self.method, self.tau, self.duplicate_threshold = list(layers), method, tau, duplicate_threshold
        self.batched = batched
        # the incoming weights at the previous measurement, per layer (with the member axis on a batch)
        self._previous: list[torch.Tensor] | None = None

    def _offset_of(self) -> dict[int, torch.Tensor]:
        if self.method is None:
            return {}
        offsets = self.method.drawn_offsets()
        return {id(p): a for p, a in zip(self.method.params(), offsets)} if offsets else {}

    def measure(self, forward: Callable[[], object]) -> dict[str, float]:
        """Run ``forward()`` (which must pass the probe batch through the network) and measure.

        :return: ``layer<i>/<metric>`` for every hidden layer i, plus ``gradient_norm``
        """
        if self.batched:
            raise ValueError("a probe of a batch of networks measures each member: use measure_members")
        return self.measure_members(forward)[0]

    @torch.no_grad()
    def measure_members(self, forward: Callable[[], object]) -> list[dict[str, float]]:
        """:meth:`measure` for each member of a batch of networks (one member on a plain network), from one
        ``forward()`` that passes each member's probe batch through it."""
        acts = hidden_activations(self.layers, forward, self.batched)
        offset_of = self._offset_of()
        linears = [layer.incoming for layer in self.layers] + [self.layers[-1].outgoing]
        params = [p for lin in linears for p in (lin.weight, lin.bias) if p is not None]
        members = acts[0].shape[0] if self.batched else 1

        def part(t: torch.Tensor, k: int) -> torch.Tensor:
            return t[k] if self.batched else t

        out: list[dict[str, float]] = []
        for k in range(members):
            figures: dict[str, float] = {}
            for i, (layer, a) in enumerate(zip(self.layers, acts)):
                a, w = part(a, k), part(layer.incoming.weight, k)
                b = None if layer.incoming.bias is None else part(layer.incoming.bias, k)
                key = f"layer{i}/"
                figures[key + "effective_rank"] = effective_rank(a)
                figures[key + "approximate_rank"] = float(approximate_rank(a))
                figures[key + "dead_units"] = dead_units(a)
                figures[key + "dormant_ratio"] = dormant_ratio(a, self.tau)
                figures[key + "weight_magnitude"] = weight_magnitude(w)
                figures[key + "duplicate_units"] = duplicate_units(w, b, self.duplicate_threshold)
                if id(layer.incoming.weight) in offset_of:
                    bias_offset = offset_of.get(id(layer.incoming.bias))
                    lb = b if b is None or bias_offset is None else b - part(bias_offset, k)
                    figures[key + "duplicate_units_learned"] = duplicate_units(
                        w - part(offset_of[id(layer.incoming.weight)], k), lb, self.duplicate_threshold
                    )
                if self._previous is not None:
                    figures[key + "weight_change"] = weight_change(part(self._previous[i], k), w)
            figures["gradient_norm"] = global_norm([part(p.grad, k) for p in params if p.grad is not None])
            out.append(figures)
        self._previous = [layer.incoming.weight.detach().clone() for layer in self.layers]
        return out
