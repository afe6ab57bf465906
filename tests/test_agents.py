"""PPO agents from presets: method selection, twins, the training run and its logs, bad input."""

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from syre_rl import MethodActorCriticPolicy, SyreActorCriticPolicy
from syre_rl.agents import TrainConfig, available_presets, build_model, load_preset, train
from syre_rl.envs import make_env
from syre_rl.syre import DecaySettings, SyreSettings

TINY = str(Path(__file__).parent / "tiny-preset.yaml")


def test_presets_ship_and_hold_the_reference_settings():
    assert {"ant-zoo", "dohare"} <= set(available_presets())
    zoo, dohare = load_preset("ant-zoo"), load_preset("dohare")
    assert zoo.n_envs == 16 and zoo.normalize is True and zoo.algo_kwargs["use_sde"] is True
    assert zoo.algo_kwargs["learning_rate"] == 3e-5 and zoo.algo_kwargs["clip_range"] == 0.4
    assert dohare.algo_kwargs["n_steps"] * dohare.n_envs // dohare.algo_kwargs["batch_size"] == 16  # minibatches
    assert dohare.algo_kwargs["max_grad_norm"] == float("inf") and dohare.normalize is False
    assert zoo.rollout(16) == 8192 and dohare.rollout(1) == 2048


@pytest.mark.parametrize(
    "kwargs,method",
    [
        (dict(), "vanilla"),
        (dict(syre=True), "syre"),
        (dict(syre=True, syre_ar_eps=0.01), "syre-ar"),
        (dict(weight_decay=1e-3), "l2"),
        (dict(method="redo"), "redo"),
        (dict(method="syre", syre_ar_eps=0.1), "syre-ar"),
        (dict(method="syre", method_args={"ar_eps": 0.2}), "syre-ar"),
    ],
)
def test_method_names(kwargs, method):
    assert TrainConfig(preset=TINY, **kwargs).resolved().method == method


def test_resolved_fills_preset_and_machine_defaults():
    cfg = TrainConfig(preset="dohare", syre=True, syre_gamma=0.01).resolved()
    assert (cfg.env, cfg.n_envs, cfg.timesteps, cfg.vec) == ("AntBulletEnv-v0", 1, 20_000_768, "dummy")
    assert cfg.method_settings == SyreSettings(gamma=0.01, scale=1.0, ar_eps=0.0, decoupled=False, seed=0)
    assert cfg.targets == "actor,critic" and cfg.threads == 1  # the measured default
    assert TrainConfig(n_envs=8, vec="subproc").resolved().threads == 1
    cfg = TrainConfig(preset="dohare", method="redo", method_args={"tau": 0.1, "every": 50}, targets="critic", seed=3)
    assert cfg.resolved().method_settings.to_dict() == dict(tau=0.1, every=50, moment_reset="zero", seed=3)
    cfg = TrainConfig(method="l2", method_args={"gamma": 1e-2, "decoupled": True}).resolved()
    assert cfg.method_settings.to_dict() == dict(gamma=0.01, decoupled=True)  # the preset's scale is not l2's
    assert TrainConfig(weight_decay=1e-4).resolved().method_settings == DecaySettings(gamma=1e-4)


@pytest.mark.parametrize("method", ["vanilla", "syre", "l2"])
def test_twins_share_initial_weights(method):
    """vanilla, syre and l2 built from one preset and seed differ only by the anchors."""
    env = make_env("AntBulletEnv-v0", n_envs=1, seed=0)
    kwargs = {"vanilla": {}, "syre": dict(syre=True, syre_scale=0.5), "l2": dict(weight_decay=1e-3)}[method]
    vanilla = build_model(TrainConfig(preset="dohare", seed=7, device="cpu").resolved(), env)
    model = build_model(TrainConfig(preset="dohare", seed=7, device="cpu", **kwargs).resolved(), env)
    anchors = {}
    if method != "vanilla":
        handles = model.policy.methods
        anchors = {n: a for h in handles.values() for n, a in zip(h.names, h.anchors())}
        assert all(h.settings.gamma == 1e-3 for h in handles.values())
        assert all(h.settings.scale == (0.5 if method == "syre" else 0.0) for h in handles.values())
    params = dict(model.policy.named_parameters())
    for name, p in vanilla.policy.named_parameters():
        assert torch.equal(params[name], p + anchors.get(name, 0)), name
    assert model.policy.optimizer.defaults["betas"] == (0.9, 0.999)  # standard PPO; dohare-betas has (0.99, 0.99)
    env.close()


def test_train_writes_logs_model_and_summary(tmp_path):
    summary = train(
        TrainConfig(preset=TINY, syre=True, n_envs=2, logdir=str(tmp_path), progress=False, syre_gamma=0.02)
    )
    run = tmp_path / "AntBulletEnv-v0" / "syre_s0"
    assert summary["run_dir"] == str(run) and summary["timesteps"] == 256 and summary["steps_per_s"] > 0
    assert json.loads((run / "summary.json").read_text()) == summary
    config = json.loads((run / "config.json").read_text())
    assert config["method"] == "syre" and config["method_settings"]["gamma"] == 0.02
    assert config["method_settings"]["scale"] == 0.1  # from the preset
    assert config["hyperparameters"]["algo_kwargs"] == {"n_steps": 128, "batch_size": 64, "n_epochs": 1}
    assert (run / "model.zip").is_file() and (run / "vecnormalize.pkl").is_file()  # the preset normalises
    events = EventAccumulator(str(run))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"syre/actor/penalty", "syre/critic/anchor_distance", "train/value_loss", "time/fps"} <= tags
    dist = [e.value for e in events.Scalars("syre/actor/anchor_distance")]
    assert len(dist) == 1 and 0 < dist[0] < 1  # one value per step: after the rollout (the run's one step, 256)
    assert len(events.Scalars("train/value_loss")) == 1  # the last update's figures are flushed too
    rows = list(csv.DictReader(open(run / "progress.csv")))
    ends = [float(r["syre/actor/anchor_distance"]) for r in rows if r["syre/actor/anchor_distance"]]
    assert len(ends) == 2 and ends[0] == pytest.approx(dist[0], rel=1e-6) and ends[1] != ends[0]  # CSV: the end too

    again = train(TrainConfig(preset=TINY, logdir=str(tmp_path), progress=False))
    assert again["run_dir"] == str(tmp_path / "AntBulletEnv-v0" / "vanilla_s0")
    third = train(TrainConfig(preset=TINY, logdir=str(tmp_path), progress=False))
    assert third["run_dir"].endswith("vanilla_s0_2")  # an existing run is never overwritten


def test_saved_model_and_normalization_reload(tmp_path):
    from stable_baselines3 import PPO

    summary = train(
        TrainConfig(
            preset=TINY, syre=True, logdir=str(tmp_path), progress=False, save=str(tmp_path / "out" / "ant.zip")
        )
    )
    model = PPO.load(summary["model"], device="cpu")
    assert isinstance(model.policy, MethodActorCriticPolicy) and summary["model"].endswith("out/ant.zip")
    env = VecNormalize.load(str(tmp_path / "out" / "vecnormalize.pkl"), make_env("AntBulletEnv-v0"))
    assert env.obs_rms.count > 256
    action, _ = model.predict(env.reset(), deterministic=True)
    assert action.shape == (1, 8) and np.all(np.abs(action) <= 1)
    env.close()


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(syre_gamma=0.1), "--syre-gamma given without --syre; add --syre or drop them"),
        (dict(syre_targets="actor", syre_scale=0.1), "--syre-scale, --syre-targets given without --syre"),
        (dict(syre=True, weight_decay=1e-3), "--weight-decay is the l2 method; it cannot go with method syre"),
        (dict(syre=True, method="redo"), "--syre and --method redo are different methods; choose one"),
        (dict(weight_decay=-1.0), "l2 gamma must be a finite number >= 0, got -1.0"),
        (dict(method="redo", method_args={"gamma": 0.1}), r"redo has no setting 'gamma' \(valid: tau, every"),
        (dict(method="syre", method_args={"gama": 0.1}), "syre has no setting 'gama'; did you mean 'gamma'?"),
        (dict(method="syre", method_args={"gamma": True}), "syre gamma must be a number, got True"),
        (dict(method="syre", method_args={"seed": 1.7}), "syre seed must be an integer, got 1.7"),
        (dict(timesteps=200), r"--timesteps 200 is not a whole number of rollouts of 128 steps .* use 128 or 256"),
        (dict(timesteps=100), r"--timesteps 100 is not a whole number of rollouts of 128 steps .* use 128$"),
        (dict(syre=True, syre_gamma=True), "train syre_gamma must be a number or null, got True"),
        (dict(seed=1.5), "train seed must be an integer, got 1.5"),
        (dict(method="l2", targets="legs"), "targets must be one or more of"),
        (dict(friction_every=1000), "--friction-every needs a slippery env"),
        (dict(env="SlipperyAntBulletEnv-v0", friction_every=0), "every must be an integer >= 1"),
        (dict(metrics_every=-1), "--metrics-every must be >= 0"),
        (dict(threads=-1), "--threads must be >= 1"),
        (dict(targets="actor"), "--targets given with the vanilla method"),
        (dict(syre=True, syre_gamma=-0.5), "gamma must be a finite number >= 0, got -0.5"),
        (dict(syre=True, syre_scale=-1.0), "scale must be a finite number >= 0, got -1.0"),
        (dict(syre=True, syre_ar_eps=1.0), r"ar_eps must be a finite number in \[0, 1\), got 1.0"),
        (dict(syre=True, syre_targets="actor,pi"), r"targets must be one or more of .*got 'actor,pi'"),
        (
            dict(preset="nope"),
            "unknown preset 'nope'; available: ant-zoo, cartpole-tasks, cchain-acrobot, cchain-cartpole, dohare",
        ),
        (
            dict(preset="nope.yaml"),
            "unknown preset 'nope.yaml'; available: ant-zoo, cartpole-tasks, cchain-acrobot, cchain-cartpole, dohare",
        ),
        (dict(env="AntBullet-v9"), "unknown environment id 'AntBullet-v9'; PyBullet ids: .*AntBulletEnv-v0"),
        (dict(n_envs=0), "--n-envs must be >= 1, got 0"),
        (dict(timesteps=0), "--timesteps must be >= 1, got 0"),
        (dict(device="gpu"), "unknown --device 'gpu'; use auto, cpu, cuda or cuda:N"),
        (dict(syre=True, syre_targets="features"), "target 'features' has no Linear, Conv or recurrent layer"),
    ],
)
def test_bad_input_is_refused_before_training(kwargs, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        train(TrainConfig(**{"logdir": str(tmp_path), "preset": TINY, **kwargs}))
    assert not any(tmp_path.iterdir())  # nothing was started


def test_slippery_run_changes_friction_and_logs_it(tmp_path):
    summary = train(
        TrainConfig(
            preset=TINY,
            env="SlipperyAntBulletEnv-v0",
            friction_every=128,
            timesteps=512,
            method="l2",
            logdir=str(tmp_path),
            progress=False,
        )
    )
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    friction = [(e.step, e.value) for e in events.Scalars("env/friction")]
    phases = [e.value for e in events.Scalars("env/friction_phase")]
    assert [s for s, _ in friction] == [128, 256, 384, 512] and phases == [1, 2, 3, 4]
    # no episode ends in 512 steps (1000-step episodes unless the ant falls), so the friction in effect stays
    # the one of phase 0, as drawn by the schedule seeded with the run's seed
    from syre_rl.envs import FrictionSchedule

    assert friction[0][1] == pytest.approx(FrictionSchedule(128, seed=0).value(0))
    assert "l2/actor/penalty" in events.Tags()["scalars"]
    assert "plasticity/critic/layer1/dead_units" in events.Tags()["scalars"]


def test_checkpoint_and_resume_continue_the_run_in_its_friction_phase(tmp_path):
    from syre_rl.envs import FrictionSchedule

    common = dict(
        preset=TINY,
        env="SlipperyAntBulletEnv-v0",
        friction_every=256,
        method="syre",
        logdir=str(tmp_path),
        progress=False,
        checkpoint_every=128,
        metrics_every=0,
    )
    first = train(TrainConfig(timesteps=384, **common))
    run = Path(first["run_dir"])
    assert (run / "checkpoint.ckpt").is_file() and (run / "checkpoint.ckpt.prev").is_file()  # and the one before
    import io
    import pickle

    from stable_baselines3 import PPO

    from syre_rl.agents.runs import read_verified

    payload = pickle.loads(read_verified(run / "checkpoint.ckpt"))
    assert pickle.loads(payload["normalize"]).obs_rms.count > 384  # the VecNormalize statistics ride along
    checkpoint = PPO.load(io.BytesIO(payload["model"]), device="cpu")
    final = PPO.load(run / "model.zip", device="cpu")
    assert checkpoint.num_timesteps == 384 and checkpoint._n_updates == final._n_updates == 3  # trained on all
    for a, b in zip(checkpoint.policy.parameters(), final.policy.parameters()):
        assert torch.equal(a, b)
    resumed = train(TrainConfig(timesteps=640, resume=True, **common))
    assert resumed["run_dir"] == str(run) and resumed["timesteps"] == 640
    assert (run / "progress.csv").is_file() and (run / "progress_from_384.csv").is_file()
    events = EventAccumulator(str(run))
    events.Reload()
    steps = [e.step for e in events.Scalars("env/friction")]
    assert steps == [128, 256, 384, 512, 640]
    # resumed at step 384 (phase 1): the friction is set at once to phase 1's value, not to phase 0's
    schedule = FrictionSchedule(256, seed=0)
    after = [e.value for e in events.Scalars("env/friction") if e.step > 384]
    assert after[0] == pytest.approx(schedule.value(384)) and schedule.value(384) != schedule.value(0)
    loaded = PPO.load(resumed["model"], device="cpu")
    assert loaded.policy.methods["actor"].name == "syre"
    with pytest.raises(ValueError, match="--resume: the run in .* is finished at 640 steps; give --timesteps above"):
        train(TrainConfig(timesteps=640, resume=True, **common))
    with pytest.raises(ValueError, match="--resume: no run with a config.json"):
        train(TrainConfig(**{**common, "method": "l2", "resume": True, "timesteps": 640}))


@pytest.mark.parametrize(
    "change,keys",
    [
        (dict(syre_gamma=0.5, syre_scale=0.01), ["syre_gamma", "syre_scale", "method_settings"]),
        (dict(n_envs=2), ["n_envs"]),
        (dict(env="SlipperyAntBulletEnv-v0", friction_every=2000), ["env", "friction_every"]),
    ],
)
def test_resume_refuses_every_changed_setting(tmp_path, change, keys):
    common = dict(preset=TINY, logdir=str(tmp_path), progress=False, metrics_every=0, syre=True)
    first = train(TrainConfig(**common))
    if "env" in change:  # a run of the slippery env to resume with another friction period
        first = train(TrainConfig(**{**common, "env": "SlipperyAntBulletEnv-v0", "friction_every": 1000}))
    with pytest.raises(ValueError) as error:
        train(TrainConfig(**{**common, **change}, timesteps=512, resume=True))
    message = str(error.value)
    assert message.startswith(f"--resume of {first['run_dir']} with other settings than it was made with (")
    for key in keys if "env" not in change else ["friction_every"]:
        assert f"{key}: the run has " in message
    assert "settings that may change: resume, progress, threads, device, logdir, guard, timesteps" in message


def test_a_second_process_cannot_train_in_a_run_folder(tmp_path):
    from tests.conftest import held_by_another_process

    common = dict(preset=TINY, logdir=str(tmp_path), progress=False, metrics_every=0)
    run = Path(train(TrainConfig(**common))["run_dir"])
    with held_by_another_process(run):
        with pytest.raises(ValueError, match=r"vanilla_s0 is in use by another process"):
            train(TrainConfig(**common, timesteps=512, resume=True))
    assert train(TrainConfig(**common, timesteps=512, resume=True))["timesteps"] == 512


def test_a_damaged_ppo_checkpoint_is_refused(tmp_path):
    common = dict(preset=TINY, logdir=str(tmp_path), progress=False, metrics_every=0, checkpoint_every=128)
    run = Path(train(TrainConfig(**common))["run_dir"])
    checkpoint = run / "checkpoint.ckpt"
    raw = bytearray(checkpoint.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"checkpoint.ckpt is damaged .*previous good checkpoint is kept as"):
        train(TrainConfig(**common, timesteps=512, resume=True))
    checkpoint.unlink()  # the kept previous one (step 128) takes over
    assert train(TrainConfig(**common, timesteps=512, resume=True))["timesteps"] == 512


def test_after_a_crash_each_step_is_logged_once(tmp_path):
    from stable_baselines3.common.callbacks import BaseCallback

    class Crash(BaseCallback):
        def _on_rollout_end(self):
            if self.num_timesteps >= 512:
                raise KeyboardInterrupt  # after the checkpoint at 256: steps 384 and 512 are redone on resume

        def _on_step(self):
            return True

    common = dict(
        preset=TINY, logdir=str(tmp_path), progress=False, metrics_every=0, checkpoint_every=256, timesteps=768
    )
    with pytest.raises(KeyboardInterrupt):
        train(TrainConfig(**common), callbacks=[Crash()])
    summary = train(TrainConfig(**common, resume=True))
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    steps = [e.step for e in events.Scalars("time/fps")]
    assert steps == sorted(set(steps)) and steps[-1] == 768  # each step once
    import csv

    rows = [
        int(r["time/total_timesteps"])
        for name in ("progress.csv", "progress_from_256.csv")
        for r in csv.DictReader(open(Path(summary["run_dir"]) / name))
        if r["time/total_timesteps"]
    ]
    assert rows == sorted(set(rows))  # the CSV files do not overlap


class NanReward(__import__("gymnasium").Wrapper):
    """Pendulum whose reward turns NaN after 150 steps."""

    def __init__(self):
        import gymnasium as gym

        super().__init__(gym.make("Pendulum-v1"))
        self.steps = 0

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs, float("nan") if self.steps > 150 else reward, terminated, truncated, info


def test_the_guard_stops_ppo_before_a_non_finite_reward_enters_its_buffer(tmp_path):
    import gymnasium as gym

    if "NanRewardPendulum-v0" not in gym.registry:
        gym.register("NanRewardPendulum-v0", entry_point=NanReward)
    common = dict(
        preset=TINY,
        env="NanRewardPendulum-v0",
        logdir=str(tmp_path),
        progress=False,
        metrics_every=0,
        checkpoint_every=128,
        timesteps=512,
    )
    with pytest.raises(
        ValueError,
        match=r"env step 151: non-finite reward from env 0 \(\[nan\]\); training stopped before it entered the "
        r"buffer; the last good checkpoint is .*checkpoint.ckpt \(env step 128\): remove .*stopped.json, then "
        r"--resume continues from it",
    ):
        train(TrainConfig(**common))
    run = tmp_path / "NanRewardPendulum-v0" / "vanilla_s0"
    assert not (run / "summary.json").exists() and (run / "checkpoint.ckpt").is_file()
    import io
    import pickle

    from stable_baselines3 import PPO

    from syre_rl.agents.runs import read_verified

    model = PPO.load(io.BytesIO(pickle.loads(read_verified(run / "checkpoint.ckpt"))["model"]), device="cpu")
    assert model.num_timesteps == 128 and all(torch.isfinite(p).all() for p in model.policy.parameters())
    with pytest.raises(ValueError, match="found invalid values"):  # unguarded: NaN weights, then torch's error
        train(TrainConfig(**{**common, "logdir": str(tmp_path / "off")}, guard=False))


def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start_in_its_folder(tmp_path):
    """No checkpoint yet: --resume trains it again from step 0 in the same folder; its CSV and TensorBoard logs
    then hold each step once."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Stop(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps >= 200:
                raise KeyboardInterrupt
            return True

    cfg = TrainConfig(preset=TINY, logdir=str(tmp_path), progress=False, timesteps=384, checkpoint_every=0)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Stop()])
    folder = tmp_path / "AntBulletEnv-v0" / "vanilla_s0"
    assert not (folder / "checkpoint.ckpt").exists() and (folder / "progress.csv").is_file()
    summary = train(dataclasses.replace(cfg, resume=True))
    assert summary["run_dir"] == str(folder) and summary["timesteps"] == 384
    steps = [row["time/total_timesteps"] for row in csv.DictReader(open(folder / "progress.csv"))]
    assert [s for s in steps if s] == ["128", "256", "384"]  # (rows without a step: the last update's train/*)
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    for tag in events.Tags()["scalars"]:
        logged = [e.step for e in events.Scalars(tag)]
        assert len(logged) == len(set(logged)) or tag.startswith("train/"), f"{tag} has a step twice: {logged}"


@pytest.mark.parametrize(
    "section,message",
    [
        (
            "algo_kwargs: {learning_rate: .inf}",
            r"preset algo_kwargs learning_rate must be a finite number \(infinity: only max_grad_norm\), got inf",
        ),
        ("method_settings: {gamma: .nan}", "preset method_settings gamma must be a finite number, got nan"),
        (
            "policy_kwargs: {optimizer_kwargs: {eps: -.inf}}",
            "preset policy_kwargs optimizer_kwargs.eps must be a finite number .*, got -inf",
        ),
        ("policy_kwargs: {net_arch: {pi: [64, -1], vf: [64]}}", "layer widths must be integers >= 1, got -1"),
    ],
)
def test_a_preset_value_that_cannot_train_is_refused_before_anything_is_built(tmp_path, section, message):
    preset = tmp_path / "bad.yaml"
    preset.write_text(f"algo: ppo\nenv: CartPole-v1\ntimesteps: 2048\n{section}\n")
    with pytest.raises(ValueError, match=message):
        TrainConfig(preset=str(preset), logdir=str(tmp_path)).resolved()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.yaml"]  # no run folder


def test_a_preset_with_a_base_holds_only_what_it_changes(tmp_path):
    """``base: NAME``: the base preset's settings, this file's over them, its sections key by key (the DQN control's
    preset is zoo's with two values changed); a base that is no preset, or a cycle of bases, is refused."""
    control, zoo = load_preset("dqn-cartpole-control"), load_preset("dqn-cartpole-offset")
    assert control.algo_kwargs == {**zoo.algo_kwargs, "learning_rate": 6.3e-4, "target_update_interval": 1000}
    assert (control.policy_kwargs, control.env_kwargs, control.timesteps) == (
        zoo.policy_kwargs,
        zoo.env_kwargs,
        zoo.timesteps,
    )
    cleanrl = Path(__file__).parent.parent / "agents" / "presets" / "dqn-pilot" / "cleanrl.yaml"
    assert load_preset(str(cleanrl)).algo_kwargs["train_freq"] == 10  # a path, its base relative to it
    (tmp_path / "a.yaml").write_text("base: b.yaml\ntimesteps: 500\npolicy_kwargs: {net_arch: [8]}\n")
    (tmp_path / "b.yaml").write_text("base: dqn-cartpole-offset\nalgo_kwargs: {batch_size: 32}\n")
    a = load_preset(str(tmp_path / "a.yaml"))
    assert a.timesteps == 500 and a.algo_kwargs == {**zoo.algo_kwargs, "batch_size": 32}
    assert a.policy_kwargs == {**zoo.policy_kwargs, "net_arch": [8]}
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ValueError, match=r"b.yaml: base 'a.yaml' extends this preset again \(a cycle of bases\)"):
        load_preset(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("base: nope\n")
    with pytest.raises(ValueError, match="unknown preset 'nope'; available: ant-zoo,"):
        load_preset(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("base: [dqn-cartpole-offset]\n")
    with pytest.raises(ValueError, match=r"b.yaml: base must name a preset .*, got \['dqn-cartpole-offset'\]"):
        load_preset(str(tmp_path / "a.yaml"))
    (tmp_path / "b.yaml").write_text("base: dqn-cartpole-offset\nalgo_kwargs: {learning_rte: 0.1}\n")
    with pytest.raises(ValueError, match="learning_rte"):
        load_preset(str(tmp_path / "a.yaml"))


def test_net_arch_widths_are_checked_by_the_policy_itself():
    from stable_baselines3 import PPO

    with pytest.raises(ValueError, match=r"SyreActorCriticPolicy net_arch \[64, 0\]: layer widths must be"):
        PPO(SyreActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(net_arch=[64, 0]))


class NanObservation(NanReward):
    """Pendulum whose observation turns NaN after 150 steps."""

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs * float("nan") if self.steps > 150 else obs, reward, terminated, truncated, info


def test_a_non_finite_observation_is_named_in_one_line_not_torchs_distribution_error(tmp_path):
    import gymnasium as gym

    if "NanObsPendulum-v0" not in gym.registry:
        gym.register("NanObsPendulum-v0", entry_point=NanObservation)
    cfg = TrainConfig(preset=TINY, env="NanObsPendulum-v0", logdir=str(tmp_path), progress=False, metrics_every=0)
    with pytest.raises(ValueError, match=r"^env step 151: non-finite observation from env 0 \(\[nan, nan, nan\]\); "):
        train(dataclasses.replace(cfg, checkpoint_every=0))
    with pytest.raises(ValueError, match="no checkpoint was written yet: remove .*stopped.json, then --resume starts "):
        train(cfg)


def scalar_steps(folder: Path) -> dict[str, list[int]]:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [e.step for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


@pytest.mark.parametrize(
    "settings",
    [dict(preset=TINY, syre=True), dict(algo="dqn", env="CartPole-v1", timesteps=512, method="redo")],
    ids=["ppo", "dqn"],
)
def test_every_tag_has_one_value_per_step(tmp_path, settings):
    """SB3 dumps train/* one iteration late, and the run flushes the last ones at the end: at the last step a tag
    would have two values. The first is kept; the CSV has every row."""
    summary = train(TrainConfig(**settings, logdir=str(tmp_path), progress=False, checkpoint_every=0))
    steps = scalar_steps(Path(summary["run_dir"]))
    assert any(tag.startswith("train/") for tag in steps) and len(steps) > 10
    twice = {tag: s for tag, s in steps.items() if len(s) != len(set(s))}
    assert not twice, f"{len(twice)} of {len(steps)} tags have a step twice: {twice}"
