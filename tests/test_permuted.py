"""Permuted tasks: seeded permutations, permuted-pixel and permuted-label data streams, permuted observations."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env

from syre_rl.envs import PermutedObservation, PermutedTasks, distinct_permutation, task_permutation

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
N_FEATURES = 20


def tiny_data():
    x_train = np.arange(8 * N_FEATURES, dtype=np.float32).reshape(8, N_FEATURES)
    x_test = -np.arange(3 * N_FEATURES, dtype=np.float32).reshape(3, N_FEATURES)
    return x_train, np.array([0, 1, 2, 3, 4, 0, 1, 2]), x_test, np.array([4, 3, 3])


def test_task_permutation_is_seeded_and_task_0_is_identity():
    np.testing.assert_array_equal(task_permutation(784, 0, seed=5), np.arange(784))
    perm = task_permutation(784, 3, seed=5)
    assert perm.dtype == np.int64 and sorted(perm) == list(range(784)) and not np.array_equal(perm, np.arange(784))
    np.testing.assert_array_equal(perm, task_permutation(784, 3, seed=5))
    assert not np.array_equal(perm, task_permutation(784, 3, seed=6))
    assert not np.array_equal(perm, task_permutation(784, 4, seed=5))
    for bad in (-1, 1.0, "1"):
        with pytest.raises(ValueError, match="task must be an integer >= 0"):
            task_permutation(10, bad)


@pytest.mark.parametrize("device", DEVICES)
def test_pixel_tasks_permute_train_and_test_alike(device):
    x_train, y_train, x_test, y_test = tiny_data()
    tasks = PermutedTasks(x_train, y_train, x_test, y_test, n_tasks=3, seed=7, device=device)
    assert len(tasks) == 3 and tasks.n_features == N_FEATURES and tasks.n_examples() == 8
    x, y = tasks.task(0)
    assert x.device.type == device and y.dtype == torch.int64
    np.testing.assert_array_equal(x.cpu().numpy(), x_train)
    perms = [tasks.permutation(k).cpu().numpy() for k in range(3)]
    assert len({tuple(p) for p in perms}) == 3  # identity and two different permutations
    for k in (1, 2):
        np.testing.assert_array_equal(perms[k], task_permutation(N_FEATURES, k, seed=7))
        for split, xs, ys in (("train", x_train, y_train), ("test", x_test, y_test)):
            x, y = tasks.task(k, split)
            np.testing.assert_array_equal(x.cpu().numpy(), xs[:, perms[k]])
            np.testing.assert_array_equal(y.cpu().numpy(), ys)
    # same seed -> same tasks, whatever the number of tasks; another seed -> other tasks
    longer = PermutedTasks(x_train, y_train, x_test, y_test, n_tasks=5, seed=7)
    assert torch.equal(longer.permutation(2), tasks.permutation(2).cpu())
    assert not torch.equal(PermutedTasks(*tiny_data(), seed=8).permutation(2), longer.permutation(2))


@pytest.mark.parametrize("device", DEVICES)
def test_label_tasks_permute_classes(device):
    x_train, y_train, x_test, y_test = tiny_data()
    tasks = PermutedTasks(
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        x_test,
        y_test,
        n_tasks=4,
        kind="labels",
        seed=1,
        n_classes=10,
        device=device,
    )
    perm = tasks.permutation(3).cpu().numpy()
    assert sorted(perm) == list(range(10)) and not np.array_equal(perm, np.arange(10))
    np.testing.assert_array_equal(perm, task_permutation(10, 3, seed=1))
    x, y = tasks.task(3)
    np.testing.assert_array_equal(x.cpu().numpy(), x_train)  # inputs untouched
    np.testing.assert_array_equal(y.cpu().numpy(), perm[y_train])
    np.testing.assert_array_equal(tasks.task(3, "test")[1].cpu().numpy(), perm[y_test])
    np.testing.assert_array_equal(tasks.task(0)[1].cpu().numpy(), y_train)
    assert PermutedTasks(*tiny_data(), kind="labels").n_classes == 5  # inferred from the largest label


def test_batch_equals_slice_of_task_and_data_is_not_copied():
    x_train, y_train, x_test, y_test = tiny_data()
    tasks = PermutedTasks(x_train, y_train, x_test, y_test, n_tasks=2, examples_per_task=6)
    assert tasks.n_examples("train") == 6 and tasks.n_examples("test") == 3
    x, y = tasks.task(1)
    assert x.shape == (6, N_FEATURES) and y.shape == (6,)
    np.testing.assert_array_equal(x.numpy(), x_train[:6][:, task_permutation(N_FEATURES, 1)])
    index = torch.tensor([5, 0, 2])
    for part in (index, slice(1, 4)):
        xb, yb = tasks.batch(1, part)
        assert torch.equal(xb, x[part]) and torch.equal(yb, y[part])
    xb, yb = tasks.batch(1, torch.tensor([2]), "test")
    np.testing.assert_array_equal(xb.numpy(), x_test[[2]][:, task_permutation(N_FEATURES, 1)])
    # the numpy arrays are used in place on the CPU: one copy of the data set for all tasks
    assert np.shares_memory(tasks.task(0)[0].numpy(), x_train)
    assert np.shares_memory(tasks.task(1, "test")[1].numpy(), y_test)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(n_tasks=0), "n_tasks must be an integer >= 1, got 0"),
        (dict(kind="rows"), r"unknown kind 'rows'; choose one of \['pixels', 'labels'\]"),
        (dict(examples_per_task=9), r"examples_per_task must be None or an integer in \[1, 8\]"),
        (dict(examples_per_task=0), r"examples_per_task must be None or an integer in \[1, 8\]"),
        (dict(n_classes=4), r"labels must lie in \[0, n_classes=4\), found labels from 0 to 4"),
        (
            dict(y_test=np.array([1, 2])),
            r"test data must be x of shape \(N, D\) and y of shape \(N,\), got x \(3, 20\)",
        ),
        (dict(x_test=np.zeros((3, 5))), "same number of features, got 20 and 5"),
        (dict(x_train=np.zeros(8)), r"train data must be x of shape \(N, D\)"),
        (dict(y_train=np.zeros(8)), "train labels must be integers, got dtype torch.float64"),
    ],
)
def test_arguments_are_validated(change, message):
    args = dict(zip(["x_train", "y_train", "x_test", "y_test"], tiny_data()))
    with pytest.raises(ValueError, match=message):
        PermutedTasks(**{**args, **change})


def test_task_and_split_are_validated():
    tasks = PermutedTasks(*tiny_data(), n_tasks=2)
    with pytest.raises(ValueError, match=r"task must be an integer in \[0, 2\), got 2"):
        tasks.task(2)
    with pytest.raises(ValueError, match=r"unknown split 'val'; choose one of \['train', 'test'\]"):
        tasks.batch(0, slice(0, 1), "val")


class Counter(gym.Env):
    """Observation = distinct values per entry, plus the number of steps; distinct bounds per entry."""

    observation_space = gym.spaces.Box(-np.arange(1, 7, dtype=np.float32), np.arange(10, 16, dtype=np.float32))
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, False, False, {"t": self.t}

    def _obs(self):
        return np.arange(6, dtype=np.float32) + self.t


def test_observation_wrapper_permutes_observations_and_bounds():
    env = PermutedObservation(Counter(), seed=3)
    obs, info = env.reset()
    assert env.task == 0 and info == {"task": 0}
    np.testing.assert_array_equal(obs, np.arange(6))  # task 0 is the identity
    env.set_task(2)
    perm = distinct_permutation(6, 2, seed=3)
    assert not np.array_equal(perm, np.arange(6))
    np.testing.assert_array_equal(env.permutation, perm)
    obs, _, _, _, info = env.step(0)
    np.testing.assert_array_equal(obs, (np.arange(6) + 1)[perm])
    assert info == {"t": 1, "task": 2}
    np.testing.assert_array_equal(env.observation_space.low, -np.arange(1, 7)[perm])
    np.testing.assert_array_equal(env.observation_space.high, np.arange(10, 16)[perm])
    assert env.observation_space.dtype == np.float32 and env.observation_space.contains(obs)
    np.testing.assert_array_equal(PermutedObservation(Counter(), seed=3, task=2).permutation, perm)  # same seed
    env.set_task(0)
    np.testing.assert_array_equal(env.step(0)[0], np.arange(6) + 2)
    np.testing.assert_array_equal(env.observation_space.low, Counter.observation_space.low)


def test_observation_wrapper_refuses_other_spaces():
    env = Counter()
    env.observation_space = gym.spaces.Discrete(3)
    with pytest.raises(ValueError, match="needs a 1-D Box observation space, got Discrete"):
        PermutedObservation(env)
    env.observation_space = gym.spaces.Box(0, 1, (2, 3))
    with pytest.raises(ValueError, match=r"needs a 1-D Box observation space, got Box\(0.0, 1.0, \(2, 3\)"):
        PermutedObservation(env)
    with pytest.raises(ValueError, match="task must be an integer >= 0, got -1"):
        PermutedObservation(Counter()).set_task(-1)


def test_observation_wrapper_on_pendulum_through_vec_env():
    plain = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    permuted = make_vec_env(
        "Pendulum-v1", n_envs=2, seed=0, wrapper_class=PermutedObservation, wrapper_kwargs=dict(seed=1)
    )
    actions = np.array([[0.5], [-1.0]], dtype=np.float32)
    np.testing.assert_array_equal(permuted.reset(), plain.reset())  # task 0
    task = 1
    perm = distinct_permutation(3, task, seed=1)
    assert not np.array_equal(perm, np.arange(3))  # never the identity after task 0
    permuted.env_method("set_task", task)
    assert permuted.get_attr("task") == [task, task]
    for _ in range(3):
        obs, _, _, infos = permuted.step(actions)
        raw = plain.step(actions)[0]
        assert not np.array_equal(obs, raw)
        np.testing.assert_array_equal(obs, raw[:, perm])
        assert [info["task"] for info in infos] == [task, task]
    low = permuted.get_attr("observation_space")[0].low
    np.testing.assert_array_equal(low, np.array([-1.0, -1.0, -8.0], dtype=np.float32)[perm])
