"""Permuted-observation tasks for RL runs: the schedule by global steps, the fresh-network reference run on one
task, resume, and refusals."""

import json

import numpy as np
import pytest
from stable_baselines3 import PPO

from syre_rl.agents.rl import TrainConfig, train
from syre_rl.envs import PermutedObservation, TaskScheduleCallback, make_env, task_permutation

PPO_SMALL = dict(n_steps=32, batch_size=32, n_epochs=1)


def tasks_seen(every, first_task, steps=256, n_envs=2):
    env = make_env("CartPole-v1", n_envs=n_envs, seed=3, permute_seed=3)
    model = PPO("MlpPolicy", env, seed=0, device="cpu", **PPO_SMALL)
    seen = []

    class Spy(TaskScheduleCallback):
        def _on_step(self):
            result = super()._on_step()
            seen.append((self.num_timesteps, *env.get_attr("task")))
            return result

    model.learn(steps, callback=Spy(every, first_task))
    env.close()
    return seen


def test_tasks_switch_every_k_global_steps_in_every_env():
    seen = tasks_seen(every=100, first_task=0)
    for step, *tasks in seen:
        assert tasks == [step // 100] * 2, step  # both envs, task = global steps // 100 (steps count all envs)
    assert {t for _, t, _ in seen} == {0, 1, 2}


def test_a_fresh_reference_run_stays_on_its_task():
    assert {tuple(t) for _, *t in tasks_seen(every=None, first_task=4)} == {(4, 4)}


def test_a_permuted_env_sees_the_permutation_of_its_task():
    env = PermutedObservation(make_env("CartPole-v1", seed=0).envs[0].unwrapped, seed=3, task=2)
    plain, _ = env.env.reset(seed=1)
    permuted, _ = env.reset(seed=1)
    assert np.array_equal(permuted, plain[task_permutation(4, 2, 3)])


def test_train_logs_the_task_and_resumes_in_it(tmp_path):
    kwargs = dict(
        algo="ppo",
        env="CartPole-v1",
        timesteps=256,
        n_envs=1,
        permute_every=96,
        logdir=str(tmp_path),
        progress=False,
        metrics_every=0,
        checkpoint_every=64,
    )
    preset = tmp_path / "cartpole.yaml"
    preset.write_text(
        "algo: ppo\nenv: CartPole-v1\ntimesteps: 256\nn_envs: 1\nnormalize: false\n"
        "algo_kwargs: {n_steps: 32, batch_size: 32, n_epochs: 1}\n"
    )
    summary = train(TrainConfig(preset=str(preset), **kwargs))
    run = tmp_path / "CartPole-v1" / "vanilla_s0"
    rows = (run / "progress.csv").read_text().splitlines()
    column = rows[0].split(",").index("env/task")
    steps = rows[0].split(",").index("time/total_timesteps")
    cells = [r.split(",") for r in rows[1:]]
    tasks = {int(c[steps]): float(c[column]) for c in cells if c[steps] and c[column]}
    assert len(tasks) >= 6
    assert all(task == step // 96 for step, task in tasks.items()), tasks  # the task in effect after the step
    assert json.loads((run / "config.json").read_text())["permute_every"] == 96 and summary["timesteps"] == 256
    resumed = train(TrainConfig(preset=str(preset), **{**kwargs, "timesteps": 320}, resume=True))
    assert resumed["timesteps"] == 320
    last = [r.split(",") for r in (run / "progress_from_256.csv").read_text().splitlines()]
    assert [float(c[last[0].index("env/task")]) for c in last[1:] if c[last[0].index("env/task")]][-1] == 3.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(permute_every=0), "--permute-every must be >= 1, got 0"),
        (dict(first_task=-2), "--first-task must be >= 0, got -2"),
    ],
)
def test_bad_task_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_tasks_need_a_flat_observation(tmp_path):
    with pytest.raises(ValueError, match="PermutedObservation needs a 1-D Box observation space"):
        make_env("FrozenLake-v1", permute_seed=0)
