"""Task streams for continual learning: permuted-pixel or permuted-label data streams, and observation tasks for RL
(observation entries permuted, or shifted by an offset).

Task 0 is always the original problem; task ``k > 0`` is drawn from ``(seed, k)`` (or, for the distinct
permutations, from ``seed`` and the tasks before it), never from how many tasks a run has, so task k of a
continual run and a fresh network's run on task k see the same task, and the data streams, the env wrapper and the
batched envs share one definition:

- :func:`task_permutation`: a random permutation per task, drawn from ``(seed, k)`` alone. With few entries
  permutations repeat (CartPole's 4 have 24), and a task may draw the identity; the supervised streams and the
  ``permute-repeating`` observation tasks (experiments 5 and 6) use it.
- :func:`distinct_permutation`: never the identity after task 0, never a permutation an earlier task used
  (the ``permute`` observation tasks).
- :func:`task_offset`: every entry shifted by a fixed N(0, scale^2) draw per task (C-CHAIN's continual classic
  control, Tang et al. 2025; the ``offset`` observation tasks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
import torch

KINDS = ("pixels", "labels")
# observation tasks: the kinds of task switch, and the offsets' default standard deviation (C-CHAIN's)
TASK_SHIFTS = ("permute", "offset", "permute-repeating")
OFFSET_SCALE = 2.0
SPLITS = ("train", "test")


def task_permutation(n: int, task: int, seed: int = 0) -> np.ndarray:
    """The permutation of ``n`` items used by ``task``: identity for task 0, else seeded by ``(seed, task)``.

    :param n: number of items permuted (784 pixels, 10 labels, the observation size)
    :param task: task index (>= 0)
    :param seed: seed of the task stream; same seed and task -> same permutation
    :return: int64 array of shape (n,); permuted data is ``x[..., perm]`` (item ``i`` of the task is item
        ``perm[i]`` of the original)
    """
    if _check_task(task) == 0:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, int(task)]).permutation(n).astype(np.int64)


def _check_task(task: Any) -> int:
    if not (isinstance(task, (int, np.integer)) and task >= 0):
        raise ValueError(f"task must be an integer >= 0, got {task!r}")
    return int(task)


# (n, seed) -> the permutations of tasks 1, 2, ... drawn so far, with their generator
_DISTINCT: dict[tuple[int, int], tuple[np.random.Generator, list[np.ndarray], set[bytes]]] = {}


def distinct_permutation(n: int, task: int, seed: int = 0) -> np.ndarray:
    """The permutation of ``n`` items used by ``task`` in a stream of distinct ones: the identity for task 0;
    tasks 1, 2, ... draw permutations from one generator seeded by ``seed`` in task order, skipping the identity and
    every permutation drawn before, so no two tasks of a stream share one.

    :param n: number of items permuted (the observation size)
    :param task: task index (>= 0)
    :param seed: seed of the task stream; same seed and task -> same permutation
    :raises ValueError: for a task beyond the ``n! - 1`` permutations that are not the identity
    """
    task = _check_task(task)
    if task == 0:
        return np.arange(n, dtype=np.int64)
    available = math.factorial(n) - 1 if n <= 20 else None
    if available is not None and task > available:
        raise ValueError(
            f"{n} entries have only {available} permutations besides the identity, so task {task} of distinct "
            f"permutations does not exist; use fewer tasks or offset tasks"
        )
    rng, drawn, seen = _DISTINCT.setdefault((n, seed), (np.random.default_rng([seed, n]), [], set()))
    identity = np.arange(n, dtype=np.int64)
    seen.add(identity.tobytes())
    while len(drawn) < task:
        perm = rng.permutation(n).astype(np.int64)
        if perm.tobytes() not in seen:
            seen.add(perm.tobytes())
            drawn.append(perm)
    return drawn[task - 1].copy()


def task_offset(n: int, task: int, seed: int = 0, scale: float = OFFSET_SCALE) -> np.ndarray:
    """The offset added to an observation of ``n`` entries in ``task``: zeros for task 0, else a draw from
    N(0, scale^2) per entry seeded by ``(seed, task)`` (float64)."""
    task = _check_task(task)
    if not scale > 0:
        raise ValueError(f"the offsets' scale must be > 0, got {scale!r}")
    if task == 0:
        return np.zeros(n)
    return np.random.default_rng([seed, task, 1]).normal(0.0, scale, n)


@dataclass(frozen=True)
class ObservationTask:
    """What a task does to an observation: its entries permuted (entry ``i`` is entry ``permutation[i]`` of the
    original), then shifted by ``offset``."""

    permutation: np.ndarray
    offset: np.ndarray

    def __call__(self, observation: np.ndarray) -> np.ndarray:
        """``observation`` (``(..., n)``) as this task shows it, in its own dtype."""
        out = observation[..., self.permutation]
        return (out + self.offset).astype(observation.dtype, copy=False) if self.offset.any() else out


def observation_task(shift: str, n: int, task: int, seed: int = 0, scale: float = OFFSET_SCALE) -> ObservationTask:
    """Task ``task`` of the observation-task stream ``shift`` (one of :data:`TASK_SHIFTS`) for ``n`` entries and
    ``seed``: ``permute`` (:func:`distinct_permutation`), ``permute-repeating`` (:func:`task_permutation`) or
    ``offset`` (:func:`task_offset` with ``scale``).

    :raises ValueError: for an unknown shift, naming the valid ones, or a bad task
    """
    if shift not in TASK_SHIFTS:
        raise ValueError(f"unknown task shift {shift!r}; valid: {', '.join(TASK_SHIFTS)}")
    identity = np.arange(n, dtype=np.int64)
    if shift == "offset":
        return ObservationTask(identity, task_offset(n, task, seed, scale))
    draw = distinct_permutation if shift == "permute" else task_permutation
    return ObservationTask(draw(n, task, seed), np.zeros(n))


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


class TaskObservation(gym.ObservationWrapper):
    """A 1-D Box observation as the current task of an observation-task stream shows it
    (:func:`observation_task`): entries permuted (``permute``, ``permute-repeating``) or shifted (``offset``).

    Change the task with :meth:`set_task` (from a VecEnv: ``venv.env_method("set_task", k)``); it applies from the
    next observation on. ``info["task"]`` carries the current task at reset and every step. The
    ``observation_space`` bounds are permuted or shifted alike (a VecEnv keeps the space it saw first; shape and
    dtype do not change).

    :param env: an env with a 1-D ``gymnasium.spaces.Box`` observation space
    :param shift: the stream, one of :data:`TASK_SHIFTS`
    :param seed: seed of the stream; same seed -> same task k
    :param task: the task to start in (>= 0)
    :param scale: standard deviation of the offsets (``offset``)
    """

    def __init__(self, env: gym.Env, shift: str = "permute", seed: int = 0, task: int = 0, scale: float = OFFSET_SCALE):
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f"{type(self).__name__} needs a 1-D Box observation space, got {space!r}")
        observation_task(shift, space.shape[0], 0, seed, scale)  # refuses a bad shift or scale first
        super().__init__(env)
        self.shift, self.seed, self.scale = shift, seed, scale
        self.set_task(task)

    @property
    def task(self) -> int:
        """The current task index."""
        return self._task

    @property
    def permutation(self) -> np.ndarray:
        """The current permutation: observation entry ``i`` is entry ``permutation[i]`` of the wrapped env's."""
        return self._transform.permutation

    @property
    def offset(self) -> np.ndarray:
        """The current offset, added after the permutation."""
        return self._transform.offset

    def set_task(self, task: int) -> None:
        """Switch to task ``task`` (>= 0): the task's observations and observation bounds."""
        space = self.env.observation_space
        self._transform = observation_task(self.shift, space.shape[0], task, self.seed, self.scale)
        self._task = int(task)
        low, high = self._transform(space.low), self._transform(space.high)
        self.observation_space = gym.spaces.Box(low, high, dtype=space.dtype)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        """The observation as the current task shows it."""
        return self._transform(observation)

    def reset(self, **kwargs) -> tuple[np.ndarray, dict[str, Any]]:
        observation, info = super().reset(**kwargs)
        return observation, {**info, "task": self._task}

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict[str, Any]]:
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated, {**info, "task": self._task}


class PermutedObservation(TaskObservation):
    """Permute the entries of a 1-D Box observation according to the current task (:class:`TaskObservation`):
    task 0 the identity, task ``k`` the k-th of distinct permutations (:func:`distinct_permutation`), or with
    ``repeating`` the permutation drawn from ``(seed, k)`` alone (:func:`task_permutation`, experiments 5 and 6)."""

    def __init__(self, env: gym.Env, seed: int = 0, task: int = 0, repeating: bool = False):
        super().__init__(env, "permute-repeating" if repeating else "permute", seed, task)


class OffsetObservation(TaskObservation):
    """Shift every entry of a 1-D Box observation by the current task's offset (:class:`TaskObservation`): task 0
    unshifted, task ``k`` by a fixed N(0, scale^2) draw per entry seeded by ``(seed, k)`` (:func:`task_offset`)."""

    def __init__(self, env: gym.Env, seed: int = 0, task: int = 0, scale: float = OFFSET_SCALE):
        super().__init__(env, "offset", seed, task, scale)
