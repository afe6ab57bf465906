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
parameter. The default ``scale = 0.01`` sits about one order of magnitude below the usual init scale
``1/sqrt(fan_in)`` (the paper's recommendation); larger scales (up to ~0.2 reported harmless) separate units
faster. There is no default ``gamma``: it is the decay strength and belongs to the experiment (RL: ~1e-3,
the L2 strength Dohare et al. used; the paper sweeps 0.1 .. 10 for supervised nets).

Anchors (and ``D``) are registered as buffers ``<param>_syre_anchor`` (and ``<param>_syre_d``) on the module
that owns each parameter, so they are in ``state_dict()`` and follow ``.to(device)``. To restore a saved
model, attach syre to a fresh module first, then ``load_state_dict`` (the saved anchors overwrite the drawn).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import torch
from torch import nn

DEFAULT_SCALE = 0.01
ANCHOR_SUFFIX = "_syre_anchor"
D_SUFFIX = "_syre_d"
# Layers whose weights and biases syre covers by default. Normalisation layers are left alone: their affine
# parameters have no permutation symmetry of their own and decaying a scale toward ~0 would disable them.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)


def default_syre_params(module: nn.Module) -> list[str]:
    """Names (as in ``module.named_parameters()``) of the weights and biases of every Linear/Conv layer.

    :param module: the network
    :return: qualified parameter names, in registration order
    """
    names = []
    for prefix, sub in module.named_modules():
        if isinstance(sub, DEFAULT_LAYER_TYPES):
            names += [f"{prefix}.{n}" if prefix else n for n, _ in sub.named_parameters(recurse=False)]
    return names


def _fan_in(owner: nn.Module, param: torch.Tensor) -> int:
    """fan_in of a weight (its own), or of a bias (the owning layer's weight); 1 when there is none."""
    weight = getattr(owner, "weight", None)
    ref = param if param.dim() >= 2 else weight
    if not isinstance(ref, torch.Tensor) or ref.dim() < 2:
        return 1
    return ref.shape[1] * math.prod(ref.shape[2:])


def _generator(seed: int, name: str) -> torch.Generator:
    # One stream per (seed, parameter name): a parameter's anchor does not depend on which others are chosen.
    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{name}".encode()))


class Syre:
    """Handle of syre attached to a module and its optimizer (made by :func:`attach_syre`).

    :ivar names: qualified names of the parameters under syre
    :ivar gamma, scale, ar_eps, decoupled, seed: the settings it was attached with
    """

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        gamma: float,
        scale: float = DEFAULT_SCALE,
        ar_eps: float = 0.0,
        decoupled: bool = False,
        seed: int = 0,
        params: Iterable[str] | None = None,
    ):
        check_syre_settings(gamma=gamma, scale=scale, ar_eps=ar_eps)
        self.gamma, self.scale, self.ar_eps = float(gamma), float(scale), float(ar_eps)
        self.decoupled, self.seed = bool(decoupled), int(seed)
        self.names = list(default_syre_params(module) if params is None else params)
        self._module = module
        self._slots = self._resolve(module, optimizer, self.names)
        with torch.no_grad():
            for name, (owner, pname) in zip(self.names, self._slots):
                p = getattr(owner, pname)
                gen = _generator(self.seed, name)
                sigma = self.scale / math.sqrt(_fan_in(owner, p))
                anchor = torch.randn(p.shape, generator=gen, dtype=p.dtype) * sigma
                owner.register_buffer(pname + ANCHOR_SUFFIX, anchor.to(p.device))
                if self.ar_eps > 0:
                    d = 1 + self.ar_eps * (2 * torch.rand(p.shape, generator=gen, dtype=p.dtype) - 1)
                    owner.register_buffer(pname + D_SUFFIX, d.to(p.device))
                p.add_(getattr(owner, pname + ANCHOR_SUFFIX))
        self._hook = optimizer.register_step_pre_hook(self._before_step)

    @staticmethod
    def _resolve(module, optimizer, names) -> list[tuple[nn.Module, str]]:
        params = dict(module.named_parameters())
        unknown = [n for n in names if n not in params]
        if unknown:
            raise ValueError(f"unknown parameter name(s) {unknown}; valid: {sorted(params)}")
        if len(set(names)) != len(names):
            raise ValueError(f"parameter names repeat: {names}")
        in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [n for n in names if id(params[n]) not in in_optimizer]
        if missing:
            raise ValueError(f"parameter(s) {missing} are not in the optimizer, so syre could never decay them")
        slots = []
        for name in names:
            prefix, _, pname = name.rpartition(".")
            owner = module.get_submodule(prefix)
            if hasattr(owner, pname + ANCHOR_SUFFIX):
                raise ValueError(f"parameter {name!r} already has syre attached; detach it first")
            slots.append((owner, pname))
        return slots

    # The tensors are looked up on every call: `.to(device)` replaces buffers, so references would go stale.
    def params(self) -> list[nn.Parameter]:
        """The parameters under syre (effective weights ``phi = theta + theta0``)."""
        return [getattr(owner, pname) for owner, pname in self._slots]

    def anchors(self) -> list[torch.Tensor]:
        """The fixed anchors ``theta0``, one per parameter in :attr:`names`."""
        return [getattr(owner, pname + ANCHOR_SUFFIX) for owner, pname in self._slots]

    def diagonals(self) -> list[torch.Tensor] | None:
        """syre-ar's fixed diagonals ``D``, or None for plain syre (``D = 1``)."""
        if self.ar_eps == 0:
            return None
        return [getattr(owner, pname + D_SUFFIX) for owner, pname in self._slots]

    @torch.no_grad()
    def learned(self) -> list[torch.Tensor]:
        """The learned part ``theta = phi - theta0`` of each parameter (new tensors)."""
        return [p - a for p, a in zip(self.params(), self.anchors())]

    @torch.no_grad()
    def penalty(self) -> float:
        """``gamma/2 * sum D (p - theta0)^2``: the term whose gradient the coupled decay adds."""
        ds = self.diagonals() or [None] * len(self.names)
        total = sum(float((t * t if d is None else d * t * t).sum()) for t, d in zip(self.learned(), ds))
        return 0.5 * self.gamma * total

    @torch.no_grad()
    def anchor_distance(self) -> float:
        """Root mean square of ``p - theta0`` over all scalars under syre."""
        learned = self.learned()
        return math.sqrt(sum(float((t * t).sum()) for t in learned) / max(1, sum(t.numel() for t in learned)))

    @torch.no_grad()
    def _before_step(self, optimizer: torch.optim.Optimizer, args, kwargs) -> None:
        if self.gamma == 0:
            return
        params, anchors, ds = self.params(), self.anchors(), self.diagonals()
        live = [i for i, p in enumerate(params) if p.grad is not None]  # optimizers skip grad-less params
        if not live:
            return
        if self.decoupled:
            lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
            for i in live:
                p, a, shrink = params[i], anchors[i], lr_of[id(params[i])] * self.gamma
                if ds is None:  # (p - a) * (1 - lr*gamma) + a: exactly AdamW's p * (1 - lr*gamma) when a = 0
                    p.sub_(a).mul_(1 - shrink).add_(a)
                else:
                    p.addcmul_(ds[i], p - a, value=-shrink)
            return
        grads = [params[i].grad for i in live]
        if ds is None:  # grad + gamma*p - gamma*a: exactly Adam's grad + gamma*p when a = 0
            torch._foreach_add_(grads, [params[i] for i in live], alpha=self.gamma)
            torch._foreach_add_(grads, [anchors[i] for i in live], alpha=-self.gamma)
        else:
            diffs = torch._foreach_sub([params[i] for i in live], [anchors[i] for i in live])
            torch._foreach_addcmul_(grads, [ds[i] for i in live], diffs, value=self.gamma)

    def detach(self) -> None:
        """Stop decaying and remove the anchor buffers; the parameters keep their effective values."""
        self._hook.remove()
        for owner, pname in self._slots:
            for suffix in (ANCHOR_SUFFIX, D_SUFFIX):
                owner._buffers.pop(pname + suffix, None)

    def __repr__(self) -> str:
        return (
            f"Syre(gamma={self.gamma}, scale={self.scale}, ar_eps={self.ar_eps}, decoupled={self.decoupled}, "
            f"seed={self.seed}, params={len(self.names)})"
        )


def check_syre_settings(*, gamma: float, scale: float, ar_eps: float) -> None:
    """Raise ValueError naming the first setting outside its valid range."""
    for name, value in (("gamma", gamma), ("scale", scale)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"syre {name} must be a finite number >= 0, got {value!r}")
    if not (isinstance(ar_eps, (int, float)) and 0 <= ar_eps < 1):
        raise ValueError(f"syre ar_eps must be in [0, 1) (0 = plain syre), got {ar_eps!r}")


def attach_syre(
    module: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    gamma: float,
    scale: float = DEFAULT_SCALE,
    ar_eps: float = 0.0,
    decoupled: bool = False,
    seed: int = 0,
    params: Iterable[str] | None = None,
) -> Syre:
    """Apply syre to ``module`` trained by ``optimizer``: shift each chosen parameter by its anchor once, then
    decay it toward the anchor at every ``optimizer.step()``.

    :param module: any network; anchors become buffers of the modules that own the parameters
    :param optimizer: any ``torch.optim`` optimizer holding the chosen parameters (give it ``weight_decay=0``)
    :param gamma: decay strength (>= 0), same units as ``torch.optim.Adam``'s ``weight_decay``
    :param scale: anchor scale ``c`` (>= 0); anchor std is ``c / sqrt(fan_in)`` per layer. Default 0.01
    :param ar_eps: syre-ar: ``D_ii ~ U(1 - ar_eps, 1 + ar_eps)``, in [0, 1); 0 = plain syre
    :param decoupled: AdamW-style decay ``p -= lr * gamma * D * (p - theta0)`` instead of adding to the gradient
    :param seed: anchors (and D) are drawn from streams seeded by ``(seed, parameter name)``
    :param params: qualified names of the parameters to cover; default: weights and biases of every Linear and
        Conv layer (:func:`default_syre_params`)
    :return: a :class:`Syre` handle (statistics, ``detach()``)
    """
    return Syre(module, optimizer, gamma=gamma, scale=scale, ar_eps=ar_eps, decoupled=decoupled, seed=seed,
                params=params)
