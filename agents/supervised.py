"""The supervised learner of the continual-learning harness: an MLP classifier, Adam (or SGD), a plasticity
method attached to it, and training loops that keep the whole data set on the device (minibatches are
gathered there by index; nothing is copied from the host per batch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from syre_rl.base import Method, hidden_layers
from syre_rl.envs.permuted import PermutedTasks
from syre_rl.metrics import LayerProbe

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
    """A classifier trained on one task after another, with a plasticity method attached.

    :param net: the network (its Linear layers form the hidden layers the metrics measure)
    :param method: an unattached method (:func:`syre_rl.methods.make_method`); it is attached here
    :param optimizer: ``adam`` or ``sgd``
    :param lr: step size
    :param batch_size: minibatch size (>= 1)
    :param seed: seed of the minibatch order
    :param tau, duplicate_threshold: of the plasticity metrics (:class:`syre_rl.metrics.LayerProbe`)
    :param fused: torch's fused optimizer step (one kernel for all parameters)
    """

    def __init__(
        self,
        net: nn.Module,
        method: Method,
        optimizer: str = "adam",
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
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
        self.net, self.batch_size = net, batch_size
        self.device = next(net.parameters()).device
        self.optimizer = OPTIMIZERS[optimizer](net.parameters(), lr=lr, **({"fused": True} if fused else {}))
        self.method = method.attach(net, self.optimizer)
        self.probe = LayerProbe(
            hidden_layers(net, [n for n, _ in net.named_parameters()]), method, tau, duplicate_threshold
        )
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def train_task(
        self,
        tasks: PermutedTasks,
        task: int,
        epochs: int = 1,
        online: bool = False,
        on_batch: Callable[[int], object] | None = None,
    ) -> dict[str, float]:
        """Train on ``task`` for ``epochs`` passes over its examples in a random order.

        :param online: also measure online accuracy: each minibatch is scored before the update on it
        :param on_batch: called with the number of examples after every minibatch (e.g. a progress bar)
        :return: ``train_loss`` (mean over the last pass) and, if online, ``online_accuracy`` (first pass)
        """
        self.net.train()
        n = tasks.n_examples("train")
        out: dict[str, float] = {}
        for epoch in range(epochs):
            order = torch.randperm(n, generator=self.generator, device=self.device)
            loss_sum = torch.zeros((), device=self.device)
            correct = torch.zeros((), device=self.device)
            for start in range(0, n, self.batch_size):
                x, y = tasks.batch(task, order[start : start + self.batch_size])
                logits = self.net(x)
                loss = nn.functional.cross_entropy(logits, y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                # Accumulated on the device: a .item() per batch would synchronise with the host every step.
                loss_sum += loss.detach() * len(y)
                if on_batch is not None:
                    on_batch(len(y))
                if online and epoch == 0:
                    correct += (logits.detach().argmax(1) == y).sum()
            out["train_loss"] = float(loss_sum) / n
            if online and epoch == 0:
                out["online_accuracy"] = float(correct) / n
        return out

    @torch.no_grad()
    def accuracy(self, tasks: PermutedTasks, task: int, split: str = "test", chunk: int = 10_000) -> float:
        """Accuracy on all examples of ``split`` in ``task``."""
        self.net.eval()
        n = tasks.n_examples(split)
        correct = 0
        for start in range(0, n, chunk):
            x, y = tasks.batch(task, slice(start, start + chunk), split)
            correct += int((self.net(x).argmax(1) == y).sum())
        return correct / n

    def measure(self, tasks: PermutedTasks, task: int, probe_size: int = 2000) -> dict[str, float]:
        """Plasticity metrics of every hidden layer on the first ``probe_size`` test examples of ``task``
        (``layer<i>/<metric>``, see :class:`syre_rl.metrics.LayerProbe`), plus the method's figures."""
        self.net.eval()
        x, _ = tasks.batch(task, slice(0, probe_size), "test")
        metrics = self.probe.measure(lambda: self.net(x))
        metrics.update({f"{self.method.name}/{k}": v for k, v in self.method.stats().items()})
        return metrics

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: network (with anchors), optimizer, method, order RNG,
        the probe's previous weights (for weight_change)."""
        return {
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "generator": self.generator.get_state(),
            "probe_previous": self.probe._previous,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        self.generator.set_state(state["generator"])
        self.probe._previous = state["probe_previous"]
