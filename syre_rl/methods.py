"""Every plasticity method behind one interface (:class:`syre_rl.base.Method`), chosen by name.

| name | what happens around each optimizer step | defaults |
| --- | --- | --- |
| ``vanilla`` | nothing | |
| ``l2`` | coupled decay toward 0: ``grad += gamma * p`` | gamma 1e-3 |
| ``syre`` | shift by a random ``theta0`` once, decay toward it (:mod:`syre_rl.syre`) | gamma 1e-3, scale 1.0 |
| ``syre-ar`` | syre with a random diagonal ``D ~ U(1-eps, 1+eps)`` in the decay | + ar_eps 0.01 |
| ``l2-init`` | decay toward the initial parameters (regenerative regularisation) | gamma 1e-3 |
| ``jitter`` | control: the same shift as syre's anchors once, then decay toward 0 | gamma 1e-3, scale 1.0 |
| ``shrink-perturb`` | after the step ``p <- (1 - shrink) p + noise * N(0, 1)`` | shrink 1e-4, noise 1e-5 |
| ``redo`` | every ``every`` steps re-initialise dormant units (score <= tau) | tau 0.025, every 1000 |
| ``cbp`` | continual backprop: every step replace a fraction of mature, low-utility units | rate 1e-4, maturity 10000 |

The decay family (l2, syre, syre-ar, l2-init, jitter) is one mechanism, :class:`syre_rl.syre.Syre`, with
different ``(shift, anchor)`` offsets; the decay strength ``gamma`` means the same in all of them (torch Adam's
``weight_decay`` units, or AdamW's with ``decoupled=True``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from syre_rl.base import HiddenLayer, Method, hidden_layers, named_generator
from syre_rl.settings import Settings, check_range, did_you_mean
from syre_rl.syre import DEFAULT_SCALE, DecaySettings, Syre, SyreSettings


@dataclass(frozen=True)
class VanillaSettings(Settings):
    """Vanilla takes no settings."""

    owner = "vanilla"


class Vanilla(Method):
    """No intervention: plain training with the optimizer's own settings."""

    name = "vanilla"
    Settings = VanillaSettings


class L2(Syre):
    """Coupled weight decay toward 0 (``decoupled=True``: AdamW-style) on exactly the covered parameters."""

    name = "l2"
    Settings = DecaySettings

    def offsets(self, name, owner, p):
        zero = torch.zeros_like(p, device="cpu")
        return zero, zero


@dataclass(frozen=True)
class SyreARSettings(SyreSettings):
    """:class:`SyreSettings` with ``ar_eps`` in (0, 1), default 0.01."""

    owner = "syre-ar"
    ar_eps: float = 0.01

    def check(self) -> None:
        super().check()
        if self.ar_eps == 0:
            raise ValueError("syre-ar needs ar_eps in (0, 1); ar_eps = 0 is plain syre (method 'syre')")


class SyreAR(Syre):
    """syre-ar: syre whose decay is ``theta^T D theta`` with a fixed random diagonal ``D``."""

    name = "syre-ar"
    Settings = SyreARSettings


@dataclass(frozen=True)
class L2InitSettings(DecaySettings):
    """:class:`DecaySettings` of L2-init."""

    owner = "l2-init"


class L2Init(Syre):
    """Decay toward the parameters' values at attach time (L2-init / regenerative regularisation)."""

    name = "l2-init"
    Settings = L2InitSettings

    def offsets(self, name, owner, p):
        return torch.zeros_like(p), p.detach().clone()


@dataclass(frozen=True)
class JitterSettings(DecaySettings):
    """:class:`DecaySettings` plus syre's ``scale`` and ``seed`` (the shift jitter draws is syre's anchor)."""

    owner = "jitter"
    scale: float = DEFAULT_SCALE
    seed: int = 0

    def check(self) -> None:
        super().check()
        check_range(self.owner, "scale", self.scale)


class Jitter(Syre):
    """Control for syre: the same random shift as syre's anchors (same seed, same draw) added once at the
    start, then decay toward 0. It separates what the anchor does from what a perturbed start does."""

    name = "jitter"
    Settings = JitterSettings

    def offsets(self, name, owner, p):
        return self.draw(name, owner, p), torch.zeros_like(p, device="cpu")

    def drawn_offsets(self) -> list[torch.Tensor] | None:
        """The shift added at the start (drawn again: the same streams give the same draw)."""
        if all(m.scale == 0 for m in self.member_settings):
            return None
        return [
            self.draw(n, owner, getattr(owner, attr)).to(getattr(owner, attr).device)
            for n, (owner, attr) in zip(self.names, self._slots)
        ]


@dataclass(frozen=True)
class ShrinkPerturbSettings(Settings):
    """Settings of :class:`ShrinkPerturb`.

    :param shrink: fraction removed per step, in [0, 1) (default 1e-4)
    :param noise: standard deviation of the added noise (>= 0, default 1e-5)
    :param seed: seed of the noise
    """

    owner = "shrink-perturb"
    shrink: float = 1e-4
    noise: float = 1e-5
    seed: int = 0

    def check(self) -> None:
        check_range(self.owner, "shrink", self.shrink, 0.0, 1.0, high_open=True)
        check_range(self.owner, "noise", self.noise)


class ShrinkPerturb(Method):
    """Shrink and perturb (Ash & Adams 2020): after every step ``p <- (1 - shrink) * p + noise * eps``,
    ``eps ~ N(0, 1)`` per scalar (settings: :class:`ShrinkPerturbSettings`)."""

    name = "shrink-perturb"
    Settings = ShrinkPerturbSettings
    settings: ShrinkPerturbSettings
    PER_MEMBER = ("shrink", "noise")

    def __init__(self, settings: ShrinkPerturbSettings | Sequence[ShrinkPerturbSettings] | None = None, /, **values):
        super().__init__(settings, **values)
        self._generators: dict[str, list[torch.Generator]] = {}  # per parameter, one per member

    def _generator(self, name: str, device: torch.device) -> list[torch.Generator]:
        if name not in self._generators:
            self._generators[name] = [named_generator(m.seed, name, ":noise", device) for m in self.member_settings]
        return self._generators[name]

    @torch.no_grad()
    def after_step(self) -> None:
        for name, p in zip(self.names, self.params()):
            p.mul_(self.along_members("shrink", p, lambda shrink: 1 - shrink))
            noise_std = self.along_members("noise", p)
            if isinstance(noise_std, torch.Tensor):  # members with noises of their own (0: no draw, as alone)
                p.add_(self._noise(name, p) * noise_std)
            elif noise_std > 0:
                p.add_(self._noise(name, p), alpha=noise_std)

    def _noise(self, name: str, p: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of ``p``'s shape, each member's from its own generator of parameter ``name``
        (zeros, drawing nothing, for a member without noise)."""
        shape = self.member_shape(p)
        return self.from_members(
            [
                torch.randn(shape, generator=g, device=p.device, dtype=p.dtype)
                if m.noise > 0
                else torch.zeros(shape, device=p.device, dtype=p.dtype)
                for g, m in zip(self._generator(name, p.device), self.member_settings)
            ]
        )

    @torch.no_grad()
    def stats(self, member: int | None = None) -> dict[str, float]:
        """``weights_per_step``: scalars shrunk and perturbed at every step (all it covers); ``weight_rms``: their
        root mean square, which the shrink pulls down and the gradient and the noise push up."""
        k = self.member_index(member)
        params = [self.stacked(p)[k] for p in self.params()]
        n = sum(p.numel() for p in params)
        return {"weights_per_step": float(n), "weight_rms": math.sqrt(sum(float((p * p).sum()) for p in params) / n)}

    def state_dict(self, member: int | None = None) -> dict[str, Any]:
        k = self.member_index(member)
        if self.member_settings[k].noise == 0:  # it draws nothing (as on its own network, which makes no generator)
            return {"generators": {}}
        return {"generators": {name: gens[k].get_state() for name, gens in self._generators.items()}}

    def load_state_dict(self, state: dict[str, Any], member: int | None = None) -> None:
        k = self.member_index(member)
        devices = {name: p.device for name, p in zip(self.names, self.params())}
        for name, gen_state in state["generators"].items():
            self._generator(name, devices[name])[k].set_state(gen_state)


@dataclass(frozen=True)
class ReDoSettings(Settings):
    """Settings of :class:`ReDo`.

    :param tau: dormancy threshold (>= 0, default 0.025)
    :param every: optimizer steps between checks (>= 1, default 1000)
    :param moment_reset: ``"zero"`` or ``"mean"``, see :class:`ReDo` (default ``"zero"``)
    :param seed: seed of the re-initialisation
    """

    owner = "redo"
    tau: float = 0.025
    every: int = 1000
    moment_reset: Literal["zero", "mean"] = "zero"
    seed: int = 0

    def check(self) -> None:
        check_range(self.owner, "tau", self.tau)
        if self.every < 1:
            raise ValueError(f"redo every must be an integer >= 1, got {self.every!r}")


class ReDo(Method):
    """ReDo (Sokar et al. 2023): every ``every`` optimizer steps, units whose score (mean |activation| over the
    training batches since the last check, divided by the layer's mean) is <= ``tau`` are re-initialised:
    incoming weights and bias redrawn as PyTorch's Linear init (U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    outgoing weights set to 0, and the optimizer's per-parameter state for them reset.

    How the state is reset (``moment_reset``):

    * ``"zero"`` (default, as in Sokar et al.): every per-scalar state (Adam's ``exp_avg`` and ``exp_avg_sq``)
      is zeroed. Adam's step count is one per tensor and stays large, so its bias correction no longer
      rescales the zeroed moments: a reset weight's update is ``lr * m / sqrt(v)`` with ``m = (1 - 0.9^k) g``
      and ``v = (1 - 0.999^k) g^2`` after ``k`` steps under a steady gradient ``g``: 3.16x a normal Adam step
      at the first step and up to about 6.6x around the twelfth (default betas). Harmless at small step sizes,
      destabilising at large ones.
    * ``"mean"`` (for Adam, AdamW and RMSprop): first moments are zeroed, and second moments (``exp_avg_sq``,
      ``max_exp_avg_sq``, ``square_avg``) are set to the mean of the tensor's entries not reset in that pass,
      so a reset weight starts from the layer's typical step size (its first update is ``0.1 lr g / rms g``).
      Other per-scalar state (e.g. Adagrad's ``sum``) is zeroed.

    Works on chains of Linear layers (MLPs) and of Conv layers (a unit is a channel; scores average over
    examples and positions), :func:`syre_rl.base.hidden_layers`. Settings:
    :class:`ReDoSettings`.
    """

    name = "redo"
    # CBP (below) reuses ReDo's machinery with settings of its own
    Settings: ClassVar[type[ReDoSettings | CBPSettings]] = ReDoSettings
    settings: ReDoSettings | CBPSettings
    SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg")  # Adam, AdamW (amsgrad), RMSprop
    STREAM = ":redo"  # of the generators that redraw units' weights
    PER_MEMBER: ClassVar[tuple[str, ...]] = ("tau",)  # (every member checks at the same steps)

    def __init__(self, settings: ReDoSettings | Sequence[ReDoSettings] | None = None, /, **values: Any):
        super().__init__(settings, **values)
        self.steps = 0  # optimizer steps, the same for every member
        self.last_reset, self.total_reset = [0] * self.members, [0] * self.members  # per member

    def _setup(self) -> None:
        assert self.module is not None  # attach sets it before calling _setup
        self.layers: list[HiddenLayer] = hidden_layers(self.module, self.names)
        if not self.layers:
            raise ValueError(
                f"{self.name} needs at least two connected Linear (or Conv) layers among the covered parameters"
            )
        # Per layer: each member's sum of |activation| per unit (members, units), and the rows seen (the same for
        # every member: they train on batches of one size)
        self._sums = [
            torch.zeros(self.members, self.member_shape(h.incoming.weight)[0], device=h.incoming.weight.device)
            for h in self.layers
        ]
        self._counts = [0] * len(self.layers)
        # [member][layer]
        self._generators = [
            [named_generator(m.seed, h.name, self.STREAM) for h in self.layers] for m in self.member_settings
        ]
        # partials of a bound method, not closures: a copied or unpickled module's hooks call the copied method
        self._probes = [
            h.outgoing.register_forward_pre_hook(functools.partial(self._record, i)) for i, h in enumerate(self.layers)
        ]

    def _record(self, i: int, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        """Forward pre-hook of layer ``i``'s outgoing Linear (or Conv): add the units' |activation| to the sums."""
        if module.training and torch.is_grad_enabled():  # training batches only, not rollouts or evaluation
            with torch.no_grad():
                x = self.stacked(self.layers[i].units(inputs[0], self.batched))  # (members, rows, units)
                self._sums[i] = self._sums[i].to(x.device) + x.abs().sum(1)
                self._counts[i] += x.shape[1]

    def scores(self) -> list[torch.Tensor]:
        """Per layer, each unit's mean |activation| over the recorded batches divided by the layer's mean, as
        (members, units)."""
        out = []
        for s, n in zip(self._sums, self._counts):
            m = s / max(1, n)
            mean = m.mean(-1, keepdim=True)
            out.append(torch.where(mean > 0, m / mean, torch.zeros_like(m)))
        return out

    @torch.no_grad()
    def after_step(self) -> None:
        settings = self.settings
        assert isinstance(settings, ReDoSettings)  # CBP, whose settings are CBPSettings, has its own after_step
        self.steps += 1
        if self.steps % settings.every or self._counts[0] == 0:
            return
        self._count_resets(self.reset([score <= self.along_members("tau", score) for score in self.scores()]))

    def _count_resets(self, reset: list[int]) -> None:
        """Record each member's units reset in this step and start the activation sums afresh."""
        self.last_reset = reset
        self.total_reset = [total + n for total, n in zip(self.total_reset, reset)]
        self._sums = [torch.zeros_like(s) for s in self._sums]
        self._counts = [0] * len(self.layers)

    def reset(self, dormant: list[torch.Tensor]) -> list[int]:
        """Re-initialise the ``dormant`` units (a mask per layer, (members, units)), each member's from its own
        generators; returns how many, per member."""
        # Redraw every layer's incoming weights first, then zero the outgoing ones: a reset unit then adds
        # nothing downstream, even when the next layer's units are reset too.
        for i, (layer, mask) in enumerate(zip(self.layers, dormant)):
            self._redraw_incoming(i, layer, mask)
        for layer, mask in zip(self.layers, dormant):
            self.stacked(layer.outgoing.weight).transpose(1, 2)[mask] = 0  # (members, units, out, ...)
            self._clear_optimizer_state(layer.outgoing.weight, mask, outgoing=True)
        return [int(sum(int(m[k].sum()) for m in dormant)) for k in range(self.members)]

    def _redraw_incoming(self, i: int, layer: HiddenLayer, mask: torch.Tensor) -> None:
        w, b = self.stacked(layer.incoming.weight), layer.incoming.bias
        bound = 1 / math.sqrt(w[0, 0].numel())  # PyTorch's Linear and Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        counts = mask.sum(1).tolist()
        gens = [self._generators[k][i] for k in range(self.members)]
        w[mask] = torch.cat(
            [(torch.rand(n, *w.shape[2:], generator=g) * 2 - 1) * bound for n, g in zip(counts, gens)]
        ).to(w)
        self._clear_optimizer_state(layer.incoming.weight, mask)
        if b is not None:
            self.stacked(b)[mask] = torch.cat(
                [(torch.rand(n, generator=g) * 2 - 1) * bound for n, g in zip(counts, gens)]
            ).to(b)
            self._clear_optimizer_state(b, mask)

    def _clear_optimizer_state(self, p: torch.Tensor, mask: torch.Tensor, outgoing: bool = False) -> None:
        """Reset the optimizer's per-scalar state (e.g. Adam's moments) of the reset entries (see
        ``moment_reset``): the units in ``mask`` (members, units), rows of ``p`` (its columns if ``outgoing``)."""
        for key, value in self.optimizer.state.get(p, {}).items():
            if not (isinstance(value, torch.Tensor) and value.shape == p.shape):
                continue
            value = self.stacked(value)
            units = value.transpose(1, 2) if outgoing else value  # (members, units, ...)
            if self.settings.moment_reset == "mean" and key in self.SECOND_MOMENTS:
                kept = torch.ones_like(value, dtype=torch.bool)
                (kept.transpose(1, 2) if outgoing else kept)[mask] = False
                for k in mask.any(1).nonzero().flatten().tolist():  # each member: the mean of its entries kept
                    units[k][mask[k]] = (value[k][kept[k]] if kept[k].any() else value[k]).mean()
            else:
                units[mask] = 0

    def stats(self, member: int | None = None) -> dict[str, float]:
        k = self.member_index(member)
        return {"reset_units": float(self.last_reset[k]), "reset_units_total": float(self.total_reset[k])}

    def state_dict(self, member: int | None = None) -> dict[str, Any]:
        k = self.member_index(member)
        return {
            "steps": self.steps,
            "last_reset": self.last_reset[k],
            "total_reset": self.total_reset[k],
            "sums": [s[k].cpu().clone() for s in self._sums],
            "counts": list(self._counts),
            "generators": [g.get_state() for g in self._generators[k]],
        }

    def load_state_dict(self, state: dict[str, Any], member: int | None = None) -> None:
        k = self.member_index(member)
        self._check_in_step(state, k)
        self.steps, self._counts = state["steps"], list(state["counts"])
        self.last_reset[k], self.total_reset[k] = state["last_reset"], state["total_reset"]
        for s, saved in zip(self._sums, state["sums"]):
            s[k] = saved.to(s)
        for gen, gen_state in zip(self._generators[k], state["generators"]):
            gen.set_state(gen_state)

    def _check_in_step(self, state: dict[str, Any], k: int) -> None:
        """The members of a batch step together: a member's state must be at the others' step."""
        if self.batched and k > 0 and (state["steps"], list(state["counts"])) != (self.steps, self._counts):
            raise ValueError(
                f"{self.name}: member {k}'s state is at step {state['steps']}, the batch's at step {self.steps}; "
                "batch networks that trained the same number of steps"
            )

    def _teardown(self) -> None:
        for probe in self._probes:
            probe.remove()


@dataclass(frozen=True)
class CBPSettings(Settings):
    """Settings of :class:`CBP` (defaults: Dohare et al.'s PPO settings).

    :param replacement_rate: fraction of the mature units replaced per step, in [0, 1] (default 1e-4)
    :param maturity: steps a unit must have lived before it can be replaced (>= 0, default 10,000)
    :param decay: of the utility's running average, in [0, 1) (default 0.99)
    :param moment_reset: ``"zero"`` or ``"mean"``, how a replaced unit's optimizer state is reset (as ReDo's)
    :param seed: seed of the new units' weights
    """

    owner = "cbp"
    replacement_rate: float = 1e-4
    maturity: int = 10_000
    decay: float = 0.99
    moment_reset: Literal["zero", "mean"] = "zero"
    seed: int = 0

    def check(self) -> None:
        check_range(self.owner, "replacement_rate", self.replacement_rate, 0.0, 1.0)
        check_range(self.owner, "decay", self.decay, 0.0, 1.0, high_open=True)
        if self.maturity < 0:
            raise ValueError(f"cbp maturity must be an integer >= 0, got {self.maturity!r}")


class CBP(ReDo):
    """Continual backprop (Dohare et al., Nature 2024): every hidden unit keeps a contribution utility, a running
    average (``decay``) of its mean ``|activation|`` over the step's training batches times the sum of its
    ``|outgoing weights|``, and an age in optimizer steps. After every step, each layer adds
    ``replacement_rate x (its units older than maturity)`` to a running count of units owed; when that reaches
    a whole number, that many mature units are replaced, lowest utility first (ties: lowest index): incoming
    weights redrawn as PyTorch's Linear init, bias 0 (as in Dohare et al.), outgoing weights 0, optimizer state
    reset (``moment_reset``, as ReDo's), utility and age 0. Works on the layers ReDo works on; settings:
    :class:`CBPSettings`.
    """

    name = "cbp"
    Settings = CBPSettings
    settings: CBPSettings
    STREAM = ":cbp"
    PER_MEMBER = ("replacement_rate", "maturity", "decay")

    def _setup(self) -> None:
        super()._setup()
        units = [self.member_shape(h.incoming.weight)[0] for h in self.layers]
        weight = self.layers[0].incoming.weight
        # per layer (members, units); units owed per member and layer
        self.utility = [torch.zeros(self.members, n, device=weight.device, dtype=weight.dtype) for n in units]
        self.age = [torch.zeros(self.members, n, dtype=torch.long, device=weight.device) for n in units]
        self.owed = [[0.0] * len(self.layers) for _ in range(self.members)]

    @torch.no_grad()
    def after_step(self) -> None:
        self.steps += 1
        if self._counts[0] == 0:  # no training batch went through the network since the last step
            return
        self._count_resets(self.replace())

    def replace(self) -> list[int]:
        """One step of continual backprop: update utilities and ages from the recorded activations, replace the
        units owed; returns how many units were replaced, per member."""
        masks = []
        for i, layer in enumerate(self.layers):
            outgoing = self.stacked(layer.outgoing.weight).abs()  # (members, out, units, ...)
            weight_out = outgoing.sum(dim=[d for d in range(outgoing.dim()) if d not in (0, 2)])  # (members, units)
            utility, age = self.utility[i], self.age[i]
            decay, recent = self.along_members("decay", utility), self._sums[i] / max(1, self._counts[i]) * weight_out
            if isinstance(decay, torch.Tensor):  # members with decays of their own
                utility.mul_(decay).add_(recent * (1 - decay))
            else:
                utility.mul_(decay).add_(recent, alpha=1 - decay)
            age += 1
            mature = age > self.along_members("maturity", age)
            mask = torch.zeros_like(mature)
            for k, n_mature in enumerate(mature.sum(1).tolist()):
                owed = self.owed[k]
                owed[i] += self.member_settings[k].replacement_rate * n_mature
                n = min(int(owed[i]), n_mature)
                if n > 0:
                    owed[i] -= n
                    candidates = mature[k].nonzero().squeeze(1)
                    order = torch.sort(utility[k][candidates], stable=True).indices[:n]
                    mask[k, candidates[order]] = True
            masks.append(mask)
        if not any(bool(m.any()) for m in masks):
            return [0] * self.members
        replaced = self.reset(masks)
        for i, (layer, mask) in enumerate(zip(self.layers, masks)):
            if layer.incoming.bias is not None:
                self.stacked(layer.incoming.bias)[mask] = 0
            self.utility[i][mask] = 0
            self.age[i][mask] = 0
        return replaced

    def stats(self, member: int | None = None) -> dict[str, float]:
        k = self.member_index(member)
        units = sum(a.shape[1] for a in self.age)
        mature = sum(int((a[k] > self.member_settings[k].maturity).sum()) for a in self.age)
        return {"replaced_units_total": float(self.total_reset[k]), "mature_fraction": mature / units}

    def state_dict(self, member: int | None = None) -> dict[str, Any]:
        k = self.member_index(member)
        return {
            **super().state_dict(member),
            "utility": [u[k].cpu().clone() for u in self.utility],
            "age": [a[k].cpu().clone() for a in self.age],
            "owed": list(self.owed[k]),
        }

    def load_state_dict(self, state: dict[str, Any], member: int | None = None) -> None:
        super().load_state_dict(state, member)
        k = self.member_index(member)
        for u, saved in zip(self.utility, state["utility"]):
            u[k] = saved.to(u)
        for a, saved in zip(self.age, state["age"]):
            a[k] = saved.to(a)
        self.owed[k] = list(state["owed"])


METHODS: dict[str, type[Method]] = {
    cls.name: cls for cls in (Vanilla, L2, Syre, SyreAR, L2Init, Jitter, ShrinkPerturb, ReDo, CBP)
}


def check_method_name(name: str) -> None:
    """Raise ValueError naming ``name`` and the valid names unless it is a method's name."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}{did_you_mean(name, METHODS)}")


def method_defaults(name: str) -> dict[str, Any]:
    """The settings a method takes, with their defaults (its ``Settings`` dataclass)."""
    check_method_name(name)
    return METHODS[name].Settings().to_dict()


def setting_names() -> list[str]:
    """Every setting any method takes (e.g. the keys a preset's ``method_settings`` may hold)."""
    return list(dict.fromkeys(f.name for cls in METHODS.values() for f in fields(cls.Settings)))


def canonical_name(name: str, settings: dict[str, Any]) -> str:
    """``syre`` with ``ar_eps > 0`` is ``syre-ar``: one name per method, whichever way it was asked for."""
    ar_eps = settings.get("ar_eps") or 0
    return "syre-ar" if name == "syre" and isinstance(ar_eps, (int, float)) and ar_eps > 0 else name


def method_settings(name: str, values: dict[str, Any]) -> Settings:
    """The typed settings of method ``name`` from a mapping (YAML, a command line), checked.

    :raises ValueError: naming an unknown method or setting (and the closest valid one), or a bad value
    """
    check_method_name(name)
    return METHODS[name].Settings.from_dict(values)


def make_method(name: str, settings: Settings | Sequence[Settings] | None = None, /, **values: Any) -> Method:
    """A method by name, its settings checked (attach it with ``.attach(module, optimizer, params)``).

    :param name: one of :data:`METHODS` (vanilla, l2, syre, syre-ar, l2-init, jitter, shrink-perturb, redo, cbp)
    :param settings: the method's typed settings (its ``Settings`` class); or give them as keywords. A list of
        them, one per member, for K networks batched as one (:mod:`syre_rl.members`; they may differ in seed and
        in the method's ``PER_MEMBER`` settings only)
    :raises ValueError: naming an unknown method or setting, or a value outside its range
    """
    check_method_name(name)
    return METHODS[name](settings, **values)
