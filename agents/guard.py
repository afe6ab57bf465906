"""A non-finite guard for training runs: stop at the first NaN or infinity in a gradient (before the optimizer
applies it) or in a parameter (right after a step), naming where, so the last good checkpoint stays the last."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn


class NonFiniteError(ValueError):
    """Training met a non-finite gradient or parameter; the message names the step and the tensor."""


class NonFiniteGuard:
    """Hooks on every given optimizer that check, at each step, the gradients before it (a non-finite loss
    shows up there) and the parameters after it. One fused norm per check; a tensor is looked at on its own only
    when a norm is not finite.

    For K networks batched as one (every tensor with a leading axis of K members), ``stop`` lets the others go
    on when some members' values are not finite: it is called with those members and the message naming them
    (it may raise to stop all), and from then on their gradients are zeroed before every step and their
    non-finite parameters set to 0 after it, so that the optimizer's state stays finite and their values never
    reach the other members (each member's update reads only its own slices).

    :param module: the network, for parameter names
    :param optimizers: the optimizers that train it
    :param where: says where training is, for the message (e.g. ``lambda: "env step 4096"``)
    :param members: for K networks batched as one, their names for the message (e.g. ``"seed 3"``)
    :param stop: for a batch, what to do with members whose values are not finite (see above); without it the
        first non-finite value raises :class:`NonFiniteError`
    """

    def __init__(
        self,
        module: nn.Module,
        optimizers: Iterable[torch.optim.Optimizer],
        where: Callable[[], str],
        members: Sequence[str] | None = None,
        stop: Callable[[list[int], str], None] | None = None,
    ):
        if stop is not None and members is None:
            raise ValueError("stop needs the batch's members")
        self.names = {id(p): name for name, p in module.named_parameters()}
        self.where, self.members, self.stop = where, members, stop
        self.stopped: set[int] = set()
        self.hooks = []
        for opt in optimizers:
            params = [p for group in opt.param_groups for p in group["params"]]
            self.hooks.append(
                opt.register_step_pre_hook(
                    lambda o, a, k, params=params: self.check([p for p in params if p.grad is not None], "gradient")
                )
            )
            self.hooks.append(
                opt.register_step_post_hook(lambda o, a, k, params=params: self.check(params, "parameter"))
            )

    @torch.no_grad()
    def check(self, params: list[torch.Tensor], kind: str) -> None:
        """Raise NonFiniteError naming the first parameter whose gradient (or value) is not finite; in a batch
        with ``stop``, stop its members instead and clean what stopped members hold."""
        tensors = [p.grad for p in params] if kind == "gradient" else params
        if self.stopped:
            self._clean(tensors, kind)
        if not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all()):
            return
        bad_tensors = [(p, t) for p, t in zip(params, tensors) if not bool(torch.isfinite(t).all())]
        p, t = bad_tensors[0]
        bad = sorted({k for _, u in bad_tensors for k in self._bad_members(u)})
        which = f"{', '.join(self.members[k] for k in bad)}: " if self.members is not None else ""
        message = (
            f"{self.where()}: {which}non-finite {kind} in {self.names.get(id(p), 'a parameter')} "
            f"({int((~torch.isfinite(t)).sum())} of {t.numel()} values); training stopped "
            "(--no-guard turns this check off)"
        )
        if self.stop is None:
            raise NonFiniteError(message)
        self.stop(bad, message)
        self.stopped.update(bad)
        self._clean(tensors, kind)

    def _bad_members(self, t: torch.Tensor) -> list[int]:
        """The members (leading axis) of ``t`` with a non-finite value; none for one network."""
        if self.members is None:
            return []
        return (~torch.isfinite(t)).reshape(len(self.members), -1).any(1).nonzero().flatten().tolist()

    def _clean(self, tensors: list[torch.Tensor], kind: str) -> None:
        """Stopped members' gradients to 0; their non-finite parameters to 0."""
        assert self.members is not None
        index = torch.tensor(sorted(self.stopped))
        for t in tensors:
            rows = t.view(len(self.members), -1)
            if kind == "gradient":
                rows[index] = 0
            else:
                rows[index] = torch.nan_to_num(rows[index], nan=0.0, posinf=0.0, neginf=0.0)

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()
