"""Vectorised PyBullet environments: registration, seeding, subprocess workers, normalisation files, quiet."""

import subprocess
import sys

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from syre_rl.envs import auto_vec, make_env, save_normalization


def rollout(venv, steps=20):
    venv.seed(0)  # VecEnv.reset() uses the seed given by seed(); make it explicit
    obs = [venv.reset()]
    actions = np.linspace(-1, 1, venv.num_envs * 8, dtype=np.float32).reshape(venv.num_envs, 8)
    for _ in range(steps):
        obs.append(venv.step(actions)[0])
    return np.stack(obs)


def test_same_seed_same_trajectories_in_dummy_and_subproc():
    dummy = make_env("AntBulletEnv-v0", n_envs=2, seed=3, vec="dummy")
    sub = make_env("AntBulletEnv-v0", n_envs=2, seed=3, vec="subproc")  # workers register the ids themselves
    try:
        assert isinstance(dummy, DummyVecEnv) and isinstance(sub, SubprocVecEnv)
        a, b = rollout(dummy), rollout(sub)
        assert a.shape == (21, 2, 28)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
        assert np.abs(a[-1] - a[0]).max() > 0.01  # the ant moved
    finally:
        dummy.close()
        sub.close()


def test_normalization_is_saved_atomically(tmp_path):
    venv = make_env("AntBulletEnv-v0", normalize=dict(clip_obs=5.0))
    assert isinstance(venv, VecNormalize) and venv.clip_obs == 5.0
    rollout(venv, 5)
    path = save_normalization(venv, tmp_path)
    assert path == tmp_path / "vecnormalize.pkl" and path.is_file() and not any(tmp_path.glob("*.tmp"))
    assert VecNormalize.load(str(path), make_env("AntBulletEnv-v0")).obs_rms.count == venv.obs_rms.count
    assert save_normalization(make_env("AntBulletEnv-v0"), tmp_path / "x") is None


def test_auto_vec_uses_processes_only_with_cores_to_spare():
    assert auto_vec(16, cpus=2) == "dummy" and auto_vec(2, cpus=16) == "dummy"
    assert auto_vec(16, cpus=16) == "subproc"


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(env_id="NoSuchEnv-v0"), "unknown environment id 'NoSuchEnv-v0'; PyBullet ids: .*HopperBulletEnv-v0"),
        (dict(env_id="AntBulletEnv-v0", vec="ray"), r"unknown vec kind 'ray'; choose one of \['dummy', 'subproc'\]"),
        (dict(env_id="AntBulletEnv-v0", n_envs=0), "n_envs must be an integer >= 1, got 0"),
    ],
)
def test_bad_env_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_env(**kwargs)


def test_pybullet_envs_print_nothing_of_their_own():
    """PyBullet's C code prints its build time and ``argv[0]=`` for every env (16 lines for the ant-zoo preset):
    made through make_env, in this process or in SubprocVecEnv workers, they print nothing; Python's own output
    still shows."""
    code = """
import warnings
import syre_rl.agents.rl  # imports the slippery Ant, and so pybullet, first
from syre_rl.envs.vec import make_env, silenced
dummy = make_env("AntBulletEnv-v0", n_envs=4)
dummy.reset()
subproc = make_env("SlipperyAntBulletEnv-v0", n_envs=2, vec="subproc")
subproc.reset()
subproc.step([subproc.action_space.sample()] * 2)
with silenced(1, 2):
    print("ours")
    warnings.warn("a warning of ours")
subproc.close()
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout == "ours\n"
    assert "pybullet" not in proc.stderr and "argv[0]" not in proc.stderr and "a warning of ours" in proc.stderr


def test_an_env_whose_package_is_missing_names_the_package():
    import importlib.util

    from syre_rl.envs import check_env_id

    if importlib.util.find_spec("Box2D") is not None:
        pytest.skip("Box2D is installed here")
    with pytest.raises(
        ValueError, match=r"environment CarRacing-v3 needs a package that is not installed here: .*box2d"
    ):
        check_env_id("CarRacing-v3")
