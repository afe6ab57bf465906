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
        if self.settings.scale == 0:
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

    def __init__(self, settings: ShrinkPerturbSettings | None = None, /, **values: Any):
        super().__init__(settings, **values)
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, name: str, device: torch.device) -> torch.Generator:
        if name not in self._generators:
            self._generators[name] = named_generator(self.settings.seed, name, ":noise", device)
        return self._generators[name]

    @torch.no_grad()
    def after_step(self) -> None:
        shrink, noise_std = self.settings.shrink, self.settings.noise
        for name, p in zip(self.names, self.params()):
            p.mul_(1 - shrink)
            if noise_std > 0:
                p.add_(self._noise(name, p), alpha=noise_std)

    def _noise(self, name: str, p: torch.Tensor) -> torch.Tensor:
        """Standard normal noise of ``p``'s shape from parameter ``name``'s own generator."""
        return torch.randn(p.shape, generator=self._generator(name, p.device), device=p.device, dtype=p.dtype)

    @torch.no_grad()
    def stats(self) -> dict[str, float]:
        """``weights_per_step``: scalars shrunk and perturbed at every step (all it covers); ``weight_rms``: their
        root mean square, which the shrink pulls down and the gradient and the noise push up."""
        params = self.params()
        n = sum(p.numel() for p in params)
        return {"weights_per_step": float(n), "weight_rms": math.sqrt(sum(float((p * p).sum()) for p in params) / n)}

    def state_dict(self) -> dict[str, Any]:
        return {"generators": {name: g.get_state() for name, g in self._generators.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        devices = {name: p.device for name, p in zip(self.names, self.params())}
        for name, gen_state in state["generators"].items():
            self._generator(name, devices[name]).set_state(gen_state)


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

    def __init__(self, settings: ReDoSettings | None = None, /, **values: Any):
        super().__init__(settings, **values)
        self.steps, self.last_reset, self.total_reset = 0, 0, 0

    def _setup(self) -> None:
        assert self.module is not None  # attach sets it before calling _setup
        self.layers: list[HiddenLayer] = hidden_layers(self.module, self.names)
        if not self.layers:
            raise ValueError(
                f"{self.name} needs at least two connected Linear (or Conv) layers among the covered parameters"
            )
        self._sums = [torch.zeros(h.incoming.weight.shape[0], device=h.incoming.weight.device) for h in self.layers]
        self._counts = [0] * len(self.layers)
        self._generators = [named_generator(self.settings.seed, h.name, ":redo") for h in self.layers]
        # partials of a bound method, not closures: a copied or unpickled module's hooks call the copied method
        self._probes = [
            h.outgoing.register_forward_pre_hook(functools.partial(self._record, i)) for i, h in enumerate(self.layers)
        ]

    def _record(self, i: int, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        """Forward pre-hook of layer ``i``'s outgoing Linear (or Conv): add the units' |activation| to the sums."""
        if module.training and torch.is_grad_enabled():  # training batches only, not rollouts or evaluation
            with torch.no_grad():
                x = self.layers[i].units(inputs[0])
                self._sums[i] = self._sums[i].to(x.device) + x.abs().sum(0)
                self._counts[i] += x.shape[0]

    def scores(self) -> list[torch.Tensor]:
        """Per layer, each unit's mean |activation| over the recorded batches divided by the layer's mean."""
        means = [s / max(1, n) for s, n in zip(self._sums, self._counts)]
        return [m / m.mean() if m.mean() > 0 else torch.zeros_like(m) for m in means]

    @torch.no_grad()
    def after_step(self) -> None:
        settings = self.settings
        assert isinstance(settings, ReDoSettings)  # CBP, whose settings are CBPSettings, has its own after_step
        self.steps += 1
        if self.steps % settings.every or self._counts[0] == 0:
            return
        self.last_reset = self.reset([score <= settings.tau for score in self.scores()], self._generators)
        self.total_reset += self.last_reset
        self._sums = [torch.zeros_like(s) for s in self._sums]
        self._counts = [0] * len(self.layers)

    def reset(self, dormant: list[torch.Tensor], generators: list[torch.Generator], view=lambda t: t) -> int:
        """Re-initialise the ``dormant`` units (a mask per layer) drawing from ``generators`` (one per layer);
        returns how many. ``view`` maps each parameter and optimizer-state tensor to the part being reset (the
        whole tensor here; one seed's slice of a stack of seeds)."""
        # Redraw every layer's incoming weights first, then zero the outgoing ones: a reset unit then adds
        # nothing downstream, even when the next layer's units are reset too.
        for layer, mask, gen in zip(self.layers, dormant, generators):
            self._redraw_incoming(layer, mask, gen, view)
        for layer, mask in zip(self.layers, dormant):
            view(layer.outgoing.weight)[:, mask] = 0
            self._clear_optimizer_state(layer.outgoing.weight, (slice(None), mask), view)
        return int(sum(int(m.sum()) for m in dormant))

    def _redraw_incoming(self, layer: HiddenLayer, mask: torch.Tensor, gen: torch.Generator, view) -> None:
        w, b, n = view(layer.incoming.weight), layer.incoming.bias, int(mask.sum())
        bound = 1 / math.sqrt(w[0].numel())  # PyTorch's Linear and Conv init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        w[mask] = ((torch.rand(n, *w.shape[1:], generator=gen) * 2 - 1) * bound).to(w)
        self._clear_optimizer_state(layer.incoming.weight, mask, view)
        if b is not None:
            view(b)[mask] = ((torch.rand(n, generator=gen) * 2 - 1) * bound).to(b)
            self._clear_optimizer_state(b, mask, view)

    def _clear_optimizer_state(self, p: torch.Tensor, index, view) -> None:
        """Reset the optimizer's per-scalar state (e.g. Adam's moments) of the reset entries (see ``moment_reset``)."""
        for key, value in self.optimizer.state.get(p, {}).items():
            if not (isinstance(value, torch.Tensor) and value.shape == p.shape):
                continue
            value = view(value)
            if self.settings.moment_reset == "mean" and key in self.SECOND_MOMENTS:
                kept = torch.ones_like(value, dtype=torch.bool)
                kept[index] = False
                value[index] = (value[kept] if kept.any() else value).mean()
            else:
                value[index] = 0

    def stats(self) -> dict[str, float]:
        return {"reset_units": float(self.last_reset), "reset_units_total": float(self.total_reset)}

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "last_reset": self.last_reset,
            "total_reset": self.total_reset,
            "sums": [s.cpu() for s in self._sums],
            "counts": self._counts,
            "generators": [g.get_state() for g in self._generators],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.last_reset, self.total_reset = state["steps"], state["last_reset"], state["total_reset"]
        self._sums = [s.to(old.device) for s, old in zip(state["sums"], self._sums)]
        self._counts = list(state["counts"])
        for gen, gen_state in zip(self._generators, state["generators"]):
            gen.set_state(gen_state)

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

    def _setup(self) -> None:
        super()._setup()
        self._generators = [named_generator(self.settings.seed, h.name, ":cbp") for h in self.layers]
        units = [h.incoming.weight.shape[0] for h in self.layers]
        weight = self.layers[0].incoming.weight
        self.utility = [torch.zeros(n, device=weight.device, dtype=weight.dtype) for n in units]
        self.age = [torch.zeros(n, dtype=torch.long, device=weight.device) for n in units]
        self.owed = [0.0] * len(self.layers)

    @torch.no_grad()
    def after_step(self) -> None:
        self.steps += 1
        if self._counts[0] == 0:  # no training batch went through the network since the last step
            return
        self.last_reset = self.replace(self._sums, self._counts, self.utility, self.age, self.owed, self._generators)
        self.total_reset += self.last_reset
        self._sums = [torch.zeros_like(s) for s in self._sums]
        self._counts = [0] * len(self.layers)

    def replace(
        self,
        sums: list[torch.Tensor],
        counts: list[int],
        utility: list[torch.Tensor],
        age: list[torch.Tensor],
        owed: list[float],
        generators: list[torch.Generator],
        view=lambda t: t,
    ) -> int:
        """One step of continual backprop on one network (``view`` picks it out of a stack of seeds, as in
        :meth:`ReDo.reset`): update utilities and ages from the recorded activations, replace the units owed.
        ``utility``, ``age`` and ``owed`` are updated in place; returns how many units were replaced."""
        settings, masks = self.settings, []
        for i, layer in enumerate(self.layers):
            outgoing = view(layer.outgoing.weight).abs()
            weight_out = outgoing.sum(dim=[d for d in range(outgoing.dim()) if d != 1])  # per unit (input channel)
            utility[i].mul_(settings.decay).add_(sums[i] / max(1, counts[i]) * weight_out, alpha=1 - settings.decay)
            age[i] += 1
            mature = age[i] > settings.maturity
            owed[i] += settings.replacement_rate * int(mature.sum())
            n = min(int(owed[i]), int(mature.sum()))
            mask = torch.zeros_like(mature)
            if n > 0:
                owed[i] -= n
                candidates = mature.nonzero().squeeze(1)
                order = torch.sort(utility[i][candidates], stable=True).indices[:n]
                mask[candidates[order]] = True
            masks.append(mask)
        if not any(bool(m.any()) for m in masks):
            return 0
        replaced = self.reset(masks, generators, view)
        for i, (layer, mask) in enumerate(zip(self.layers, masks)):
            if layer.incoming.bias is not None:
                view(layer.incoming.bias)[mask] = 0
            utility[i][mask] = 0
            age[i][mask] = 0
        return replaced

    def stats(self) -> dict[str, float]:
        units = sum(len(a) for a in self.age)
        mature = sum(int((a > self.settings.maturity).sum()) for a in self.age)
        return {"replaced_units_total": float(self.total_reset), "mature_fraction": mature / units}

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "utility": [u.cpu() for u in self.utility],
            "age": [a.cpu() for a in self.age],
            "owed": list(self.owed),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.utility = [u.to(old.device) for u, old in zip(state["utility"], self.utility)]
        self.age = [a.to(old.device) for a, old in zip(state["age"], self.age)]
        self.owed = list(state["owed"])


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


def make_method(name: str, settings: Settings | None = None, /, **values: Any) -> Method:
    """A method by name, its settings checked (attach it with ``.attach(module, optimizer, params)``).

    :param name: one of :data:`METHODS` (vanilla, l2, syre, syre-ar, l2-init, jitter, shrink-perturb, redo, cbp)
    :param settings: the method's typed settings (its ``Settings`` class); or give them as keywords
    :raises ValueError: naming an unknown method or setting, or a value outside its range
    """
    check_method_name(name)
    return METHODS[name](settings, **values)
