"""Observation tasks for RL runs: the task streams (distinct permutations, offsets, the published repeating
permutations), the schedule by global steps, the fresh-network reference run on one task, resume (of runs made
before the streams had names too), and refusals."""

import json
import pickle

import numpy as np
import pytest
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

from syre_rl.agents.config import parse_dataclass
from syre_rl.agents.rl import TrainConfig, train
from syre_rl.agents.runs import check_unchanged
from syre_rl.envs import (
    OffsetObservation,
    PermutedObservation,
    TaskScheduleCallback,
    make_env,
    permuted,
    task_permutation,
)
from syre_rl.envs.permuted import distinct_permutation, observation_task, task_offset
from syre_rl.envs.tasks import TaskExploration, TaskExplorationCallback

PPO_SMALL = dict(n_steps=32, batch_size=32, n_epochs=1)


def tasks_seen(every, first_task, steps=256, n_envs=2):
    env = make_env("CartPole-v1", n_envs=n_envs, seed=3, task_seed=3)
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
    for repeating, draw in ((False, distinct_permutation), (True, task_permutation)):
        env = PermutedObservation(
            make_env("CartPole-v1", seed=0).envs[0].unwrapped, seed=3, task=2, repeating=repeating
        )
        plain, _ = env.env.reset(seed=1)
        permuted, _ = env.reset(seed=1)
        assert np.array_equal(permuted, plain[draw(4, 2, 3)])


def test_distinct_permutations_never_repeat_and_never_return_to_the_identity():
    permuted._DISTINCT.clear()
    perms = [tuple(distinct_permutation(4, k, seed=0)) for k in range(24)]
    assert perms[0] == (0, 1, 2, 3) and len(set(perms)) == 24  # all 24 of 4 entries, the identity only at task 0
    permuted._DISTINCT.clear()  # asked in another order, from nothing drawn: the same permutations
    assert perms == [tuple(distinct_permutation(4, k, seed=0)) for k in reversed(range(24))][::-1]
    assert perms[1:6] != [tuple(distinct_permutation(4, k, seed=1)) for k in range(1, 6)]
    with pytest.raises(ValueError, match="4 entries have only 23 permutations besides the identity, so task 24"):
        distinct_permutation(4, 24, seed=0)
    # the published stream repeats: seed 0's tasks 2, 3 and 4 are one permutation, its task 7 is task 1's
    repeating = [tuple(task_permutation(4, k, seed=0)) for k in range(10)]
    assert repeating[2] == repeating[3] == repeating[4] and repeating[7] == repeating[1]
    assert tuple(task_permutation(4, 1, seed=3)) == (0, 1, 2, 3)  # seed 3's task 1 is no change


def test_offset_tasks_shift_every_entry_by_a_seeded_normal_draw():
    assert not task_offset(4, 0, seed=5).any()
    draws = np.stack([task_offset(4, k, seed=5) for k in range(1, 2001)])
    assert abs(draws.std() - 2.0) < 0.06 and abs(draws.mean()) < 0.07  # N(0, 2^2): 8,000 draws
    assert np.array_equal(task_offset(4, 3, seed=5), draws[2]) and not np.array_equal(task_offset(4, 3, 6), draws[2])
    assert abs(np.stack([task_offset(4, k, 5, scale=0.5) for k in range(1, 2001)]).std() - 0.5) < 0.02
    env = OffsetObservation(make_env("CartPole-v1", seed=0).envs[0].unwrapped, seed=5, task=3)
    plain, _ = env.env.reset(seed=1)
    shifted, info = env.reset(seed=1)
    assert shifted.dtype == np.float32 and info["task"] == 3
    np.testing.assert_array_equal(shifted, (plain + draws[2]).astype(np.float32))
    space = env.env.observation_space
    np.testing.assert_allclose(env.observation_space.low, space.low + draws[2], rtol=1e-6)
    assert np.array_equal(observation_task("offset", 4, 3, 5).permutation, np.arange(4))
    with pytest.raises(ValueError, match="unknown task shift 'rotate'; valid: permute, offset, permute-repeating"):
        observation_task("rotate", 4, 1)


def test_train_logs_the_task_and_resumes_in_it(tmp_path):
    kwargs = dict(
        algo="ppo",
        env="CartPole-v1",
        timesteps=256,
        n_envs=1,
        task_every=96,
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
    assert json.loads((run / "config.json").read_text())["task_every"] == 96 and summary["timesteps"] == 256
    resumed = train(TrainConfig(preset=str(preset), **{**kwargs, "timesteps": 320}, resume=True))
    assert resumed["timesteps"] == 320
    last = [r.split(",") for r in (run / "progress_from_256.csv").read_text().splitlines()]
    assert [float(c[last[0].index("env/task")]) for c in last[1:] if c[last[0].index("env/task")]][-1] == 3.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(task_every=0), "--task-every must be >= 1, got 0"),
        (dict(first_task=-2), "--first-task must be >= 0, got -2"),
        (dict(task_shift="rotate"), "--task-shift must be one of permute, offset, permute-repeating, got 'rotate'"),
        (dict(offset_scale=0.0), "--offset-scale must be a finite number > 0, got 0.0"),
        (dict(explore_per_task=True, first_task=2), "--explore-per-task restarts exploration at task switches: give"),
    ],
)
def test_bad_task_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_explore_per_task_is_refused_for_an_algorithm_without_exploration():
    with pytest.raises(ValueError, match="which ppo has not; it is for dqn, qrdqn"):
        TrainConfig(preset="cchain-cartpole", task_every=800, explore_per_task=True).resolved()
    assert TrainConfig(preset="dqn-cartpole-offset", task_every=1000, explore_per_task=True).resolved().algo == "dqn"


def test_explore_per_task_runs_the_exploration_schedule_within_each_task():
    """DQN's epsilon decays from 1.0 to 0.1 over half of each 200-step task (the run's exploration_fraction of a
    task's length), and starts again at each switch; SB3's own schedule decays once over half the run."""

    def rates(callbacks):
        env = make_vec_env("CartPole-v1", 1, seed=0)
        model = DQN("MlpPolicy", env, learning_starts=10_000, exploration_fraction=0.5, exploration_final_eps=0.1)
        seen = {}

        class Record(BaseCallback):
            def _on_step(self) -> bool:
                seen[self.num_timesteps] = self.model.exploration_rate
                return True

        model.learn(600, callback=[*callbacks, Record()])
        return model, seen

    model, per_task = rates([TaskExplorationCallback(200)])
    # at step t the rate is the previous step's: within-task step w = (t - 1) % 200, epsilon 1 - 0.9 min(w / 100, 1)
    for t in (51, 151, 251, 301, 351, 401, 451, 600):
        w = (t - 1) % 200
        assert per_task[t] == pytest.approx(1 - 0.9 * min(w / 100, 1), abs=1e-9), t
    _, once = rates([])
    assert once[251] == pytest.approx(1 - 0.9 * 250 / 300) and once[451] == pytest.approx(0.1)
    assert isinstance(model.exploration_schedule, TaskExploration)
    model.learn(200, callback=TaskExplorationCallback(200), reset_num_timesteps=False)  # as a resumed run: once
    assert not isinstance(model.exploration_schedule.base, TaskExploration)
    assert model.exploration_schedule.total == 800
    assert pickle.loads(pickle.dumps(model.exploration_schedule))(0.5) == 1.0  # step 400 of 800: a task's first


def test_tasks_need_a_flat_observation(tmp_path):
    with pytest.raises(ValueError, match="TaskObservation needs a 1-D Box observation space"):
        make_env("FrozenLake-v1", task_seed=0)


def test_the_old_flag_still_sets_the_task_length():
    assert parse_dataclass(TrainConfig, "", ["--permute-every", "500"]).task_every == 500
    assert parse_dataclass(TrainConfig, "", ["--task-every", "500", "--task-shift", "offset"]).task_shift == "offset"


def test_a_run_made_before_the_streams_had_names_resumes_as_the_published_stream(tmp_path):
    """A config.json of issue 12-20 (permute_every, no task_shift, a preset without env_kwargs and reward_scale)
    is the ``permute-repeating`` stream under today's names; asking for the new stream is refused, naming it."""
    cfg = TrainConfig(preset="cartpole-tasks", task_every=102400, task_shift="permute-repeating").resolved()
    old = cfg.to_dict()
    old["permute_every"] = old.pop("task_every")
    for key in ("task_shift", "offset_scale"):
        old.pop(key)
    for key in ("env_kwargs", "reward_scale"):
        old["hyperparameters"].pop(key)
    (tmp_path / "config.json").write_text(json.dumps(old))
    check_unchanged(tmp_path, cfg.to_dict(), cfg.RESUMABLE, "--resume", cfg.upgraded)  # no error
    new = TrainConfig(preset="cartpole-tasks", task_every=102400).resolved()
    with pytest.raises(ValueError, match="task_shift: the run has 'permute-repeating', now 'permute'"):
        check_unchanged(tmp_path, new.to_dict(), new.RESUMABLE, "--resume", new.upgraded)
    plain = TrainConfig(preset="cartpole-tasks").resolved()  # an old run without tasks: the stream is moot
    old = plain.to_dict()
    old.pop("task_shift")
    (tmp_path / "config.json").write_text(json.dumps(old))
    check_unchanged(tmp_path, plain.to_dict(), plain.RESUMABLE, "--resume", plain.upgraded)
