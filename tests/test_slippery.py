"""Slippery Ant: foot friction set now or at the next episode, the friction schedule, and its SB3 callback."""

import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger

import syre_rl.envs
from syre_rl.envs import FrictionSchedule, FrictionScheduleCallback, SlipperyAntBulletEnv, make_env

ID = "SlipperyAntBulletEnv-v0"
TINY_PPO = dict(n_steps=64, batch_size=64, n_epochs=1, policy_kwargs=dict(net_arch=[16]), device="cpu", seed=0)


def call(env, name, *args):
    """Call a method of the unwrapped env through gymnasium's wrappers, the way SB3's env_method does."""
    return env.get_wrapper_attr(name)(*args)


class Recorder(BaseCallback):
    """Per step: (num_timesteps after the step, info["friction"] of each env, dones)."""

    def __init__(self):
        super().__init__()
        self.rows = []

    def _on_step(self) -> bool:
        self.rows.append(
            (self.num_timesteps, [i["friction"] for i in self.locals["infos"]], self.locals["dones"].copy())
        )
        return True


class Capture(KVWriter):
    """Keeps every dump of the SB3 logger."""

    def __init__(self):
        self.dumps = []

    def write(self, key_values, key_excluded, step=0):
        self.dumps.append(dict(key_values))


def test_gym_make_finds_the_id_and_the_keyword_reaches_the_feet():
    syre_rl.envs.register_envs()  # idempotent: no re-registration warning, same spec
    env = gym.make(ID, friction=0.25)
    assert env.spec.max_episode_steps == 1000 and isinstance(env.unwrapped, SlipperyAntBulletEnv)
    assert env.observation_space.shape == (28,) and env.action_space.shape == (8,)
    assert env.get_wrapper_attr("friction") == 0.25  # before the first reset
    with pytest.raises(RuntimeError, match=r"call reset\(\) before read_friction\(\)"):
        call(env, "read_friction")
    _, info = env.reset(seed=0)
    assert info["friction"] == 0.25
    assert call(env, "read_friction") == pytest.approx([0.25] * 4)
    feet = [(f.bodies[f.bodyIndex], f.bodyPartIndex) for f in env.unwrapped.robot.feet]
    assert [link for _, link in feet] == [4, 9, 14, 19]
    default = gym.make(ID)
    default.reset(seed=0)
    assert call(default, "read_friction") == pytest.approx([1.5] * 4)  # Ant's own foot friction


def test_set_friction_acts_now_request_friction_at_the_next_reset():
    env = gym.make(ID)
    call(env, "set_friction", 0.4)  # before the simulator exists: applied by the first reset
    assert env.reset(seed=0)[1]["friction"] == 0.4 and call(env, "read_friction") == pytest.approx([0.4] * 4)
    call(env, "set_friction", 0.7)  # mid-episode, at once
    assert call(env, "read_friction") == pytest.approx([0.7] * 4)
    assert env.step(np.zeros(8))[-1]["friction"] == 0.7

    call(env, "request_friction", 3.0)
    for _ in range(3):
        assert env.step(np.zeros(8))[-1]["friction"] == 0.7
    assert call(env, "read_friction") == pytest.approx([0.7] * 4) and env.get_wrapper_attr("friction") == 0.7
    assert env.reset()[1]["friction"] == 3.0 and call(env, "read_friction") == pytest.approx([3.0] * 4)
    assert env.step(np.zeros(8))[-1]["friction"] == 3.0
    assert env.reset()[1]["friction"] == 3.0 and call(env, "read_friction") == pytest.approx([3.0] * 4)  # survives

    call(env, "request_friction", 0.1)
    call(env, "set_friction", 0.9)  # a set drops the pending request
    env.reset()
    assert call(env, "read_friction") == pytest.approx([0.9] * 4)


def test_foot_friction_changes_the_trajectory():
    def final_obs(friction):
        env = gym.make(ID, friction=friction)
        obs, _ = env.reset(seed=0)
        actions = np.sin(np.arange(8)[None, :] + 0.3 * np.arange(60)[:, None]).astype(np.float32)
        for a in actions:
            obs = env.step(a)[0]
        return obs

    base = final_obs(1.5)
    np.testing.assert_allclose(final_obs(1.5), base, atol=1e-6)  # repeatable
    assert np.abs(final_obs(0.05) - base).max() > 0.05


def test_schedule_is_log_uniform_seeded_and_piecewise_constant():
    s = FrictionSchedule(every=100, low=0.02, high=2.0, seed=0)
    v = np.array(s.values(4000))
    assert v.min() >= 0.02 and v.max() <= 2.0 and len(set(v)) == 4000
    u = (np.log(v) - math.log(0.02)) / (math.log(2.0) - math.log(0.02))  # uniform on [0, 1] if log-uniform
    assert np.histogram(u, bins=10, range=(0, 1))[0] == pytest.approx([400] * 10, abs=80)
    assert np.median(v) == pytest.approx(0.2, rel=0.1)  # the geometric mean of low and high, not (low+high)/2

    assert FrictionSchedule(100, seed=0).values(50) == s.values(50)
    assert FrictionSchedule(100, seed=0).value(10_000) == s.values(101)[100]  # lazy draws, same sequence
    assert FrictionSchedule(100, seed=1).values(50) != s.values(50)
    assert [s.phase(t) for t in (0, 99, 100, 250)] == [0, 0, 1, 2]
    assert [s.value(t) for t in (0, 99, 100, 199, 200)] == [v[0], v[0], v[1], v[1], v[2]]
    with_initial = FrictionSchedule(100, seed=0, initial=1.5)
    assert with_initial.values(5) == [1.5] + s.values(5)[1:]  # only phase 0 replaced
    assert FrictionSchedule(1, low=0.3, high=0.3).values(3) == pytest.approx([0.3] * 3)

    restored = pickle.loads(pickle.dumps(FrictionSchedule(7, 0.1, 4.0, seed=3, initial=1.5)))
    assert restored.values(20) == FrictionSchedule(7, 0.1, 4.0, seed=3, initial=1.5).values(20)
    assert repr(restored) == "FrictionSchedule(every=7, low=0.1, high=4.0, seed=3, initial=1.5)"


def test_callback_switches_each_env_at_its_episode_boundary_logs_and_resumes(tmp_path):
    schedule_args = dict(every=100, low=0.02, high=2.0, seed=5)
    schedule = FrictionSchedule(**schedule_args)
    assert 1.5 not in schedule.values(6)  # so the training-start set is visible
    # 40-step episodes: the phase starts at steps 100, 200, 300 fall inside episodes; VecNormalize and Monitor wrap.
    venv = make_env(ID, n_envs=2, vec="dummy", normalize=True, env_kwargs=dict(max_episode_steps=40))
    model = PPO("MlpPolicy", venv, **TINY_PPO)
    capture, rec = Capture(), Recorder()
    model.set_logger(Logger(None, [capture]))
    model.learn(384, callback=[FrictionScheduleCallback(schedule), rec])
    assert model.num_timesteps == 384 and len(rec.rows) == 192

    # Reference: the friction in effect switches to the latest request only when that env's episode ends.
    requested = schedule.value(0)  # set in every env at training start
    effect = [requested, requested]
    switches = [[], []]
    for t, frictions, dones in rec.rows:
        assert frictions == effect, t
        for e in range(2):
            if dones[e]:
                switches[e].append(effect[e] != requested)
                effect[e] = requested  # the auto-reset inside this step applied the pending request
        requested = schedule.value(t)  # the callback asks after the step
    assert [sum(s) for s in switches] == [3, 3]  # phases 1, 2, 3 all reached both envs
    assert rec.rows[50][0] == 102 and rec.rows[50][1] == [schedule.value(0)] * 2  # phase 1 began, episodes go on
    assert venv.env_method("read_friction") == [pytest.approx([f] * 4) for f in effect]

    logged = [(d["env/friction"], d["env/friction_phase"]) for d in capture.dumps if "env/friction" in d]
    assert logged == [(rec.rows[i][1][0], (i + 1) * 2 // 100) for i in (63, 127, 191)]
    assert [p for _, p in logged] == [1, 2, 3]

    # Resume: a new env starts at Ant's 1.5; the restored num_timesteps puts it straight into phase 3.
    model.save(tmp_path / "ppo")
    venv2 = make_env(ID, n_envs=2, vec="dummy", env_kwargs=dict(max_episode_steps=40))
    resumed = PPO.load(tmp_path / "ppo", env=venv2, device="cpu")
    assert resumed.num_timesteps == 384
    rec2 = Recorder()
    resumed.learn(
        128, reset_num_timesteps=False, callback=[FrictionScheduleCallback(FrictionSchedule(**schedule_args)), rec2]
    )
    assert schedule.phase(384) == 3 and rec2.rows[0][0] == 386 and rec2.rows[0][1] == [schedule.value(384)] * 2


def test_subproc_workers_set_request_and_read_back_their_own_friction():
    venv = make_env(ID, n_envs=2, vec="subproc", env_kwargs=dict(friction=0.3))
    try:
        venv.reset()
        assert venv.env_method("read_friction") == [pytest.approx([0.3] * 4)] * 2
        venv.env_method("set_friction", 0.7, indices=[1])
        assert venv.env_method("read_friction") == [pytest.approx([0.3] * 4), pytest.approx([0.7] * 4)]
        assert venv.get_attr("friction") == [0.3, 0.7]

        schedule = FrictionSchedule(every=100, seed=2)
        model = PPO("MlpPolicy", venv, **TINY_PPO)
        model.learn(128, callback=FrictionScheduleCallback(schedule))  # 1000-step episodes: no boundary reached
        first, second = schedule.values(2)
        assert venv.env_method("read_friction") == [pytest.approx([first] * 4)] * 2  # phase 1 only requested
        venv.reset()
        assert venv.env_method("read_friction") == [pytest.approx([second] * 4)] * 2
    finally:
        venv.close()


@pytest.mark.parametrize(
    "bad,match",
    [
        (0, "friction must be a finite number > 0, got 0"),
        (-1.0, r"friction must be a finite number > 0, got -1.0"),
        (float("nan"), "friction must be a finite number > 0, got nan"),
        (float("inf"), "friction must be a finite number > 0, got inf"),
        ("1.5", "friction must be a finite number > 0, got '1.5'"),
        (True, "friction must be a finite number > 0, got True"),
    ],
)
def test_bad_friction(bad, match):
    with pytest.raises(ValueError, match=match):
        SlipperyAntBulletEnv(friction=bad)
    with pytest.raises(ValueError, match=match):
        gym.make(ID, friction=bad)
    env = SlipperyAntBulletEnv()
    for method in (env.set_friction, env.request_friction):
        with pytest.raises(ValueError, match=match):
            method(bad)
    assert env.friction == 1.5


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(every=0), "every must be an integer >= 1 \\(steps per phase\\), got 0"),
        (dict(every=2.5), "every must be an integer >= 1 \\(steps per phase\\), got 2.5"),
        (dict(every=10, low=0), "low must be a finite number > 0, got 0"),
        (dict(every=10, high=float("inf")), "high must be a finite number > 0, got inf"),
        (dict(every=10, low=3.0, high=2.0), "low must be <= high, got low=3.0 > high=2.0"),
        (dict(every=10, initial=-0.5), "initial must be a finite number > 0, got -0.5"),
    ],
)
def test_bad_schedule(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FrictionSchedule(**kwargs)


def test_bad_schedule_queries_and_callback():
    s = FrictionSchedule(10)
    with pytest.raises(ValueError, match="step must be an integer >= 0, got -1"):
        s.value(-1)
    with pytest.raises(ValueError, match="n must be an integer >= 0, got 1.0"):
        s.values(1.0)
    with pytest.raises(ValueError, match="schedule must be a FrictionSchedule, got 0.5"):
        FrictionScheduleCallback(0.5)
