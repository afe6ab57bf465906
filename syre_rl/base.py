"""The one interface of every plasticity method: something that happens around ``optimizer.step()``.

A method is built from its settings (a typed :class:`syre_rl.settings.Settings`, checked at once), then attached
to a network, its optimizer and a set of parameters; it acts through optimizer step hooks, so any training loop
(plain PyTorch, SB3) runs it unchanged.

    method = make_method("shrink-perturb", noise=1e-5)     # syre_rl.methods
    method.attach(net, optimizer)                          # default: every Linear/Conv weight and bias
    ...                                                    # train as usual
    method.stats(); method.detach()

One method also acts on K networks batched as one (:mod:`syre_rl.members`: every parameter with a leading axis
of K members): ``make_method("syre", [settings_0, ..., settings_K-1])``. Member ``k`` then trains exactly as the
method with ``settings_k`` on its own network would: its own random streams, state, figures and checkpoint.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import torch
from torch import nn

from syre_rl.settings import Settings

# The base of every method's settings, by a name that the class attribute ``Method.Settings`` does not hide
MethodSettings = Settings

# Layers covered by default: Linear, Conv and recurrent (LSTM, GRU, RNN) layers. Normalisation layers are left
# alone: their affine parameters carry no permutation symmetry of their own and decaying a scale toward ~0 would
# switch the layer off.
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd, nn.RNNBase)


def default_params(module: nn.Module) -> list[str]:
    """Names (as in ``module.named_parameters()``) of the weights and biases of every Linear, Conv and recurrent
    layer.

    :param module: the network
    :return: qualified parameter names, in registration order (a shared submodule counted once)
    """
    names, seen = [], set()
    for prefix, sub in module.named_modules():
        if isinstance(sub, DEFAULT_LAYER_TYPES) and id(sub) not in seen:
            seen.add(id(sub))
            names += [f"{prefix}.{n}" if prefix else n for n, _ in sub.named_parameters(recurse=False)]
    return names


def named_generator(seed: int, name: str, stream: str = "", device: torch.device | str = "cpu") -> torch.Generator:
    """A random generator seeded by ``(seed, name, stream)``: each parameter (or layer) draws from its own
    stream, so what it draws does not depend on which others a method covers (actor and critic included)."""
    return torch.Generator(device=device).manual_seed(zlib.crc32(f"{seed}:{name}{stream}".encode()))


ConvLayer = nn.modules.conv._ConvNd


@dataclass(frozen=True)
class HiddenLayer:
    """Hidden units between two Linear layers, or two Conv layers (a unit is then a channel): ``incoming``
    computes them, ``outgoing`` reads them (so the input of ``outgoing`` is the units' activation, whatever the
    activation function)."""

    name: str
    incoming: nn.Linear | ConvLayer
    outgoing: nn.Linear | ConvLayer

    def units(self, activation: torch.Tensor, batched: bool = False) -> torch.Tensor:
        """The input of ``outgoing`` as a matrix (rows, units): a Linear's (..., units) flattened to rows; a
        Conv's (examples, channels, *positions) with every example and position a row. ``batched``: the first axis
        is the member axis of K networks batched as one (:mod:`syre_rl.members`), kept: (K, rows, units)."""
        if batched and isinstance(self.outgoing, ConvLayer):
            return torch.stack([self.units(member) for member in activation.unbind(0)])
        if batched:
            return activation.reshape(activation.shape[0], -1, activation.shape[-1])
        if isinstance(self.outgoing, ConvLayer):
            return activation.movedim(1, -1).reshape(-1, activation.shape[1])
        return activation.reshape(-1, activation.shape[-1])


def _connects(a: nn.Module, b: nn.Module) -> bool:
    if isinstance(a, nn.Linear) and isinstance(b, nn.Linear):
        return a.out_features == b.in_features
    return isinstance(a, ConvLayer) and isinstance(b, ConvLayer) and a.out_channels == b.in_channels


def hidden_layers(module: nn.Module, names: Iterable[str]) -> list[HiddenLayer]:
    """The hidden layers of the chains among the Linear and Conv layers owning ``names``: consecutive covered
    layers of one kind whose sizes connect (Linear ``a.out_features == b.in_features``, Conv ``a.out_channels ==
    b.in_channels``), in order. A Conv followed by a Linear (through a flatten) is not one: its Linear input mixes
    channels and positions.

    :param module: the network
    :param names: parameter names (e.g. those a method covers)
    :return: one :class:`HiddenLayer` per hidden layer, named after the incoming layer
    """
    found: list[tuple[str, nn.Linear | ConvLayer]] = []
    for name in names:
        prefix = name.rpartition(".")[0]
        layer = module.get_submodule(prefix)
        if isinstance(layer, (nn.Linear, ConvLayer)) and all(layer is not seen for _, seen in found):
            found.append((prefix, layer))
    return [HiddenLayer(name, a, b) for (name, a), (_, b) in zip(found, found[1:]) if _connects(a, b)]


def resolve_params(
    module: nn.Module, optimizer: torch.optim.Optimizer, names: list[str]
) -> list[tuple[nn.Module, str]]:
    """``(owning module, attribute name)`` of each named parameter, after checking that it exists, is unique and
    is trained by ``optimizer``.

    :raises ValueError: naming the unknown, repeated or untrained parameters
    """
    params = dict(module.named_parameters())
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"unknown parameter name(s) {unknown}; valid: {sorted(params)}")
    if len(set(names)) != len(names):
        raise ValueError(f"parameter names repeat: {names}")
    in_optimizer = {id(p) for group in optimizer.param_groups for p in group["params"]}
    missing = [n for n in names if id(params[n]) not in in_optimizer]
    if missing:
        raise ValueError(f"parameter(s) {missing} are not in the optimizer, so no method could act on them")
    slots = []
    for name in names:
        prefix, _, attr = name.rpartition(".")
        slots.append((module.get_submodule(prefix), attr))
    return slots


@dataclass(frozen=True)
class GeneratorState:
    """A ``torch.Generator`` as data: its device and its state (what a copy or a pickle of a method holds)."""

    device: str
    state: torch.Tensor

    @classmethod
    def of(cls, generator: torch.Generator) -> GeneratorState:
        return cls(str(generator.device), generator.get_state())

    def generator(self) -> torch.Generator:
        """A new generator in this state."""
        generator = torch.Generator(device=self.device)
        generator.set_state(self.state)
        return generator


def replaced(value: Any, kind: type | tuple[type, ...], convert: Any) -> Any:
    """``value`` with every instance of ``kind`` in it (in lists, tuples and dicts too) replaced by ``convert(it)``."""
    if isinstance(value, kind):
        return convert(value)
    if isinstance(value, (list, tuple)):
        return type(value)(replaced(v, kind, convert) for v in value)
    if isinstance(value, dict):
        return {k: replaced(v, kind, convert) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class NoSettings(Settings):
    """Settings of a method that takes none."""

    owner = "method"


class Method:
    """Base of all plasticity methods. Subclasses set ``name`` and ``Settings`` (a frozen
    :class:`syre_rl.settings.Settings` dataclass: the method's settings, their types, defaults and ranges, in
    one place) and override any of ``_setup`` (once, at attach), ``before_step`` / ``after_step`` (around every
    optimizer step), ``stats``, ``state_dict`` / ``load_state_dict`` (state beyond the module's own
    state_dict) and ``_teardown``.

    :param settings: the method's settings object; or leave it out and give its fields as keywords
    :raises ValueError: naming an unknown setting (and the closest valid one) or a bad value
    """

    name: ClassVar[str] = ""
    Settings: ClassVar[type[MethodSettings]] = NoSettings
    # The settings (beside the seed) in which the members of a batch may differ: numbers that act per scalar or
    # per unit, read through :meth:`along_members`. Others (what the method builds, when it acts) are shared.
    PER_MEMBER: ClassVar[tuple[str, ...]] = ()
    module: nn.Module | None  # the network while attached; None after detach

    def __init__(self, settings: MethodSettings | Sequence[MethodSettings] | None = None, /, **values: Any):
        if settings is None:
            settings = self.Settings.from_dict(values)
        elif values:
            raise TypeError(f"{self.name}: give a {self.Settings.__name__} or keyword settings, not both")
        # A sequence of settings: one per member of K networks batched as one (the module docstring)
        if not isinstance(settings, (Settings, list, tuple)):
            raise ValueError(f"method {self.name!r} takes {self.Settings.__name__}, got {type(settings).__name__}")
        self.batched = not isinstance(settings, Settings)
        members: list[MethodSettings] = list(settings) if not isinstance(settings, Settings) else [settings]
        if not members:
            raise ValueError(f"{self.name}: a batch of networks needs the settings of at least one member")
        for member in members:
            if type(member) is not self.Settings:
                raise ValueError(f"method {self.name!r} takes {self.Settings.__name__}, got {type(member).__name__}")
        free = [n for n in ("seed", *self.PER_MEMBER) if n in members[0].to_dict()]
        shared = {k: v for k, v in members[0].to_dict().items() if k not in free}
        for k, member in enumerate(members):
            differ = sorted(n for n, v in member.to_dict().items() if n not in free and shared[n] != v)
            if differ:
                raise ValueError(
                    f"{self.name}: the members of one batch may differ in {' and '.join(free)} only; member {k} "
                    f"differs from member 0 in {', '.join(differ)}"
                )
        self.settings = members[0]
        # each member's settings (of the subclass's Settings type, hence Any)
        self.member_settings: tuple[Any, ...] = tuple(members)

    @property
    def members(self) -> int:
        """K, the number of networks the method acts on (1 for a plain network)."""
        return len(self.member_settings)

    def stacked(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` (a covered parameter, its optimizer state or anything shaped like it) with the member axis
        first: ``t`` itself on a batch of networks, a view of ``t`` with an axis of one member on a plain one, so
        that one code serves both (in-place changes of the view change ``t``)."""
        return t if self.batched else t.unsqueeze(0)

    def member_shape(self, t: torch.Tensor) -> torch.Size:
        """The shape of one member's part of ``t``."""
        return t.shape[1:] if self.batched else t.shape

    def from_members(self, parts: Sequence[torch.Tensor]) -> torch.Tensor:
        """One tensor from each member's part (in member order): stacked on a new first axis for a batch of
        networks, the one part itself on a plain network."""
        return torch.stack(list(parts)) if self.batched else parts[0]

    def per_member(self, draw: Callable[[Any], torch.Tensor]) -> torch.Tensor:
        """``draw(member's settings)`` for every member, as one tensor (:meth:`from_members`): what member k
        draws (from its own seed's streams) is what the method with its settings draws on its own network."""
        return self.from_members([draw(member) for member in self.member_settings])

    def along_members(
        self, name: str, like: torch.Tensor, of: Callable[[Any], Any] = lambda value: value
    ) -> Any | torch.Tensor:
        """``of(setting name)`` for arithmetic on ``like`` (a covered tensor, or anything with the member axis
        first on a batch): the one value when every member has it (a plain network always, so its arithmetic is
        the method's own), else each member's as a tensor of ``like``'s dtype shaped to broadcast along the
        member axis (:attr:`PER_MEMBER`)."""
        values = [of(getattr(m, name)) for m in self.member_settings]
        if all(v == values[0] for v in values):
            return values[0]
        return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, *[1] * (like.dim() - 1))

    def member_index(self, member: int | None) -> int:
        """Which member a call means: ``member`` on a batch of networks (it must be given), 0 on a plain one."""
        if member is None and self.batched:
            raise ValueError(f"{self.name} acts on {self.members} networks batched as one: give member=0..")
        if member is None:
            return 0
        if not (isinstance(member, int) and 0 <= member < self.members):
            raise ValueError(f"{self.name}: member must be an integer in [0, {self.members}), got {member!r}")
        return member

    def attach(self, module: nn.Module, optimizer: torch.optim.Optimizer, params: Iterable[str] | None = None) -> Self:
        """Attach to ``module`` trained by ``optimizer``.

        :param module: the network
        :param optimizer: any ``torch.optim`` optimizer holding the chosen parameters
        :param params: qualified names of the parameters to act on (default :func:`default_params`)
        :return: self
        """
        if getattr(self, "module", None) is not None:
            raise ValueError(f"this {self.name} method is attached already; make a new one for another network")
        if not isinstance(module, nn.Module):
            raise TypeError(f"{self.name}: the module must be a torch.nn.Module, got {type(module).__name__}")
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"{self.name}: the optimizer must be a torch.optim.Optimizer (e.g. torch.optim.Adam(net.parameters()))"
                f", got {type(optimizer).__name__}"
            )
        if isinstance(params, str):
            raise TypeError(f"{self.name}: params is a list of parameter names, not one text: write [{params!r}]")
        self.names = list(default_params(module) if params is None else params)
        if not self.names:
            what = (
                "params is empty"
                if params is not None
                else f"{type(module).__name__} has no Linear, Conv or recurrent layer"
            )
            raise ValueError(f"{self.name}: no parameters to act on ({what}); give params= or a network with layers")
        self._slots = resolve_params(module, optimizer, self.names)
        if self.batched:
            wrong = [
                n
                for n, (owner, attr) in zip(self.names, self._slots)
                if getattr(owner, attr).shape[:1] != (self.members,)
            ]
            if wrong:
                raise ValueError(
                    f"{self.name} acts on {self.members} networks batched as one, so every parameter it covers needs "
                    f"a leading axis of {self.members} members (syre_rl.members.stack_modules); {wrong} have none"
                )
        self.module, self.optimizer = module, optimizer
        try:
            self._setup()
        except BaseException:
            self.module = None  # refused: nothing attached, the method may be attached elsewhere
            del self.optimizer
            raise
        self._hook_optimizer()
        return self

    def _hook_optimizer(self) -> None:
        # Only hooks a method really has: a no-op Python call per step is measurable on small networks. Bound
        # methods, not closures: a deepcopy or pickle of the method then calls the copy (see __setstate__).
        self._hooks = []
        if type(self).before_step is not Method.before_step:
            self._hooks.append(self.optimizer.register_step_pre_hook(self._pre_step))
        if type(self).after_step is not Method.after_step:
            self._hooks.append(self.optimizer.register_step_post_hook(self._post_step))

    def _pre_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.before_step()

    def _post_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.after_step()

    def __getstate__(self) -> dict[str, Any]:
        """Everything but the optimizer's hook handles and derived caches (a torch optimizer drops its step hooks
        when it is copied or pickled, so the copy registers its own: :meth:`__setstate__`), random generators as
        their states (torch 2.1 cannot copy or pickle a ``torch.Generator``)."""
        return {
            k: replaced(v, torch.Generator, GeneratorState.of)
            for k, v in self.__dict__.items()
            if k not in ("_hooks", "_cache")
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a copied or unpickled method and hook it to its own (copied) optimizer, so that ``copy.deepcopy``
        and ``pickle`` of a network, its optimizer and its method, or of an SB3 policy, keep the method acting on
        the copy with generators of its own; forward hooks (ReDo's statistics) travel with the module's own copy
        and call this copy."""
        self.__dict__.update({k: replaced(v, GeneratorState, GeneratorState.generator) for k, v in state.items()})
        self._hooks = []
        if getattr(self, "module", None) is not None:
            self._hook_optimizer()

    # Looked up on every call: `.to(device)` replaces buffers, so stored references would go stale.
    def params(self) -> list[nn.Parameter]:
        """The parameters the method acts on, in the order of :attr:`names`."""
        return [getattr(owner, attr) for owner, attr in self._slots]

    def anchors(self) -> list[torch.Tensor] | None:
        """The fixed tensors the method decays toward, if it has any."""
        return None

    def drawn_offsets(self) -> list[torch.Tensor] | None:
        """Random offsets the method added to the parameters (syre, jitter), for measures on the learned part
        (weights minus offsets); None when it added none."""
        return None

    def _setup(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def stats(self, member: int | None = None) -> dict[str, float]:
        """Figures worth logging (name -> value), of ``member`` on a batch of networks (:meth:`member_index`)."""
        self.member_index(member)
        return {}

    def state_dict(self, member: int | None = None) -> dict[str, Any]:
        """State to checkpoint beyond the module's state_dict (counters, random generators); on a batch of
        networks, ``member``'s, in the form a plain network's method has, so that either resumes the other."""
        self.member_index(member)
        return {}

    def load_state_dict(self, state: dict[str, Any], member: int | None = None) -> None:
        """Load a :meth:`state_dict` (into ``member`` on a batch of networks)."""
        self.member_index(member)

    def _teardown(self) -> None:
        pass

    def detach(self) -> None:
        """Remove the hooks (and anything the method added to the module); parameters keep their values."""
        for hook in self._hooks:
            hook.remove()
        self._teardown()
        self.module = None

    def __repr__(self) -> str:
        if self.batched:
            seeds = [getattr(m, "seed", 0) for m in self.member_settings]
            return f"{type(self).__name__}({self.settings}, members={self.members}, seeds={seeds})"
        return f"{type(self).__name__}({self.settings})"
