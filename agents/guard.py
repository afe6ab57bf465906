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

    :param module: the network, for parameter names
    :param optimizers: the optimizers that train it
    :param where: says where training is, for the message (e.g. ``lambda: "env step 4096"``)
    :param seeds: for K seeds batched as one network (every tensor with a leading axis of K members), their seeds,
        so that the message names the seed whose value is not finite
    """

    def __init__(
        self,
        module: nn.Module,
        optimizers: Iterable[torch.optim.Optimizer],
        where: Callable[[], str],
        seeds: Sequence[int] | None = None,
    ):
        self.names = {id(p): name for name, p in module.named_parameters()}
        self.where, self.seeds = where, seeds
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
        """Raise NonFiniteError naming the first parameter whose gradient (or value) is not finite."""
        tensors = [p.grad for p in params] if kind == "gradient" else params
        if not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all()):
            return
        for p, t in zip(params, tensors):
            if not bool(torch.isfinite(t).all()):
                name = self.names.get(id(p), "a parameter")
                raise NonFiniteError(
                    f"{self.where()}: {seed_of(t, self.seeds)}non-finite {kind} in {name} "
                    f"({int((~torch.isfinite(t)).sum())} of {t.numel()} values); training stopped "
                    "(--no-guard turns this check off)"
                )

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()


def seed_of(t: torch.Tensor, seeds: Sequence[int] | None) -> str:
    """``"seed S: "`` for the first member of a batch (``t``'s leading axis) with a non-finite value; ``""`` for
    a tensor of one network."""
    if seeds is None:
        return ""
    bad = (~torch.isfinite(t)).reshape(len(seeds), -1).any(1)
    return f"seed {seeds[int(bad.nonzero()[0])]}: "
