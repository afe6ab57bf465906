"""K networks trained as one: every layer holds K members' weights along a leading axis.

Small networks (RL's 64 to 256 units) leave a CPU mostly idle; K of them batched as one run K times the work in
about the time of one. Members never mix: a batched layer maps member k's input with member k's weights only, a
loss summed over members gives each member its own gradient, and Adam, SGD and every plasticity method act on
each member as on its own network (a method made with one settings object per member:
``make_method(name, [settings_0, ...])``, :mod:`syre_rl.base`).

    nets = [make_net(seed) for seed in seeds]          # K networks of one architecture
    batched = stack_modules(nets)                      # Linear -> MemberLinear, the rest stacked or shared
    optimizer = torch.optim.Adam(batched.parameters())
    method = make_method("syre", [SyreSettings(seed=s) for s in seeds]).attach(batched, optimizer)
    ...                                                # inputs (K, batch, features), outputs (K, batch, out)
    member_state(batched.state_dict(), k)              # member k's state_dict, as its own network's

A member's state (:func:`member_state`, :func:`member_optimizer_state`, ``method.state_dict(member=k)``) has the
form of a plain network's, so a member checkpoints, resumes and compares exactly like a single run.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


class MemberLinear(nn.Linear):
    """K independent Linear layers as one: weight ``(K, out, in)``, bias ``(K, out)``, input ``(K, ..., in)``.
    A Linear to the methods and metrics (its ``in_features`` and ``out_features`` are one member's).

    :param members: K
    :param in_features: of one member
    :param out_features: of one member
    :param bias: whether the layers have biases
    """

    def __init__(
        self,
        members: int,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ):
        nn.Module.__init__(self)
        self.members, self.in_features, self.out_features = members, in_features, out_features
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features, device=device, dtype=dtype))
        if bias:
            self.bias = nn.Parameter(torch.empty(members, out_features, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)  # as nn.Linear(bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(x.shape[0], -1, x.shape[-1])  # (K, rows, in)
        if self.bias is None:
            out = torch.bmm(rows, self.weight.mT)
        else:
            out = torch.baddbmm(self.bias.unsqueeze(1), rows, self.weight.mT)
        return out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def stack_modules(modules: Sequence[nn.Module]) -> nn.Module:
    """One module holding ``modules`` (K networks of one architecture) as members: each ``nn.Linear`` becomes a
    :class:`MemberLinear`, every other parameter and buffer gets a leading axis of K, modules without parameters
    are shared; parameter names stay those of one network, with the members' values stacked.

    The result's ``forward`` is the first module's code: it batches correctly wherever that code treats the
    leading axis as a batch axis (``nn.Sequential`` of Linear layers and elementwise activations does).

    :raises ValueError: for no modules, modules of different architectures, or a layer type other than Linear
        that holds parameters (Conv, recurrent and normalisation layers cannot be batched here)
    """
    if not modules:
        raise ValueError("stack_modules needs at least one module")
    states = [m.state_dict() for m in modules]
    if any(s.keys() != states[0].keys() or any(s[n].shape != states[0][n].shape for n in s) for s in states):
        raise ValueError("stack_modules needs modules of one architecture (the same parameter names and shapes)")
    batched = copy.deepcopy(modules[0])
    for name, sub in list(batched.named_modules()):
        if isinstance(sub, nn.Linear):
            prefix, _, attr = name.rpartition(".")
            w = sub.weight
            layer = MemberLinear(
                len(modules), sub.in_features, sub.out_features, sub.bias is not None, w.device, w.dtype
            )
            setattr(batched.get_submodule(prefix) if prefix else batched, attr, layer)
    for name, sub in batched.named_modules():
        if isinstance(sub, MemberLinear):
            continue
        own = list(sub.named_parameters(recurse=False))
        if own and next(sub.children(), None) is None:  # a leaf layer with weights of its own: Conv, LayerNorm, ...
            raise ValueError(
                f"stack_modules batches Linear layers and free parameters, not {type(sub).__name__} "
                f"({name or 'the module'})"
            )
        for attr, p in own:  # a free parameter (SB3's log_std): the module's own code must batch it
            setattr(sub, attr, nn.Parameter(torch.empty(len(modules), *p.shape, dtype=p.dtype, device=p.device)))
        for attr, b in list(sub.named_buffers(recurse=False)):
            sub.register_buffer(attr, torch.empty(len(modules), *b.shape, dtype=b.dtype, device=b.device))
    batched.load_state_dict(stack_states(states))
    return batched


def stack_states(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The state_dict of a batch from its members' (each a plain network's state_dict, in member order)."""
    return {name: torch.stack([s[name] for s in states]) for name in states[0]}


def member_state(state: Mapping[str, torch.Tensor], member: int) -> dict[str, torch.Tensor]:
    """Member ``member``'s part of a batch's state_dict: its own network's state_dict (copies)."""
    return {name: t[member].clone() for name, t in state.items()}


def _per_scalar(value: Any) -> bool:
    """Optimizer state kept per scalar (Adam's moments, SGD's momentum), not per tensor (Adam's step count)."""
    return isinstance(value, torch.Tensor) and value.dim() > 0


def stack_optimizer_states(states: Sequence[dict[str, Any]], param_groups: list[dict[str, Any]]) -> dict[str, Any]:
    """An optimizer state_dict for a batch from its members' (their optimizers' ``state_dict()``), with the
    batch optimizer's ``param_groups``.

    :raises ValueError: when the members are at different points (state for some parameters and not others, or
        per-tensor state such as Adam's step count that differs): a batch steps its members together
    """
    own = [s["state"] for s in states]
    if any(o.keys() != own[0].keys() for o in own):
        raise ValueError("the members' optimizers are at different points (some have state, some not)")
    merged: dict[int, dict[str, Any]] = {}
    for i, entry in own[0].items():
        merged[i] = {}
        for key, value in entry.items():
            if _per_scalar(value):
                merged[i][key] = torch.stack([o[i][key] for o in own])
            else:
                if any(not _same(o[i][key], value) for o in own):
                    raise ValueError(
                        f"the members' optimizers are at different points ({key} differs); batch members that "
                        "trained the same number of steps"
                    )
                merged[i][key] = value
    return {"state": merged, "param_groups": param_groups}


def _same(a: Any, b: Any) -> bool:
    return bool(torch.equal(a, b)) if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) else a == b


def member_optimizer_state(state: dict[str, Any], member: int, param_groups: list[dict[str, Any]]) -> dict[str, Any]:
    """Member ``member``'s part of a batch optimizer's state_dict, with its own optimizer's ``param_groups``."""
    own = {
        i: {
            key: v[member].clone() if _per_scalar(v) else v.clone() if isinstance(v, torch.Tensor) else v
            for key, v in entry.items()
        }
        for i, entry in state["state"].items()
    }
    return {"state": own, "param_groups": param_groups}
