"""The supervised learner of the continual-learning harness: an MLP classifier, Adam (or SGD), a plasticity
method attached to it, and training loops that keep the whole data set on the device (minibatches are
gathered there by index; nothing is copied from the host per batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from syre_rl.base import hidden_layers
from syre_rl.envs.permuted import PermutedTasks, member_batch
from syre_rl.members import member_optimizer_state, member_state, stack_modules, stack_optimizer_states, stack_states
from syre_rl.methods import make_method
from syre_rl.metrics import LayerProbe
from syre_rl.settings import Settings

OPTIMIZERS = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD}
PAPER_FCN = (300, 300, 300, 300)  # syre paper, permuted MNIST: four hidden layers of 300 ReLU units


def fcn(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """A fully connected ReLU network ``in -> hidden[0] -> ... -> out`` (PyTorch's default init)."""
    sizes = [in_features, *hidden]
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out_features))


class SupervisedLearner:
    """Classifiers of K seeds (K >= 1) trained on one task after another as one network, with a plasticity method
    attached.

    One seed trains its network itself. K seeds train as K networks batched as one (:mod:`syre_rl.members`):
    one forward and one backward per minibatch, each seed's minibatch from its own order and its own tasks (the
    data set held once); the loss is the sum of the seeds' mean losses, so each seed's gradient is its own, and
    the method acts on each seed as on its own network. Each seed's state (:meth:`state_dict` with ``member``)
    is a one-seed learner's, so either resumes the other, and each seed equals its one-seed run to float
    rounding (tests/test_seeds.py).

    :param nets: the seeds' networks, of one architecture (their Linear layers form the hidden layers the
        metrics measure)
    :param method: the method's name (:data:`syre_rl.methods.METHODS`)
    :param settings: its settings, one per seed (they may differ in seed only)
    :param optimizer: ``adam`` or ``sgd``
    :param lr: step size
    :param batch_size: minibatch size (>= 1)
    :param seeds: seeds of each network's minibatch order
    :param tau, duplicate_threshold: of the plasticity metrics (:class:`syre_rl.metrics.LayerProbe`)
    :param fused: torch's fused optimizer step (one kernel for all parameters)
    """

    def __init__(
        self,
        nets: Sequence[nn.Module],
        method: str,
        settings: Sequence[Settings],
        optimizer: str = "adam",
        lr: float = 1e-3,
        batch_size: int = 64,
        seeds: Sequence[int] = (0,),
        tau: float = 0.025,
        duplicate_threshold: float = 0.99,
        fused: bool = False,
    ):
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        if not (len(nets) == len(settings) == len(seeds) >= 1):
            raise ValueError(
                f"one network, one method setting and one seed per member, got {len(nets)}, {len(settings)} and "
                f"{len(seeds)}"
            )
        self.batched = len(nets) > 1
        self.net = stack_modules(nets) if self.batched else nets[0]
        self.batch_size, self.members = batch_size, len(nets)
        self.device = next(self.net.parameters()).device
        params = self.net.parameters()
        self.optimizer = OPTIMIZERS[optimizer](params, lr=lr, **({"fused": True} if fused else {}))
        self.method = make_method(method, list(settings) if self.batched else settings[0])
        self.method.attach(self.net, self.optimizer)
        layers = hidden_layers(self.net, [n for n, _ in self.net.named_parameters()])
        self.probe = LayerProbe(layers, self.method, tau, duplicate_threshold, self.batched)
        self.generators = [torch.Generator(device=self.device).manual_seed(seed) for seed in seeds]

    def _batch(
        self, tasks: Sequence[PermutedTasks], task: int, index: list[torch.Tensor] | slice, split: str = "train"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each member's examples ``index`` of ``task``: (B, D) and (B,) for one, (K, B, D) and (K, B) for K."""
        if not self.batched:
            return tasks[0].batch(task, index if isinstance(index, slice) else index[0], split)
        return member_batch(tasks, task, index if isinstance(index, slice) else torch.stack(index), split)

    def _losses(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Each member's mean cross-entropy: a scalar for one member, (K,) for K."""
        if not self.batched:
            return nn.functional.cross_entropy(logits, y)
        return nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)

    def train_task(
        self,
        tasks: Sequence[PermutedTasks],
        task: int,
        epochs: int = 1,
        online: bool = False,
        on_batch: Callable[[int], object] | None = None,
    ) -> list[dict[str, float]]:
        """Train every member on ``task`` of its own tasks for ``epochs`` passes over its examples in its own
        random order.

        :param tasks: each member's :class:`PermutedTasks`
        :param online: also measure online accuracy: each minibatch is scored before the update on it
        :param on_batch: called with the number of examples (of all members) after every minibatch
        :return: per member, ``train_loss`` (mean over the last pass) and, if online, ``online_accuracy`` (first
            pass)
        """
        self.net.train()
        n = tasks[0].n_examples("train")
        out: list[dict[str, float]] = [{} for _ in range(self.members)]
        for epoch in range(epochs):
            orders = [torch.randperm(n, generator=g, device=self.device) for g in self.generators]
            loss_sum = torch.zeros(self.members, device=self.device)
            correct = torch.zeros(self.members, device=self.device)
            for start in range(0, n, self.batch_size):
                x, y = self._batch(tasks, task, [order[start : start + self.batch_size] for order in orders])
                logits = self.net(x)
                losses = self._losses(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                self.optimizer.step()
                # Accumulated on the device: a .item() per batch would synchronise with the host every step.
                loss_sum += losses.detach() * y.shape[-1]
                if on_batch is not None:
                    on_batch(y.numel())
                if online and epoch == 0:
                    correct += (logits.detach().argmax(-1) == y).sum(-1)
            for k in range(self.members):
                out[k]["train_loss"] = float(loss_sum[k]) / n
                if online and epoch == 0:
                    out[k]["online_accuracy"] = float(correct[k]) / n
        return out

    @torch.no_grad()
    def accuracy(
        self, tasks: Sequence[PermutedTasks], task: int, split: str = "test", chunk: int = 10_000
    ) -> list[float]:
        """Each member's accuracy on all examples of ``split`` in ``task`` (``chunk`` examples of all members
        at a time)."""
        self.net.eval()
        n = tasks[0].n_examples(split)
        correct = torch.zeros(self.members, dtype=torch.long, device=self.device)
        step = max(1, chunk // self.members)
        for start in range(0, n, step):
            x, y = self._batch(tasks, task, slice(start, start + step), split)
            correct += (self.net(x).argmax(-1) == y).sum(-1)
        return [int(c) / n for c in correct]

    def measure(self, tasks: Sequence[PermutedTasks], task: int, probe_size: int = 2000) -> list[dict[str, float]]:
        """Each member's plasticity metrics of every hidden layer on the first ``probe_size`` test examples of
        ``task`` (``layer<i>/<metric>``, see :class:`syre_rl.metrics.LayerProbe`), plus the method's figures."""
        self.net.eval()
        x, _ = self._batch(tasks, task, slice(0, probe_size), "test")
        metrics = self.probe.measure_members(lambda: self.net(x))
        for k, figures in enumerate(metrics):
            member = k if self.batched else None
            figures.update({f"{self.method.name}/{key}": v for key, v in self.method.stats(member).items()})
        return metrics

    def state_dict(self, member: int = 0) -> dict[str, Any]:
        """Everything needed to continue member ``member`` exactly, as a one-seed learner's state: network (with
        anchors), optimizer, method, order RNG, the probe's previous weights (for weight_change)."""
        previous = self.probe._previous
        if not self.batched:
            return {
                "net": self.net.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "method": self.method.state_dict(),
                "generator": self.generators[0].get_state(),
                "probe_previous": previous,
            }
        opt = self.optimizer.state_dict()
        return {
            "net": member_state(self.net.state_dict(), member),
            "optimizer": member_optimizer_state(opt, member, opt["param_groups"]),
            "method": self.method.state_dict(member),
            "generator": self.generators[member].get_state(),
            "probe_previous": None if previous is None else [t[member].clone() for t in previous],
        }

    def load_state_dict(self, states: Sequence[dict[str, Any]]) -> None:
        """Load every member's :meth:`state_dict` (a one-seed learner's), in member order."""
        if len(states) != self.members:
            raise ValueError(f"{self.members} member(s), {len(states)} state(s)")
        if not self.batched:
            state = states[0]
            self.net.load_state_dict(state["net"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.method.load_state_dict(state["method"])
        else:
            self.net.load_state_dict(stack_states([s["net"] for s in states]))
            groups = self.optimizer.state_dict()["param_groups"]
            self.optimizer.load_state_dict(stack_optimizer_states([s["optimizer"] for s in states], groups))
            for k, state in enumerate(states):
                self.method.load_state_dict(state["method"], k)
        for generator, state in zip(self.generators, states):
            generator.set_state(state["generator"])
        previous = [s["probe_previous"] for s in states]
        if any(p is None for p in previous):
            self.probe._previous = None
        else:
            self.probe._previous = previous[0] if not self.batched else [torch.stack(ts) for ts in zip(*previous)]
