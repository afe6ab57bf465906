"""Permuted tasks for continual learning: permuted-pixel or permuted-label data streams, permuted observations.

Task 0 is always the original problem (identity permutation); task ``k > 0`` uses a random permutation drawn
by :func:`task_permutation` from ``(seed, k)`` alone, so a task does not depend on how many tasks there are
or on the order in which tasks are visited, and the data streams and the env wrapper share one definition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

KINDS = ("pixels", "labels")
SPLITS = ("train", "test")


def task_permutation(n: int, task: int, seed: int = 0) -> np.ndarray:
    """The permutation of ``n`` items used by ``task``: identity for task 0, else seeded by ``(seed, task)``.

    :param n: number of items permuted (784 pixels, 10 labels, the observation size)
    :param task: task index (>= 0)
    :param seed: seed of the task stream; same seed and task -> same permutation
    :return: int64 array of shape (n,); permuted data is ``x[..., perm]`` (item ``i`` of the task is item
        ``perm[i]`` of the original)
    """
    if not (isinstance(task, (int, np.integer)) and task >= 0):
        raise ValueError(f"task must be an integer >= 0, got {task!r}")
    if task == 0:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, int(task)]).permutation(n).astype(np.int64)


class PermutedTasks:
    """A sequence of supervised tasks made from one data set by permuting its pixels or its labels.

    The data set is held once, on ``device``; a task is a gather with a permutation tensor on that device,
    either of the whole task (:meth:`task`) or of a minibatch only (:meth:`batch`). For the online protocol
    (each example of a task seen once, minibatch 1 or more) iterate over ``range(tasks.n_examples("train"))``
    in chunks and call :meth:`batch`.

    :param x_train: (N, D) inputs, numpy array or torch tensor (e.g. the fields of
        :class:`syre_rl.envs.mnist.MnistData`, so ``PermutedTasks(*load_mnist())`` works)
    :param y_train: (N,) integer labels in ``[0, n_classes)``
    :param x_test: (M, D) inputs with the same D
    :param y_test: (M,) integer labels
    :param n_tasks: number of tasks (>= 1); task 0 is the original data
    :param kind: ``pixels`` (permute the D input features, train and test alike) or ``labels`` (permute the
        classes: label ``c`` of the original becomes ``perm[c]``)
    :param seed: seed of the permutations; same seed -> same tasks
    :param examples_per_task: use only the first N training examples in every task (None: all); the test
        split is always whole
    :param n_classes: number of classes for ``kind="labels"``; None: 1 + the largest label in the data
    :param device: where the data and permutations live (e.g. ``"cuda"``); None keeps the device of
        ``x_train`` (CPU for numpy arrays, which are then used without a copy)
    """

    def __init__(
        self,
        x_train: np.ndarray | torch.Tensor,
        y_train: np.ndarray | torch.Tensor,
        x_test: np.ndarray | torch.Tensor,
        y_test: np.ndarray | torch.Tensor,
        n_tasks: int = 10,
        kind: str = "pixels",
        seed: int = 0,
        examples_per_task: int | None = None,
        n_classes: int | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        if not (isinstance(n_tasks, int) and n_tasks >= 1):
            raise ValueError(f"n_tasks must be an integer >= 1, got {n_tasks!r}")
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; choose one of {list(KINDS)}")
        x_train, y_train, x_test, y_test = (torch.as_tensor(a) for a in (x_train, y_train, x_test, y_test))
        device = torch.device(device) if device is not None else x_train.device
        for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{split} data must be x of shape (N, D) and y of shape (N,), "
                    f"got x {tuple(x.shape)} and y {tuple(y.shape)}"
                )
            if y.is_floating_point() or y.is_complex():
                raise ValueError(f"{split} labels must be integers, got dtype {y.dtype}")
        if x_train.shape[1] != x_test.shape[1]:
            raise ValueError(
                f"train and test inputs must have the same number of features, "
                f"got {x_train.shape[1]} and {x_test.shape[1]}"
            )
        if examples_per_task is not None and not (
            isinstance(examples_per_task, int) and 1 <= examples_per_task <= len(x_train)
        ):
            raise ValueError(
                f"examples_per_task must be None or an integer in [1, {len(x_train)}] "
                f"(the training set size), got {examples_per_task!r}"
            )
        largest = int(max(y_train.max(), y_test.max()))
        n_classes = largest + 1 if n_classes is None else n_classes
        if largest >= n_classes or int(min(y_train.min(), y_test.min())) < 0:
            raise ValueError(
                f"labels must lie in [0, n_classes={n_classes}), found labels from "
                f"{int(min(y_train.min(), y_test.min()))} to {largest}"
            )

        self.n_tasks, self.kind, self.seed, self.n_classes, self.device = n_tasks, kind, seed, n_classes, device
        self.n_features = x_train.shape[1]
        # slicing is a view: shortening tasks costs no copy; .to() copies only when the device changes
        self._data = {
            "train": (x_train[:examples_per_task].to(device), y_train[:examples_per_task].to(device, torch.long)),
            "test": (x_test.to(device), y_test.to(device, torch.long)),
        }
        size = self.n_features if kind == "pixels" else n_classes
        self._perms = torch.from_numpy(np.stack([task_permutation(size, k, seed) for k in range(n_tasks)])).to(device)

    def __len__(self) -> int:
        return self.n_tasks

    def n_examples(self, split: str = "train") -> int:
        """Number of examples of ``split`` in every task (``examples_per_task`` for a shortened train split)."""
        return len(self._split(split)[1])

    def permutation(self, task: int) -> torch.Tensor:
        """The int64 permutation of task ``task`` on the device: of the D features (``pixels``) or of the
        classes (``labels``); see :func:`task_permutation` for how it is applied."""
        if not (isinstance(task, (int, np.integer)) and 0 <= task < self.n_tasks):
            raise ValueError(f"task must be an integer in [0, {self.n_tasks}), got {task!r}")
        return self._perms[task]

    def task(self, task: int, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """All examples of ``split`` as seen in task ``task``.

        :return: ``(x, y)``, x of shape (N, D) and y int64 of shape (N,), on the device. The unpermuted part
            (x for ``labels``; both for task 0) is the stored tensor itself: do not modify it in place.
        """
        x, y = self._split(split)
        return self._permute(task, x, y)

    def batch(self, task: int, index: torch.Tensor | slice, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """Examples ``index`` of ``split`` as seen in task ``task``, permuting only those examples.

        :param index: a slice, or an integer tensor of example indices (on the device, to avoid a transfer)
        :return: ``(x, y)`` as in :meth:`task`, for the selected examples
        """
        x, y = self._split(split)
        return self._permute(task, x[index], y[index])

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose one of {list(SPLITS)}")
        return self._data[split]

    def _permute(self, task: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        perm = self.permutation(task)
        if task == 0:
            return x, y
        return (x[:, perm], y) if self.kind == "pixels" else (x, perm[y])


def member_batch(
    tasks: Sequence[PermutedTasks], task: int, index: torch.Tensor | slice, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each member's examples of ``task`` for K networks batched as one, member k's from ``tasks[k]`` (its own
    seed's permutations): ``index[k]`` (a (K, B) index tensor), or the same slice for every member. Returns
    ``(K, B, D)`` inputs and ``(K, B)`` labels, the values of ``tasks[k].batch(task, index[k], split)``, with one
    gather from the data set the members share and one for their permutations."""
    x0, y0 = tasks[0].task(0, split)  # the stored data set

    def same(a: torch.Tensor, b: torch.Tensor) -> bool:
        return a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride()

    shared = all(same(t.task(0, split)[0], x0) and same(t.task(0, split)[1], y0) for t in tasks)
    if not shared or any(t.kind != tasks[0].kind for t in tasks):
        parts = [t.batch(task, index if isinstance(index, slice) else i, split) for t, i in zip(tasks, index)]
        return torch.stack([x for x, _ in parts]), torch.stack([y for _, y in parts])
    x, y = x0[index], y0[index]
    if isinstance(index, slice):
        x, y = x.expand(len(tasks), *x.shape), y.expand(len(tasks), *y.shape)
    if task == 0:
        return x, y
    perms = torch.stack([t.permutation(task) for t in tasks])
    if tasks[0].kind == "pixels":
        return x.gather(2, perms.unsqueeze(1).expand(-1, x.shape[1], -1)), y
    return x, perms.gather(1, y)


class PermutedObservation(gym.ObservationWrapper):
    """Permute the entries of a 1-D Box observation according to the current task.

    Task 0 is the identity; task ``k`` uses ``task_permutation(obs_dim, k, seed)``. Change the task with
    :meth:`set_task` (from a VecEnv: ``venv.env_method("set_task", k)``); it applies from the next
    observation on. ``info["task"]`` carries the current task at reset and every step. ``observation_space``
    bounds are permuted alike (a VecEnv keeps the space it saw first; shape and dtype do not change).

    :param env: an env with a 1-D ``gymnasium.spaces.Box`` observation space
    :param seed: seed of the permutations; same seed -> same permutation per task
    :param task: the task to start in (>= 0)
    """

    def __init__(self, env: gym.Env, seed: int = 0, task: int = 0) -> None:
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"PermutedObservation needs a 1-D Box observation space, got {space!r}")
        super().__init__(env)
        self.seed = seed
        self.set_task(task)

    @property
    def task(self) -> int:
        """The current task index."""
        return self._task

    @property
    def permutation(self) -> np.ndarray:
        """The current permutation: observation entry ``i`` is entry ``permutation[i]`` of the wrapped env's."""
        return self._perm

    def set_task(self, task: int) -> None:
        """Switch to task ``task`` (>= 0): new permutation of observations and of the observation bounds."""
        space = self.env.observation_space
        self._perm = task_permutation(space.shape[0], task, self.seed)
        self._task = int(task)
        self.observation_space = gym.spaces.Box(space.low[self._perm], space.high[self._perm], dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The observation with its entries permuted."""
        return observation[self._perm]

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = super().reset(**kwargs)
        return observation, {**info, "task": self._task}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated, {**info, "task": self._task}
