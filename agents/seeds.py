"""K seeds in one model: the supervised learners of K seeds trained as one batched network.

Each seed keeps its own :class:`~syre_rl.agents.supervised.SupervisedLearner` (network, optimizer, method, batch
order), its own run folder, metrics, checkpoint and logs, exactly as a single run. For each task,
:class:`SeedStack` stacks their weights, optimizer state and method state into one network whose layers hold
K copies (:class:`SeedLinear`: weights of shape ``(K, out, in)``), trains the task with one forward and one
backward per minibatch (each seed's minibatch from its own order and permutation, the data set held once), then
writes every seed's state back. The seeds never mix: the loss is the sum of the seeds' mean losses, so each seed's
gradient is its own; Adam and the decay family act elementwise; shrink-perturb, ReDo and continual backprop keep
each seed's statistics and draw from each seed's own generators (:class:`StackedShrinkPerturb`,
:class:`StackedReDo`, :class:`StackedCBP`). Each seed's trajectory equals its single-seed
run (tests/test_seeds.py checks every method to 1e-5 relative).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from syre_rl.base import Method
from syre_rl.envs.permuted import PermutedTasks
from syre_rl.methods import CBP, ReDo, ShrinkPerturb
from syre_rl.syre import Syre


class SeedLinear(nn.Linear):
    """K independent Linear layers as one: weight ``(K, out, in)``, bias ``(K, out)``, input ``(K, batch, in)``.
    A Linear to the methods and metrics (its ``in_features`` and ``out_features`` are one seed's)."""

    def __init__(self, seeds: int, in_features: int, out_features: int, device: torch.device | str | None = None):
        nn.Module.__init__(self)
        self.seeds, self.in_features, self.out_features = seeds, in_features, out_features
        self.weight = nn.Parameter(torch.empty(seeds, out_features, in_features, device=device))
        self.bias = nn.Parameter(torch.empty(seeds, out_features, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.mT)

    def extra_repr(self) -> str:
        return f"seeds={self.seeds}, in_features={self.in_features}, out_features={self.out_features}"


def stacked_net(net: nn.Sequential, seeds: int) -> nn.Sequential:
    """``net``'s layers with each Linear made a :class:`SeedLinear` of ``seeds`` copies (values unset), the
    others (activations) shared; parameter names are ``net``'s."""
    device = next(net.parameters()).device
    layers = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            layers.append(SeedLinear(seeds, layer.in_features, layer.out_features, device))
        elif next(layer.parameters(), None) is None:
            layers.append(copy.deepcopy(layer))
        else:
            raise ValueError(f"seeds can be batched for Linear layers and parameter-free ones, not {layer}")
    return nn.Sequential(*layers)


class StackedShrinkPerturb(ShrinkPerturb):
    """Shrink and perturb on a stack of seeds: each seed's noise from its own generators."""

    def __init__(self, singles: Sequence[ShrinkPerturb]):
        super().__init__(singles[0].settings)

    def _noise(self, name: str, p: torch.Tensor) -> torch.Tensor:
        return torch.stack(
            [torch.randn(p.shape[1:], generator=g, device=p.device, dtype=p.dtype) for g in self._generators[name]]
        )

    def load_singles(self, singles: Sequence[ShrinkPerturb]) -> None:
        self._generators = {}
        for name, p in zip(self.names, self.params()):
            self._generators[name] = [m._generator(name, p.device) for m in singles]  # theirs: they advance

    def store_singles(self, singles: Sequence[ShrinkPerturb]) -> None:
        pass  # the singles' generators were used in place


class StackedReDo(ReDo):
    """ReDo on a stack of seeds: each seed's unit scores, resets, counts and generators are its own."""

    def __init__(self, singles: Sequence[ReDo]):
        super().__init__(singles[0].settings)
        self.k = len(singles)

    def _setup(self) -> None:
        super()._setup()
        self._sums = [
            torch.zeros(self.k, h.incoming.out_features, device=h.incoming.weight.device) for h in self.layers
        ]

    def _record(self, i: int, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        if module.training and torch.is_grad_enabled():
            with torch.no_grad():
                x = inputs[0]  # (K, batch, units)
                self._sums[i] = self._sums[i] + x.abs().sum(1)
                self._counts[i] += x.shape[1]

    @torch.no_grad()
    def after_step(self) -> None:
        self.steps += 1
        if self.steps % self.settings.every or self._counts[0] == 0:
            return
        for k in range(self.k):
            means = [s[k] / max(1, n) for s, n in zip(self._sums, self._counts)]
            scores = [m / m.mean() if m.mean() > 0 else torch.zeros_like(m) for m in means]
            self.last[k] = self.reset(
                [score <= self.settings.tau for score in scores], self.generators[k], lambda t, k=k: t[k]
            )
            self.total[k] += self.last[k]
        self._sums = [torch.zeros_like(s) for s in self._sums]
        self._counts = [0] * len(self.layers)

    def load_singles(self, singles: Sequence[ReDo]) -> None:
        self.steps = singles[0].steps
        self._sums = [torch.stack([m._sums[i].to(s.device) for m in singles]) for i, s in enumerate(self._sums)]
        self._counts = list(singles[0]._counts)
        self.generators = [m._generators for m in singles]  # theirs: they advance in place
        self.last = [m.last_reset for m in singles]
        self.total = [m.total_reset for m in singles]

    def store_singles(self, singles: Sequence[ReDo]) -> None:
        for k, m in enumerate(singles):
            m.steps, m.last_reset, m.total_reset = self.steps, self.last[k], self.total[k]
            m._sums = [s[k].clone() for s in self._sums]
            m._counts = list(self._counts)


class StackedCBP(StackedReDo, CBP):
    """Continual backprop on a stack of seeds: each seed's utilities, ages, units owed and generators are its own."""

    @torch.no_grad()
    def after_step(self) -> None:
        self.steps += 1
        if self._counts[0] == 0:
            return
        for k in range(self.k):
            self.last[k] = self.replace(
                [s[k] for s in self._sums],
                self._counts,
                [u[k] for u in self.utility],
                [a[k] for a in self.age],
                self.owed[k],
                self.generators[k],
                lambda t, k=k: t[k],
            )
            self.total[k] += self.last[k]
        self._sums = [torch.zeros_like(s) for s in self._sums]
        self._counts = [0] * len(self.layers)

    def load_singles(self, singles: Sequence[CBP]) -> None:
        super().load_singles(singles)
        self.utility = [torch.stack([m.utility[i] for m in singles]) for i in range(len(self.layers))]
        self.age = [torch.stack([m.age[i] for m in singles]) for i in range(len(self.layers))]
        self.owed = [m.owed for m in singles]  # theirs: updated in place

    def store_singles(self, singles: Sequence[CBP]) -> None:
        super().store_singles(singles)
        for k, m in enumerate(singles):
            m.utility = [u[k].clone() for u in self.utility]
            m.age = [a[k].clone() for a in self.age]


def stacked_method(singles: Sequence[Method]) -> Method:
    """An unattached method that acts on a stack of the seeds' parameters as ``singles`` act on each.

    :raises ValueError: for a method whose per-seed state cannot be stacked
    """
    first = singles[0]
    if isinstance(first, ShrinkPerturb):
        return StackedShrinkPerturb(singles)
    if isinstance(first, CBP):
        return StackedCBP(singles)
    if isinstance(first, ReDo):
        return StackedReDo(singles)
    if isinstance(first, Syre) or type(first).state_dict is Method.state_dict:
        # the decay family keeps its per-seed state (anchors, D) in module buffers, stacked with the weights
        return type(first)(first.settings)
    raise ValueError(
        f"method {first.name} cannot train seeds as one model (its state is not stackable); run its seeds one by one"
    )


def gather(tasks: Sequence[PermutedTasks], task: int, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each seed's minibatch of ``task``, ``index[k]`` from ``tasks[k]``, as ``(K, batch, D)`` inputs and
    ``(K, batch)`` labels: one gather from the data set the seeds share, one for their permutations (the same
    values as ``tasks[k].batch(task, index[k])``)."""
    x0, y0 = tasks[0].task(0)  # the stored data set

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()

    if not all(same(t.task(0)[0], x0) and same(t.task(0)[1], y0) and t.kind == tasks[0].kind for t in tasks):
        batches = [t.batch(task, i) for t, i in zip(tasks, index)]
        return torch.stack([b[0] for b in batches]), torch.stack([b[1] for b in batches])
    x, y = x0[index], y0[index]
    if task == 0:
        return x, y
    perms = torch.stack([t.permutation(task) for t in tasks])
    if tasks[0].kind == "pixels":
        return x.gather(2, perms.unsqueeze(1).expand(-1, x.shape[1], -1)), y
    return x, perms.gather(1, y)


class SeedStack:
    """The learners of K seeds trained as one batched network, one task at a time (see the module docstring).

    :param learners: the seeds' learners, same network shape, optimizer and method (settings may differ in seed)
    """

    def __init__(self, learners: Sequence[Any]):
        self.learners = list(learners)
        first = self.learners[0]
        self.net = stacked_net(first.net, len(self.learners))
        self.optimizer = type(first.optimizer)(self.net.parameters(), **first.optimizer.defaults)
        self.method = stacked_method([lr.method for lr in self.learners]).attach(self.net, self.optimizer)
        self._load()

    def _load(self) -> None:
        """Stack the learners' weights and buffers, optimizer state and method state into this network."""
        states = [lr.net.state_dict() for lr in self.learners]
        self.net.load_state_dict({name: torch.stack([s[name] for s in states]) for name in states[0]})
        opt_states = [lr.optimizer.state_dict()["state"] for lr in self.learners]
        if any(o.keys() != opt_states[0].keys() for o in opt_states):
            raise ValueError(
                "the seeds' optimizers are at different points (some have state, some not); stack "
                "seeds that trained the same number of steps"
            )
        merged: dict[int, dict[str, Any]] = {}
        for i, entry in opt_states[0].items():
            merged[i] = {}
            for key, value in entry.items():
                if isinstance(value, torch.Tensor) and value.dim() > 0:  # per-scalar state (Adam's moments)
                    merged[i][key] = torch.stack([o[i][key] for o in opt_states])
                else:  # per-tensor state (Adam's step count): the same for every seed
                    merged[i][key] = value
        self.optimizer.load_state_dict({"state": merged, "param_groups": self.optimizer.state_dict()["param_groups"]})
        if hasattr(self.method, "load_singles"):
            self.method.load_singles([lr.method for lr in self.learners])

    def store(self) -> None:
        """Write every seed's weights, buffers, last gradients, optimizer state and method state back to its
        learner."""
        state = self.net.state_dict()
        opt_state = self.optimizer.state_dict()["state"]
        for k, learner in enumerate(self.learners):
            learner.net.load_state_dict({name: t[k] for name, t in state.items()})
            for mine, stacked in zip(learner.net.parameters(), self.net.parameters()):
                mine.grad = None if stacked.grad is None else stacked.grad[k].clone()
            own = {
                i: {
                    key: v[k].clone()
                    if isinstance(v, torch.Tensor) and v.dim() > 0
                    else v.clone()
                    if isinstance(v, torch.Tensor)
                    else v
                    for key, v in entry.items()
                }
                for i, entry in opt_state.items()
            }
            learner.optimizer.load_state_dict(
                {"state": own, "param_groups": learner.optimizer.state_dict()["param_groups"]}
            )
        if hasattr(self.method, "store_singles"):
            self.method.store_singles([lr.method for lr in self.learners])

    def train_task(
        self,
        tasks: Sequence[PermutedTasks],
        task: int,
        epochs: int = 1,
        online: bool = False,
        on_batch: Callable[[int], object] | None = None,
    ) -> list[dict[str, float]]:
        """Train every seed on ``task`` (each on its own :class:`PermutedTasks`) as
        :meth:`SupervisedLearner.train_task` trains one, then :meth:`store` the results.

        :param on_batch: called with the number of examples (of all seeds) after every minibatch
        :return: per seed, ``train_loss`` and, if online, ``online_accuracy``
        """
        self.net.train()
        k, batch_size = len(self.learners), self.learners[0].batch_size
        n = tasks[0].n_examples("train")
        device = next(self.net.parameters()).device
        out: list[dict[str, float]] = [{} for _ in range(k)]
        for epoch in range(epochs):
            orders = [torch.randperm(n, generator=lr.generator, device=device) for lr in self.learners]
            loss_sum = torch.zeros(k, device=device)
            correct = torch.zeros(k, device=device)
            for start in range(0, n, batch_size):
                x, y = gather(tasks, task, torch.stack([order[start : start + batch_size] for order in orders]))
                logits = self.net(x)
                losses = nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none")
                losses = losses.view(k, -1).mean(1)
                self.optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                self.optimizer.step()
                loss_sum += losses.detach() * y.shape[1]
                if on_batch is not None:
                    on_batch(y.numel())
                if online and epoch == 0:
                    correct += (logits.detach().argmax(2) == y).sum(1)
            for i in range(k):
                out[i]["train_loss"] = float(loss_sum[i]) / n
                if online and epoch == 0:
                    out[i]["online_accuracy"] = float(correct[i]) / n
        self.store()
        return out
