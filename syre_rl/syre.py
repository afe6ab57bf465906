"""syre: symmetry removal by decay toward a fixed random anchor (Ziyin, Xu & Chuang, ICLR 2025).

Loss symmetries (permuting hidden units, rescaling, rotations) create *symmetric states*: subspaces that
gradient descent never leaves (identical units, dead units, collapsed ranks). Weight decay pulls every
parameter toward 0, which lies inside all of them. syre trains

    L(theta + theta0) + gamma/2 * theta^T D theta

with a fixed random offset ``theta0`` (one Gaussian draw per scalar, never trained) and, for syre-ar, a fixed
random diagonal ``D_ii ~ U(1 - ar_eps, 1 + ar_eps)`` (``ar_eps = 0`` gives ``D = 1``, plain syre).

**Anchor form (what this module does).** Put ``phi = theta + theta0``. The objective becomes
``L(phi) + gamma/2 * (phi - theta0)^T D (phi - theta0)``: an ordinary network whose parameters start at
``init + theta0`` and decay toward the *anchor* ``theta0`` instead of toward 0. Gradients in ``phi`` equal
gradients in ``theta``, so for any optimizer the iterates are those of the literal objective shifted by
``theta0``. The forward pass is untouched (no inference cost) and saved weights are the effective weights.

At every ``optimizer.step()`` a pre-step hook applies the decay, in one of two conventions:

* coupled (default, the convention of ``torch.optim.Adam(weight_decay=gamma)``):
  ``grad += gamma * D * (p - theta0)``;
* decoupled (the convention of ``torch.optim.AdamW(weight_decay=gamma)``):
  ``p -= lr * gamma * D * (p - theta0)`` before the optimizer's own update.

With ``scale = 0`` (anchor 0) and ``ar_eps = 0`` both are bit-identical to the optimizer's own weight decay.

**Anchor scale.** ``theta0 ~ N(0, (scale / sqrt(fan_in))^2)`` per layer, ``fan_in`` of the layer that owns the
parameter. The default ``scale = 1.0`` (anchor std equal to the usual init scale ``1/sqrt(fan_in)``, absolute
std 0.03-0.06 for widths 300-784, inside the paper's harmless range sigma0 < ~0.2). ``gamma`` is the decay
strength: :class:`SyreSettings` defaults to 1e-3 (the L2 strength Dohare et al. used for PPO), :func:`attach_syre`
asks for it explicitly (the paper sweeps 0.1 .. 10 for supervised nets).

:class:`Syre` is a :class:`syre_rl.base.Method` whose settings are one typed object, :class:`SyreSettings`: the
L2, L2-init and jitter baselines (``syre_rl.methods``) are the same mechanism with other offsets
(:meth:`Syre.offsets`). Anchors (and ``D``) are registered as buffers ``<param>_syre_anchor`` (and
``<param>_syre_d``) on the module that owns each parameter, so they are in ``state_dict()`` and follow
``.to(device)``. To restore a saved model, attach syre to a fresh module first, then ``load_state_dict`` (the
saved anchors overwrite the drawn).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast

import torch
from torch import nn

from syre_rl.base import Method, named_generator
from syre_rl.settings import Settings, check_range

DEFAULT_SCALE = 1.0  # from the permuted-MNIST sweep, see the module docstring
DEFAULT_GAMMA = 1e-3  # the L2 strength Dohare et al. (2024) found to keep PPO plastic; experiments set their own
ANCHOR_SUFFIX = "_syre_anchor"
D_SUFFIX = "_syre_d"


def _fan_in(owner: nn.Module, attr: str, shape: torch.Size, member_shape: Callable[[torch.Tensor], torch.Size]) -> int:
    """fan_in of a weight of (one member's) ``shape`` (its own), or of a bias (its layer's matching weight:
    ``bias`` -> ``weight``, an LSTM's ``bias_ih_l0`` -> ``weight_ih_l0``); 1 when there is none."""
    weight = getattr(owner, attr.replace("bias", "weight", 1), None)
    ref = shape if len(shape) >= 2 else member_shape(weight) if isinstance(weight, torch.Tensor) else None
    if ref is None or len(ref) < 2:
        return 1
    return ref[1] * math.prod(ref[2:])


@dataclass(frozen=True)
class DecaySettings(Settings):
    """Settings of the decay family's plainest member, L2 (no random offset: ``scale``, ``ar_eps`` and ``seed``
    are fixed here and become settings in :class:`SyreSettings`).

    :param gamma: decay strength (>= 0), same units as ``torch.optim.Adam``'s ``weight_decay``. Default 1e-3
    :param decoupled: AdamW-style decay ``p -= lr * gamma * D * (p - theta0)`` instead of adding to the gradient
    """

    owner = "l2"
    gamma: float = DEFAULT_GAMMA
    decoupled: bool = False

    # Read-only here, so that a subclass (SyreSettings) may make them settings
    @property
    def scale(self) -> float:
        return 0.0

    @property
    def ar_eps(self) -> float:
        return 0.0

    @property
    def seed(self) -> int:
        return 0

    def check(self) -> None:
        check_range(self.owner, "gamma", self.gamma)


@dataclass(frozen=True)
class SyreSettings(DecaySettings):
    """Settings of :class:`Syre`: ``gamma`` and ``decoupled`` as in :class:`DecaySettings`, and

    :param scale: anchor scale ``c`` (>= 0); anchor std is ``c / sqrt(fan_in)`` per layer. Default 1.0
    :param ar_eps: syre-ar: ``D_ii ~ U(1 - ar_eps, 1 + ar_eps)``, in [0, 1); 0 = plain syre
    :param seed: anchors (and D) are drawn from streams seeded by ``(seed, parameter name)``
    """

    owner = "syre"
    scale: float = DEFAULT_SCALE
    ar_eps: float = 0.0
    seed: int = 0

    def check(self) -> None:
        super().check()
        check_range(self.owner, "scale", self.scale)
        check_range(self.owner, "ar_eps", self.ar_eps, 0.0, 1.0, high_open=True)


class Syre(Method):
    """syre: shift each parameter by a fixed random ``theta0`` once, then decay it toward ``theta0``.

    :param settings: a :class:`SyreSettings`, or its fields as keywords (``Syre(gamma=1e-2, scale=1.0)``)
    """

    name = "syre"
    # the decay family (L2, L2-init, jitter: syre_rl.methods) takes other DecaySettings
    Settings: ClassVar[type[DecaySettings]] = SyreSettings
    settings: DecaySettings
    PER_MEMBER = ("gamma", "scale", "ar_eps")  # a batch is all syre or all syre-ar (ar_eps > 0): see _setup

    def draw(self, name: str, owner: nn.Module, p: torch.Tensor) -> torch.Tensor:
        """The random offset ``theta0 ~ N(0, (scale / sqrt(fan_in))^2)`` of parameter ``name`` (on CPU), each
        member's from its own seed's stream."""
        shape = self.member_shape(p)
        fan_in = _fan_in(owner, name.rpartition(".")[2], shape, self.member_shape)
        return self.per_member(
            lambda member: (
                torch.randn(shape, generator=named_generator(member.seed, name), dtype=p.dtype)
                * (member.scale / math.sqrt(fan_in))
            )
        )

    def offsets(self, name: str, owner: nn.Module, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(shift, anchor)`` of one parameter: syre shifts it by ``theta0`` and decays it toward ``theta0``."""
        theta0 = self.draw(name, owner, p)
        return theta0, theta0

    def _setup(self) -> None:
        if len({m.ar_eps > 0 for m in self.member_settings}) > 1:
            raise ValueError(
                f"{self.name}: the members of one batch are all syre-ar (ar_eps > 0) or all syre (ar_eps = 0); got "
                f"ar_eps {[m.ar_eps for m in self.member_settings]}"
            )
        self._refuse_optimizer_decay()
        taken = [n for n, (owner, attr) in zip(self.names, self._slots) if hasattr(owner, attr + ANCHOR_SUFFIX)]
        if taken:
            raise ValueError(f"parameter(s) {taken} already have an anchor method attached; detach it first")
        with torch.no_grad():
            for name, (owner, attr) in zip(self.names, self._slots):
                p = getattr(owner, attr)
                shift, anchor = self.offsets(name, owner, p)
                owner.register_buffer(attr + ANCHOR_SUFFIX, anchor.to(p.device))
                if self.settings.ar_eps > 0:
                    owner.register_buffer(attr + D_SUFFIX, self._draw_d(name, p).to(p.device))
                p.add_(shift.to(p.device))

    def _draw_d(self, name: str, p: torch.Tensor) -> torch.Tensor:
        """syre-ar's diagonal ``D ~ U(1 - ar_eps, 1 + ar_eps)`` of parameter ``name``, each member's its own."""
        shape = self.member_shape(p)

        def one(member: DecaySettings) -> torch.Tensor:
            gen = named_generator(member.seed, name, ":D")
            return 1 + member.ar_eps * (2 * torch.rand(shape, generator=gen, dtype=p.dtype) - 1)

        return self.per_member(one)

    def _refuse_optimizer_decay(self) -> None:
        """The optimizer's own ``weight_decay`` on a covered parameter would decay it a second time, toward 0."""
        assert self.optimizer is not None
        covered = {id(getattr(owner, attr)): name for name, (owner, attr) in zip(self.names, self._slots)}
        for i, group in enumerate(self.optimizer.param_groups):
            decay = group.get("weight_decay") or 0
            names = [covered[id(p)] for p in group["params"] if id(p) in covered]
            if decay > 0 and names:
                raise ValueError(
                    f"{self.name}: the optimizer's param group {i} has weight_decay={decay:g}, which would decay "
                    f"{', '.join(names[:3])}{' ...' if len(names) > 3 else ''} a second time, toward 0; give the "
                    f"optimizer weight_decay=0 ({self.name} brings its own decay; AdamW's default is 0.01)"
                )

    def drawn_offsets(self) -> list[torch.Tensor] | None:
        """The random offsets ``theta0`` the method added to the parameters (syre: its anchors), for measures on
        the learned part (weights minus offsets); None when it added none."""
        return self.anchors() if any(m.scale > 0 for m in self.member_settings) else None

    def anchors(self) -> list[torch.Tensor]:
        """The fixed anchors ``theta0``, one per parameter in :attr:`names`."""
        return [getattr(owner, attr + ANCHOR_SUFFIX) for owner, attr in self._slots]

    def diagonals(self) -> list[torch.Tensor] | None:
        """syre-ar's fixed diagonals ``D``, or None for plain syre (``D = 1``)."""
        if self.settings.ar_eps == 0:
            return None
        return [getattr(owner, attr + D_SUFFIX) for owner, attr in self._slots]

    @torch.no_grad()
    def learned(self, member: int | None = None) -> list[torch.Tensor]:
        """The learned part ``theta = phi - theta0`` of each parameter (new tensors; ``member``'s on a batch)."""
        k = self.member_index(member)
        return [self.stacked(p)[k] - self.stacked(a)[k] for p, a in zip(self.params(), self.anchors())]

    @torch.no_grad()
    def penalty(self, member: int | None = None) -> float:
        """``gamma/2 * sum D (p - theta0)^2``: the term whose gradient the coupled decay adds."""
        k = self.member_index(member)
        ds: Sequence[torch.Tensor | None] = [self.stacked(d)[k] for d in self.diagonals() or []] or [None] * len(
            self.names
        )
        total = sum(float((t * t if d is None else d * t * t).sum()) for t, d in zip(self.learned(member), ds))
        return 0.5 * self.member_settings[k].gamma * total

    @torch.no_grad()
    def anchor_distance(self, member: int | None = None) -> float:
        """Root mean square of ``p - theta0`` over all scalars under the method."""
        learned = self.learned(member)
        return math.sqrt(sum(float((t * t).sum()) for t in learned) / max(1, sum(t.numel() for t in learned)))

    def stats(self, member: int | None = None) -> dict[str, float]:
        return {"penalty": self.penalty(member), "anchor_distance": self.anchor_distance(member)}

    def _tensors(self) -> tuple[list[nn.Parameter], list[torch.Tensor], list[torch.Tensor] | None]:
        """(params, anchors, diagonals), cached for the hot path. `.to(device)` replaces all buffers at once,
        so the first anchor's identity tells whether the cache is current (load_state_dict copies in place)."""
        owner, attr = self._slots[0]
        cached = getattr(self, "_cache", None)
        if cached is None or owner._buffers.get(attr + ANCHOR_SUFFIX) is not cached[1][0]:
            self._cache = cached = (self.params(), self.anchors(), self.diagonals())
        return cached

    @torch.no_grad()
    def before_step(self) -> None:
        if all(m.gamma == 0 for m in self.member_settings):
            return
        params, anchors, ds = self._tensors()
        live = [i for i, p in enumerate(params) if p.grad is not None]  # optimizers skip grad-less params
        if not live:
            return
        gamma = self.along_members("gamma", params[live[0]])
        if self.settings.decoupled:
            lr_of = {id(p): group["lr"] for group in self.optimizer.param_groups for p in group["params"]}
            for i in live:
                p, a = params[i], anchors[i]
                own = gamma.view(-1, *[1] * (p.dim() - 1)) if isinstance(gamma, torch.Tensor) else gamma
                shrink = lr_of[id(p)] * own
                if ds is None:  # (p - a) * (1 - lr*gamma) + a: exactly AdamW's p * (1 - lr*gamma) when a = 0
                    p.sub_(a).mul_(1 - shrink).add_(a)
                elif not isinstance(shrink, torch.Tensor):
                    p.addcmul_(ds[i], p - a, value=-shrink)
                else:
                    p.sub_(ds[i] * (p - a) * shrink)
            return
        grads = cast("list[torch.Tensor]", [params[i].grad for i in live])  # live: only params with a gradient
        # p - a first, so the decay is exactly 0 where p == a (and exactly Adam's grad + gamma*p when a = 0)
        diffs = torch._foreach_sub([params[i] for i in live], [anchors[i] for i in live])
        if isinstance(gamma, torch.Tensor):  # members of a batch with gammas of their own: each its own
            gammas = [gamma.view(-1, *[1] * (params[i].dim() - 1)) for i in live]
            if ds is not None:
                diffs = torch._foreach_mul(diffs, [ds[i] for i in live])
            torch._foreach_add_(grads, torch._foreach_mul(diffs, gammas))
        elif ds is None:
            torch._foreach_add_(grads, diffs, alpha=gamma)
        else:
            torch._foreach_addcmul_(grads, [ds[i] for i in live], diffs, value=gamma)

    def _teardown(self) -> None:
        """Remove the anchor buffers; the parameters keep their effective values."""
        for owner, attr in self._slots:
            for suffix in (ANCHOR_SUFFIX, D_SUFFIX):
                owner._buffers.pop(attr + suffix, None)


def attach_syre(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    gamma: float,
    params: Iterable[str] | None = None,
    **settings: Any,
) -> Syre:
    """Apply syre to ``module`` trained by ``optimizer``: shift each chosen parameter by its anchor once, then
    decay it toward the anchor at every ``optimizer.step()``.

    :param module: any network; anchors become buffers of the modules that own the parameters
    :param optimizer: any ``torch.optim`` optimizer holding the chosen parameters, with ``weight_decay=0`` on them
        (an optimizer that decays them already is refused: they would be decayed twice)
    :param gamma: decay strength, asked for explicitly (the experiment's choice)
    :param params: qualified names of the parameters to cover; default: weights and biases of every Linear and
        Conv layer (:func:`syre_rl.base.default_params`)
    :param settings: ``scale``, ``ar_eps``, ``decoupled``, ``seed``: see :class:`SyreSettings` (defaults there)
    :return: the attached :class:`Syre` (statistics, ``detach()``)
    """
    return Syre(gamma=gamma, **settings).attach(module, optimizer, params)
