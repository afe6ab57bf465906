"""Batched PPO (agents/rl/batched.py) is SB3's PPO: the same rollout and the same minibatch order given to SB3's
``PPO.train()`` and to :meth:`BatchedPPO.train` give every member the same losses, gradients and weights, in
float64 (SB3's policy and buffer made float64 for the test), for a discrete and a continuous action space; the
same holds for the GAE of the buffer, and the native CartPole envs of the members are SB3's envs, bit for bit."""

import copy
import csv
import dataclasses
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import stable_baselines3.common.policies as sb3_policies
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.vec_env import VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from syre_rl.agents.guard import NonFiniteError
from syre_rl.agents.rl import TrainConfig
from syre_rl.agents.rl.batched import BatchedPPO
from syre_rl.agents.rl.checkpoints import load_checkpoint
from syre_rl.agents.rl.seeds import make_batch, train_members, train_rollouts, train_seeds
from syre_rl.agents.rl.training import build_model, train
from syre_rl.agents.runs import CHECKPOINT, read_verified
from syre_rl.envs.members import CartPoleMembers, VecEnvMembers
from syre_rl.envs.vec import make_env
from tests.conftest import ACTIVE

SEEDS = [0, 5]
N_ENVS, N_STEPS = 2, 16
PPO_ARGS = dict(
    n_steps=N_STEPS,
    batch_size=8,
    n_epochs=3,
    ent_coef=0.01,
    vf_coef=0.5,
    clip_range=0.2,
    clip_range_vf=0.3,
    max_grad_norm=0.5,
    learning_rate=3e-2,  # large: the clipped surrogate and the value clipping act
    policy_kwargs=dict(net_arch=dict(pi=[8, 8], vf=[8, 8])),
)
BUFFER = ("observations", "actions", "rewards", "episode_starts", "values", "log_probs", "advantages", "returns")


def sb3_envs(env_id: str, seeds: list[int], n_envs: int, tasks: str | None = None, **kwargs) -> VecEnvMembers:
    """The members' envs as K SB3 vec envs (what the batch uses for every env but a plain CartPole-v1)."""
    task = (lambda seed: {"task_seed": seed, "task_shift": tasks}) if tasks else (lambda seed: {})
    return VecEnvMembers([make_env(env_id, n_envs, seed, **task(seed), **kwargs) for seed in seeds], tasks is not None)


@pytest.fixture
def float64_sb3(monkeypatch):
    """SB3 casts observations to float32 in ``preprocess_obs``; for a float64 comparison it keeps float64."""
    monkeypatch.setattr(sb3_policies, "preprocess_obs", lambda obs, space, normalize_images=True: obs.double())


def sb3_models(env_id: str) -> list[PPO]:
    models = []
    for seed in SEEDS:
        model = PPO("MlpPolicy", make_vec_env(env_id, N_ENVS, seed=seed), seed=seed, device="cpu", **PPO_ARGS)
        model.policy.double()
        model.set_logger(Logger(None, []))
        models.append(model)
    return models


def collect(model: PPO) -> None:
    """One SB3 rollout into the model's buffer, then the buffer in float64 (as the float64 policy computed it)."""
    total, callback = model._setup_learn(N_ENVS * N_STEPS, None)
    callback.init_callback(model)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=N_STEPS)
    for name in BUFFER:
        setattr(model.rollout_buffer, name, getattr(model.rollout_buffer, name).astype(np.float64))


def buffer_of(models: list[PPO], discrete: bool) -> dict[str, torch.Tensor]:
    """The members' SB3 buffers as the batched learner's: (T, K, N, ...)."""
    names = dict(zip(BUFFER, ["obs", "actions", "rewards", "starts", "values", "log_probs", "advantages", "returns"]))
    out = {}
    for sb3_name, name in names.items():
        t = torch.as_tensor(np.stack([getattr(m.rollout_buffer, sb3_name) for m in models], axis=1))
        out[name] = t.squeeze(-1) if name == "actions" and discrete else t
    return out


def recorded_grads(optimizer: torch.optim.Optimizer, names: list[str]) -> list[dict[str, torch.Tensor]]:
    """Every step's gradients (as the optimizer gets them: after clipping)."""
    steps = []
    params = [p for group in optimizer.param_groups for p in group["params"]]
    optimizer.register_step_pre_hook(
        lambda *_: steps.append({n: p.grad.detach().clone() for n, p in zip(names, params) if p.grad is not None})
    )
    return steps


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_batched_ppo_trains_each_member_as_sb3_ppo_trains_it(float64_sb3, env_id):
    models = sb3_models(env_id)
    envs = sb3_envs(env_id, SEEDS, N_ENVS)
    batched = BatchedPPO(models, envs, "vanilla", [], (), SEEDS)  # stacked before SB3 trains its models
    assert next(batched.policy.parameters()).dtype == torch.float64
    names = [n for n, _ in batched.policy.named_parameters()]
    for model in models:
        collect(model)
    discrete = env_id == "CartPole-v1"
    batched.buffer = buffer_of(models, discrete)

    # GAE: the batched learner's from SB3's values, rewards and episode starts equals SB3's
    last_values = torch.stack(
        [torch.as_tensor(m.policy.predict_values(torch.as_tensor(m._last_obs)).detach()).squeeze(-1) for m in models]
    )
    dones = torch.as_tensor(np.stack([m._last_episode_starts for m in models]), dtype=torch.float64)
    advantages, returns = batched.gae(batched.buffer, last_values.double(), dones)
    torch.testing.assert_close(advantages, batched.buffer["advantages"], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(returns, batched.buffer["returns"], rtol=1e-6, atol=1e-6)

    # the same minibatch orders: SB3 draws one np.random.permutation per epoch
    orders, sb3_grads = [], []
    for seed, model in zip(SEEDS, models):
        np.random.seed(100 + seed)
        orders.append([torch.as_tensor(np.random.permutation(N_ENVS * N_STEPS)) for _ in range(PPO_ARGS["n_epochs"])])
        np.random.seed(100 + seed)
        sb3_grads.append(recorded_grads(model.policy.optimizer, [n for n, _ in model.policy.named_parameters()]))
        model.train()
    mine = recorded_grads(batched.optimizer, names)
    figures = batched.train(
        1.0, [[orders[k][epoch] for k in range(len(SEEDS))] for epoch in range(PPO_ARGS["n_epochs"])]
    )

    updates = PPO_ARGS["n_epochs"] * N_ENVS * N_STEPS // PPO_ARGS["batch_size"]
    assert len(mine) == updates and all(len(g) == updates for g in sb3_grads)
    largest = 0.0
    for k, model in enumerate(models):
        for step in range(updates):
            for name, grad in sb3_grads[k][step].items():
                torch.testing.assert_close(mine[step][name][k], grad, rtol=1e-6, atol=1e-9)
                largest = max(largest, float((mine[step][name][k] - grad).abs().max()))
        for name, value in model.policy.state_dict().items():
            torch.testing.assert_close(batched.policy.state_dict()[name][k], value, rtol=1e-6, atol=1e-9)
        logged = model.logger.name_to_value
        for key in ("entropy_loss", "policy_gradient_loss", "value_loss", "approx_kl", "clip_fraction", "loss"):
            assert figures[k][key] == pytest.approx(logged[f"train/{key}"], rel=1e-6, abs=1e-9), key
        assert figures[k]["explained_variance"] == pytest.approx(logged["train/explained_variance"], rel=1e-6)
        assert figures[k]["clip_range"] == logged["train/clip_range"] == 0.2
        if not discrete:
            assert figures[k]["std"] == pytest.approx(logged["train/std"], rel=1e-9)
    assert any(f["clip_fraction"] > 0 for f in figures)  # the clipped surrogate acted
    print(f"largest gradient difference from SB3 ({env_id}): {largest:.2e}")


def balancing(obs: np.ndarray) -> np.ndarray:
    """Push toward the side the pole falls to (episodes reach the 500-step time limit)."""
    return (obs[..., 2] + 0.5 * obs[..., 3] > 0).astype(np.int64)


@pytest.mark.parametrize(
    "tasks,limit,scale", [("permute", 500, 1.0), ("offset", 400, 0.05), ("permute-repeating", 500, 1.0)]
)
def test_native_cartpole_members_are_sb3_envs_bit_for_bit(tasks, limit, scale):
    """Observations, rewards, ends, terminal observations, truncations and episode figures, with random and with
    balancing actions (time-limit truncations) and a task switch of one member: for each observation-task stream,
    a shorter time limit and scaled rewards (C-CHAIN's 400 steps and 1/20; episode returns stay the env's)."""
    seeds = [3, 10]
    native = CartPoleMembers(seeds, 3, tasks, reward_scale=scale, max_episode_steps=limit)
    sb3 = sb3_envs("CartPole-v1", seeds, 3, tasks, env_kwargs={"max_episode_steps": limit}, reward_scale=scale)
    obs, expected = native.reset(), sb3.reset()
    assert np.array_equal(obs, expected)
    rng = np.random.default_rng(0)
    ends = truncated = 0
    for t in range(2500):
        if t == 300:
            native.set_task(1, 2)
            sb3.set_task(1, 2)
        actions = rng.integers(0, 2, size=(2, 3)) if t < 1000 else balancing(obs)
        obs, rewards, dones, a = native.step(actions)
        expected, sb3_rewards, sb3_dones, b = sb3.step(actions)
        assert np.array_equal(obs, expected) and np.array_equal(rewards, sb3_rewards)
        assert np.array_equal(dones, sb3_dones) and len(a) == len(b)
        for x, y in zip(a, b):
            assert (x.member, x.env, x.truncated, x.length, x.episode_return) == (
                y.member,
                y.env,
                y.truncated,
                y.length,
                y.episode_return,
            )
            assert np.array_equal(x.terminal_observation, y.terminal_observation)
        ends += len(a)
        truncated += sum(x.truncated for x in a)
        assert all(x.length <= limit and (x.length == limit) == x.truncated for x in a)
        assert all(x.episode_return == x.length for x in a)  # one point a step, unscaled
    assert ends > 100 and truncated >= 3
    assert set(rewards.ravel().tolist()) == {np.float32(scale)}


def test_a_members_copy_of_a_policy_is_unchanged_by_stacking():
    models = sb3_models("CartPole-v1")
    before = [copy.deepcopy(m.policy.state_dict()) for m in models]
    batched = BatchedPPO(models, sb3_envs("CartPole-v1", SEEDS, N_ENVS), "vanilla", [], (), SEEDS)
    for k, state in enumerate(before):
        for name, value in state.items():
            assert torch.equal(batched.member_policy_state(k)[name], value)
            assert torch.equal(models[k].policy.state_dict()[name], value)


# The batched learner's runs (agents/rl/seeds.py): each member as its one-seed batch, each seed as a single run
TINY = str(Path(__file__).parent / "tiny-cartpole.yaml")


def run_batch(seeds, method="vanilla", settings=None, rollouts=13, dtype=torch.float64):
    """The batch of ``seeds`` trained ``rollouts`` rollouts (52 updates), as train_seeds trains it."""
    cfg = TrainConfig(preset=TINY, seeds=seeds, method=method, method_args=settings or {}, device="cpu")
    return train_rollouts(cfg, rollouts, dtype)


@pytest.mark.parametrize("method,settings", list(ACTIVE.items()), ids=list(ACTIVE))
def test_each_member_of_a_batch_equals_its_one_seed_run(method, settings):
    """Over 52 updates, in float64 (in float32 the two agree to rounding at first and then drift apart: training
    is chaotic), to 1e-9 relative: weights, anchors, Adam's moments, the method's figures and state, every
    episode's return (the actions sampled)."""
    batched = run_batch([4, 1, 7], method, settings)
    alone = run_batch([1], method, settings)
    assert batched.n_updates == alone.n_updates == 26 and batched.num_timesteps == alone.num_timesteps == 832
    mine, own = batched.member_policy_state(1), alone.member_policy_state(0)
    for name, value in own.items():
        torch.testing.assert_close(mine[name], value, rtol=1e-5, atol=1e-5 * float(value.abs().max()))
    for i, entry in alone.member_optimizer_state(0)["state"].items():
        for key, value in entry.items():
            torch.testing.assert_close(
                batched.member_optimizer_state(1)["state"][i][key],
                value,
                rtol=1e-5,
                atol=1e-5 * float(value.abs().max()),
            )
    for target, m in alone.methods.items():
        assert batched.methods[target].stats(1) == pytest.approx(m.stats(0), rel=1e-5, abs=1e-7)
        torch.testing.assert_close(batched.methods[target].state_dict(1), m.state_dict(0), rtol=1e-5, atol=1e-6)
    assert [e["r"] for e in batched.ep_info[1]] == [e["r"] for e in alone.ep_info[0]]
    if method in ("redo", "cbp"):  # the case is meant to reset units
        key = {"redo": "reset_units_total", "cbp": "replaced_units_total"}[method]
        assert batched.methods["critic"].stats(1)[key] > 0


def test_sb3s_fused_adam_trains_a_batch_as_its_default_adam(tmp_path):
    """A preset asking for torch's fused Adam (SB3's ``optimizer_kwargs``) gets it, not the multi-tensor Adam the
    batch uses otherwise (torch refuses the two together): the same update, to float64 rounding over 52 updates."""
    fused = tmp_path / "fused.yaml"  # SB3's own eps (1e-5) is given: optimizer_kwargs replace SB3's defaults
    fused.write_text(f"base: {TINY}\npolicy_kwargs:\n  optimizer_kwargs: {{eps: 1.0e-5, fused: true}}\n")
    default = run_batch([4, 1, 7], "syre", {"gamma": 1e-2})
    cfg = TrainConfig(preset=str(fused), seeds=[4, 1, 7], method="syre", method_args={"gamma": 1e-2}, device="cpu")
    batch = train_rollouts(cfg, 13, torch.float64)
    assert batch.optimizer.defaults["fused"] is True and not batch.optimizer.defaults["foreach"]
    assert default.optimizer.defaults["foreach"] is True and not default.optimizer.defaults["fused"]
    for k in range(3):
        for name, value in default.member_policy_state(k).items():
            torch.testing.assert_close(batch.member_policy_state(k)[name], value, rtol=1e-12, atol=1e-12)
        assert [e["r"] for e in batch.ep_info[k]] == [e["r"] for e in default.ep_info[k]]


def member_configs(method: str, grid: list[dict], seeds: list[int]) -> list[TrainConfig]:
    """The resolved member configs of a tuning grid's points (labels by index) and seeds."""
    return [
        TrainConfig(preset=TINY, seed=s, method=method, method_args=values, label=f"p{i}", device="cpu").member(s)
        for i, values in enumerate(grid)
        for s in seeds
    ]


@pytest.mark.parametrize(
    "method,grid",
    [
        ("syre", [{"gamma": 1e-2, "scale": 1.0}, {"gamma": 1e-1, "scale": 0.3}]),
        ("redo", [{"every": 4, "tau": 0.5}, {"every": 4, "tau": 0.0}]),
    ],
)
def test_a_tuning_grids_points_train_in_one_batch_as_each_alone(method, grid):
    """Members with settings of their own (Method.PER_MEMBER) in one PPO batch, in float64 over 52 updates: each
    as its one-member batch (weights, the method's figures, every episode's return)."""
    members = member_configs(method, grid, [1, 2])
    batch, envs, _ = make_batch(members, torch.float64)
    alone = []
    try:
        batch.reset()
        for _ in range(13):
            batch.collect_rollout()
            batch.train(batch.progress_remaining(members[0].timesteps))
    finally:
        envs.close()
    for k in (0, 3):  # point 0 seed 1, point 1 seed 2
        one, one_envs, _ = make_batch([members[k]], torch.float64)
        try:
            one.reset()
            for _ in range(13):
                one.collect_rollout()
                one.train(one.progress_remaining(members[k].timesteps))
        finally:
            one_envs.close()
        alone.append(one)
        for name, value in one.member_policy_state(0).items():
            torch.testing.assert_close(
                batch.member_policy_state(k)[name], value, rtol=1e-5, atol=1e-5 * float(value.abs().max())
            )
        for target, m in one.methods.items():
            assert batch.methods[target].stats(k) == pytest.approx(m.stats(0), rel=1e-5, abs=1e-7)
        assert [e["r"] for e in batch.ep_info[k]] == [e["r"] for e in one.ep_info[0]]
    # the settings act: the two points' members of one seed learn different weights
    name = "mlp_extractor.policy_net.0.weight"
    assert not torch.allclose(batch.member_policy_state(0)[name], batch.member_policy_state(2)[name])
    if method == "redo":  # tau 0.5 resets more units than tau 0 (which resets only dead ones)
        resets = [batch.methods["critic"].stats(k)["reset_units_total"] for k in (0, 2)]
        assert resets[0] > resets[1], resets


def test_runs_that_differ_in_more_than_per_member_settings_are_refused_as_one_batch(tmp_path):
    syre = member_configs("syre", [{"gamma": 1e-2}, {"gamma": 1e-2, "decoupled": True}], [0])
    with pytest.raises(ValueError, match=r"p1 seed 0 cannot train in one batch with p0 seed 0: they differ in "):
        train_members(syre, resume=False)
    tasks = [dataclasses.replace(syre[0], label="a"), dataclasses.replace(syre[0], first_task=1, label="b")]
    with pytest.raises(
        ValueError, match=r"b seed 0 cannot train in one batch with a seed 0: they differ in first_task"
    ):
        train_members(tasks, resume=False)
    with pytest.raises(ValueError, match="repeat a label and seed"):
        train_members([syre[0], syre[0]], resume=False)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("method", ["vanilla", "syre"])
def test_a_member_starts_where_its_single_sb3_run_starts(method):
    """Member k's initial weights (and anchors) are those of SB3's PPO with the syre_rl policy and seed k."""
    cfg = TrainConfig(preset=TINY, seeds=[0, 3], method=method, device="cpu").resolved()
    batch, envs, _ = make_batch([cfg.member(s) for s in (0, 3)])
    envs.close()
    single = build_model(cfg.member(3), make_vec_env("CartPole-v1", 2, seed=3))
    expected = {k: v for k, v in single.policy.state_dict().items() if k != "_extra_state"}
    assert batch.member_policy_state(1).keys() == expected.keys()
    for name, value in expected.items():
        assert torch.equal(batch.member_policy_state(1)[name], value), name


def batched_config(tmp_path, **kw):
    return TrainConfig(preset=TINY, seeds=[2, 5], logdir=str(tmp_path), progress=False, device="cpu", **kw)


def tags(run_dir):
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_each_seed_of_a_batch_is_a_single_runs_folder(tmp_path):
    """config.json (the single run's, marked batched), the same TensorBoard tags at the same steps as SB3's
    single run, model.zip that PPO.load reads with the method's state, a checkpoint and summary.json."""
    kw = dict(method="syre", task_every=416, metrics_every=4, checkpoint_every=416)
    summaries = train_seeds(batched_config(tmp_path / "b", **kw))
    assert [s["seed"] for s in summaries] == [2, 5] and all(s["timesteps"] == 832 for s in summaries)
    single = train(TrainConfig(preset=TINY, seed=5, logdir=str(tmp_path / "s"), progress=False, device="cpu", **kw))
    mine, theirs = Path(summaries[1]["run_dir"]), Path(single["run_dir"])
    assert mine.name == theirs.name == "syre_s5"
    a, b = (json.loads((d / "config.json").read_text()) for d in (mine, theirs))
    assert {k for k in a if a[k] != b.get(k)} == {"logdir", "batched"} and a["batched"] is True
    ours, sb3 = tags(mine), tags(theirs)
    assert ours.keys() == sb3.keys() and {t: [s for s, _ in v] for t, v in ours.items()} == {
        t: [s for s, _ in v] for t, v in sb3.items()
    }
    assert ours["env/task"] == sb3["env/task"] and [v for _, v in ours["env/task"]] == [0] * 6 + [1] * 6 + [2]
    model = PPO.load(mine / "model.zip", device="cpu")
    assert model.num_timesteps == 832 and model.policy.method == "syre"
    assert model.policy.methods["actor"].settings.seed == 5  # the seed's own anchors
    checkpoint, env = load_checkpoint(single_config(mine).resolved(), mine)  # a single run's checkpoint
    env.close()
    assert checkpoint.num_timesteps == 832
    for name, value in model.policy.state_dict().items():
        if name != "_extra_state":
            assert torch.equal(value, checkpoint.policy.state_dict()[name])
    assert (mine / CHECKPOINT).is_file() and json.loads((mine / "summary.json").read_text())["seeds_in_batch"] == 2


def test_cchains_control_runs_batched_and_single_alike(tmp_path):
    """C-CHAIN's preset (3 x 256 LeakyReLU(0.1), rewards / 20, episodes capped at 400) on offset tasks: both learners
    log the env's own returns (whole CartPole steps, not twentieths) and the same tasks, and save the activation."""
    kw = dict(preset="cchain-cartpole", timesteps=1600, task_every=800, task_shift="offset", metrics_every=1)
    summaries = train_seeds(TrainConfig(seeds=[0, 1], logdir=str(tmp_path / "b"), progress=False, **kw))
    single = train(TrainConfig(seed=1, logdir=str(tmp_path / "s"), progress=False, device="cpu", **kw))
    for run_dir in (Path(summaries[1]["run_dir"]), Path(single["run_dir"])):
        config = json.loads((run_dir / "config.json").read_text())
        assert config["task_shift"] == "offset" and config["hyperparameters"]["reward_scale"] == 0.05
        logged = tags(run_dir)
        assert [v for _, v in logged["env/task"]] == [1, 2]  # the task in effect after each rollout's last step
        assert all(v >= 8 for _, v in logged["rollout/ep_rew_mean"])  # unscaled: at least 8 steps an episode
        model = PPO.load(run_dir / "model.zip", device="cpu")
        assert isinstance(model.policy.mlp_extractor.policy_net[1], torch.nn.LeakyReLU)
        assert model.policy.mlp_extractor.policy_net[1].negative_slope == 0.1


def single_config(run_dir):
    """The single run's config of a batched seed's folder (what its checkpoint is read back with)."""
    saved = json.loads((run_dir / "config.json").read_text())
    return TrainConfig(**{k: saved[k] for k in ("preset", "seed", "method", "logdir", "task_every", "device")})


def test_a_batch_resumes_from_its_seeds_checkpoints(tmp_path):
    cfg = batched_config(tmp_path, checkpoint_every=256)
    first = train_seeds(dataclasses.replace(cfg, timesteps=512))
    resumed = train_seeds(dataclasses.replace(cfg, timesteps=832, resume=True))
    assert [s["run_dir"] for s in resumed] == [s["run_dir"] for s in first]  # the same folders
    assert all(s["timesteps"] == 832 for s in resumed)
    with open(Path(first[0]["run_dir"]) / "progress_from_512.csv") as f:
        steps = sorted(int(r["time/total_timesteps"]) for r in csv.DictReader(f) if r["time/total_timesteps"])
    assert steps[0] == 576 and steps[-1] == 832
    with pytest.raises(ValueError, match="finished at 832 steps"):
        train_seeds(dataclasses.replace(cfg, timesteps=832, resume=True))


def test_a_seed_killed_before_writing_its_checkpoint_resumes_the_batch_from_the_one_before(tmp_path):
    cfg = batched_config(tmp_path, checkpoint_every=256)
    runs = train_seeds(dataclasses.replace(cfg, timesteps=512))
    behind = Path(runs[1]["run_dir"]) / CHECKPOINT
    behind.unlink()  # as if killed between the two seeds' writes: its previous checkpoint (256) is the last
    resumed = train_seeds(dataclasses.replace(cfg, timesteps=832, resume=True))
    assert all(s["timesteps"] == 832 for s in resumed)
    assert (Path(runs[0]["run_dir"]) / "progress_from_256.csv").is_file()


def test_a_non_finite_reward_stops_the_batch_naming_the_seed(tmp_path, monkeypatch):
    real, calls = CartPoleMembers.step, []

    def poisoned(self, actions):
        obs, rewards, dones, ends = real(self, actions)
        calls.append(1)
        if len(calls) == 100:  # env step 200 of each seed
            rewards[1, 0] = np.nan
        return obs, rewards, dones, ends

    monkeypatch.setattr(CartPoleMembers, "step", poisoned)
    with pytest.raises(NonFiniteError, match=r"^seed 5, env step 200: non-finite reward from env 0 \(\[nan\]\)"):
        train_seeds(batched_config(tmp_path))


def test_a_seed_whose_gradient_is_not_finite_stops_alone_and_the_others_train_as_without_it(tmp_path, monkeypatch):
    """The guard stops the seed whose values are not finite (its stopped.json says where and why; its logs and
    checkpoint stay at its last good step; sweeps and --resume leave it stopped); the other seeds train on, as a
    batch without it trains them."""
    real, calls = BatchedPPO.evaluate_actions, []

    def poisoned(self, obs, actions):
        values, log_prob, entropy = real(self, obs, actions)
        if self.members == 3:
            calls.append(1)
            if len(calls) >= 18:  # seed 5's loss from the second update of the fifth rollout on (env step 320)
                log_prob = log_prob * torch.tensor([1.0, float("nan"), 1.0]).unsqueeze(1)
        return values, log_prob, entropy

    monkeypatch.setattr(BatchedPPO, "evaluate_actions", poisoned)
    kw = dict(preset=TINY, progress=False, device="cpu", checkpoint_every=256)
    three = TrainConfig(seeds=[2, 5, 7], logdir=str(tmp_path / "three"), **kw)
    summaries = train_seeds(three)
    two = train_seeds(TrainConfig(seeds=[2, 7], logdir=str(tmp_path / "two"), **kw))
    assert [s.get("stopped") is not None for s in summaries] == [False, True, False]
    stopped_dir = Path(summaries[1]["run_dir"])
    record = json.loads((stopped_dir / "stopped.json").read_text())
    assert record["step"] == summaries[1]["timesteps"] == 320 and record["checkpoint_step"] == 256
    assert record["reason"].startswith("env step 320: seed 5: non-finite gradient in ")
    assert not (stopped_dir / "summary.json").exists()
    with open(stopped_dir / "progress.csv") as f:
        logged = [int(r["time/total_timesteps"]) for r in csv.DictReader(f) if r["time/total_timesteps"]]
    assert max(logged) == 320  # the rollout before the update that stopped it, and nothing after
    model = PPO.load(io.BytesIO(pickle.loads(read_verified(stopped_dir / CHECKPOINT))["model"]), device="cpu")
    assert model.num_timesteps == 256
    assert three.member(5).status() == "stopped" and three.member(2).status() == "done"
    with pytest.raises(ValueError, match=r"--resume: the run in .*vanilla_s5 stopped at env step 320 \(env step "):
        train_members([three.member(5)], resume=True)
    for batched, alone in zip([summaries[0], summaries[2]], two):
        assert batched["timesteps"] == alone["timesteps"] == 832 and batched["mean_return"] == alone["mean_return"]
        ours, theirs = (
            PPO.load(Path(s["run_dir"]) / "model.zip", device="cpu").policy.state_dict() for s in (batched, alone)
        )
        assert all(torch.equal(ours[n], theirs[n]) for n in theirs if isinstance(theirs[n], torch.Tensor))


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(seeds=[1, 1]), r"--seeds must be distinct seeds >= 0, got \[1, 1\]"),
        (dict(seeds=[0, 1], seed=3), r"--seed 3 with --seeds \[0, 1\]: give one of them"),
        (dict(seeds=[0, 1], algo="sac", preset=None), "--seeds trains PPO batched; sac trains one seed at a time"),
        (dict(seeds=[0, 1], friction_every=1000), "--seeds does not batch the slippery Ant's friction schedule"),
        (dict(seeds=[0, 1], save="m.zip"), "--save names one model"),
    ],
)
def test_what_a_batch_cannot_do_is_refused_before_anything_runs(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{"preset": TINY, **kw}).resolved()


@pytest.mark.slow  # each side in a fresh process: about 15 s
def test_bench_batched_ppo_reports_both_sides_of_one_measurement():
    """Run as users run it (its sides are spawned processes, which need the script as a file)."""
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    argv = ["scripts/bench_batched_ppo.py", "--ks", "2", "--rollouts", "2", "--repeats", "1", "--preset", TINY]
    done = subprocess.run([sys.executable, *argv], cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    header, row = done.stdout.strip().splitlines()[-2:]
    assert "wall / 1 seed" in header
    cells = row.replace("|", " ").split()
    k, sequential, batched, ratio = int(cells[0]), float(cells[1]), float(cells[2]), float(cells[3].rstrip("x"))
    assert k == 2 and sequential > 0 and batched > 0
    assert ratio == pytest.approx(batched / sequential, abs=0.01 + 0.01 * ratio)  # printed rounded
    shares = [float(c.rstrip("%")) for c in cells[-5::2]]  # env / forward / update
    assert len(shares) == 3 and 0 < sum(shares) <= 101


@pytest.mark.slow  # PyBullet's Ant, two batches: about 10 s
def test_a_batch_of_seeds_with_vecnormalize_keeps_each_seeds_statistics(tmp_path):
    """A PyBullet preset with VecNormalize: each seed's statistics are its own, saved beside its model and in its
    checkpoint, and restored on --resume."""
    preset = str(Path(__file__).parent / "tiny-preset.yaml")  # AntBulletEnv-v0, one env, VecNormalize
    cfg = TrainConfig(preset=preset, seeds=[0, 1], logdir=str(tmp_path), progress=False, device="cpu")
    first = train_seeds(cfg)
    stats = [
        VecNormalize.load(str(Path(s["run_dir"]) / "vecnormalize.pkl"), make_env("AntBulletEnv-v0")) for s in first
    ]
    assert not np.array_equal(stats[0].obs_rms.mean, stats[1].obs_rms.mean)  # each seed's own observations
    assert all(s.obs_rms.count > 256 for s in stats)
    resumed = train_seeds(dataclasses.replace(cfg, timesteps=512, resume=True))
    again = VecNormalize.load(str(Path(resumed[1]["run_dir"]) / "vecnormalize.pkl"), make_env("AntBulletEnv-v0"))
    assert again.obs_rms.count > stats[1].obs_rms.count + 255  # continued from the checkpoint's statistics
