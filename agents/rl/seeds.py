"""K seeds of one PPO run trained as one batched learner (``scripts/train.py --algo ppo --seeds 0-15``), each seed
in its own run folder exactly as its single run: ``config.json`` (its single run's settings, marked ``batched``),
TensorBoard and CSV logs with SB3's tags and steps, verified checkpoints, ``model.zip`` (an SB3 PPO that
``PPO.load`` reads) and ``summary.json``; so ``compare.py``, sweeps and ``--resume`` treat each seed as a run.

The learner is :class:`~syre_rl.agents.rl.batched.BatchedPPO`; each seed's model here is an SB3 ``PPO`` with the
syre_rl policy of its single run (``MethodActorCriticPolicy`` with the method), into which the seed's state is
written for its checkpoints and its final model. A checkpoint is a single run's (:mod:`.checkpoints`), with the
batch's random generators beside it, so a batch resumes from the seeds' checkpoints.
"""

from __future__ import annotations

import contextlib
import io
import json
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize
from tqdm.auto import tqdm

from syre_rl.agents.guard import NonFiniteError, NonFiniteGuard
from syre_rl.agents.rl.batched import BatchedPPO, keep_freed_memory
from syre_rl.agents.rl.config import TrainConfig
from syre_rl.agents.rl.presets import ALGORITHMS
from syre_rl.agents.rl.training import run_logger
from syre_rl.agents.runs import (
    CHECKPOINT,
    CONFIG,
    STOPPED,
    Interrupted,
    SafeStop,
    check_not_stopped,
    check_unchanged,
    latest_run_dir,
    new_run_dir,
    owned,
    previous,
    read_verified,
    write_json_atomic,
    write_stopped,
    write_verified,
)
from syre_rl.base import hidden_layers
from syre_rl.callbacks import plain_hparams, policy_hparams, write_hparams
from syre_rl.envs.members import MemberEnvs, VecEnvMembers, make_member_envs
from syre_rl.envs.tasks import TaskScheduleCallback
from syre_rl.envs.vec import NORMALIZE_FILE
from syre_rl.files import atomic_write
from syre_rl.metrics import LayerProbe
from syre_rl.policies import target_params


def sb3_ppo(cfg: TrainConfig, envs: MemberEnvs, policy: type, policy_kwargs: dict[str, Any]) -> PPO:
    """An SB3 PPO of a member's (resolved) config, built as SB3 builds one for ``cfg.seed`` (its policy's weights
    are the single run's initial weights), without envs of its own: the batch steps them."""
    model = PPO(
        policy,
        None,
        seed=cfg.seed,
        device=cfg.device,
        policy_kwargs=policy_kwargs,
        _init_setup_model=False,
        **cfg.hyperparameters.algo_kwargs,
    )
    model.observation_space, model.action_space, model.n_envs = envs.observation_space, envs.action_space, cfg.n_envs
    model._setup_model()
    return model


class _Seed:
    """One seed of the batch: its config, run folder, logger, SB3 model (its single run's policy class) and the
    figures its logs need."""

    def __init__(self, cfg: TrainConfig, run_dir: Path):
        self.cfg, self.run_dir = cfg, run_dir
        self.model: PPO  # set once the envs are made (its spaces)
        self.rollouts = 0
        self.last_checkpoint = 0
        self.checkpointed = False
        self.stopped: str | None = None  # why training stopped this seed (a non-finite value), and at which step
        self.stopped_at = 0

    def payload(self, batch: BatchedPPO, k: int, envs: MemberEnvs) -> bytes:
        """This seed's checkpoint: a single run's (:func:`syre_rl.agents.rl.checkpoints.save_checkpoint`), with
        its generators of the batch beside it."""
        model = self.export(batch, k)
        buffer = io.BytesIO()
        model.save(buffer)
        normalize = _normalizer(envs, k)
        return pickle.dumps(
            {
                "model": buffer.getvalue(),
                "normalize": pickle.dumps(normalize) if normalize is not None else None,
                "replay_buffer": None,
                "batched": {
                    "actions": batch.generators[k].get_state(),
                    "orders": batch.order_generators[k].get_state(),
                },
            }
        )

    def export(self, batch: BatchedPPO, k: int) -> PPO:
        """The seed's SB3 model holding its state in the batch (weights, anchors, the methods' state, Adam's
        moments, steps, episodes)."""
        model = self.model
        state = batch.member_policy_state(k)
        state["_extra_state"] = {target: m.state_dict(k) for target, m in batch.methods.items()}
        model.policy.load_state_dict(state)
        model.policy.optimizer.load_state_dict(batch.member_optimizer_state(k))
        model.num_timesteps, model._n_updates = batch.num_timesteps, batch.n_updates
        model.ep_info_buffer = batch.ep_info[k].copy()
        return model


def _normalizer(envs: MemberEnvs, k: int) -> VecNormalize | None:
    if isinstance(envs, VecEnvMembers) and isinstance(envs.venvs[k], VecNormalize):
        return envs.venvs[k]
    return None


def _read(run_dir: Path) -> list[dict[str, Any]]:
    """The seed's checkpoints, the last and the previous one kept (each decoded), the last first."""
    found = []
    for path in (run_dir / CHECKPOINT, previous(run_dir / CHECKPOINT)):
        if path.is_file():
            try:
                found.append(pickle.loads(read_verified(path)))
            except ValueError:
                if path == run_dir / CHECKPOINT:
                    raise
    return found


def train_seeds(config: TrainConfig) -> list[dict[str, Any]]:
    """Train (or resume) the seeds of ``config.seeds`` as one batched PPO (see the module docstring).

    :return: each seed's summary, as :func:`syre_rl.agents.rl.training.train` returns a single run's
    :raises ValueError: bad input, a run in use, a damaged checkpoint, a finished run, or a non-finite value
    """
    cfg = config.resolved()
    assert cfg.seeds is not None
    return train_members([cfg.member(seed) for seed in cfg.seeds], cfg.resume)


def train_members(members: Sequence[TrainConfig], resume: bool) -> list[dict[str, Any]]:
    """Train (``resume``: continue) runs given by their resolved configs (``TrainConfig.member``) as one batched
    PPO, each in its own run folder as its single run. They may differ in seed, label and the method's per-member
    settings (a tuning grid: ``Method.PER_MEMBER``), in nothing else (:meth:`TrainConfig.batch_key`).

    :return: each run's summary, as :func:`syre_rl.agents.rl.training.train` returns a single run's
    :raises ValueError: runs that differ in more, or as :func:`train_seeds`
    """
    if not members:
        raise ValueError("a batch needs at least one run")
    check_batch(members)
    first = members[0]
    torch.set_num_threads(first.threads)
    keep_freed_memory()
    if resume:
        dirs = [latest_run_dir(m.logdir, m.env, m.label, m.seed, CONFIG) for m in members]
    else:
        dirs = [new_run_dir(m.logdir, m.env, m.label, m.seed, m.to_dict()) for m in members]
    with contextlib.ExitStack() as stack:
        for run_dir in dirs:
            stack.enter_context(owned(run_dir))
        seeds = [_Seed(m, d) for m, d in zip(members, dirs)]
        if resume:
            for seed in seeds:
                check_not_stopped(seed.run_dir)
                check_unchanged(seed.run_dir, seed.cfg.to_dict(), first.RESUMABLE, "--resume", first.upgraded)
        return _train(resume, seeds)


def check_batch(members: Sequence[TrainConfig]) -> None:
    """Refuse runs that cannot train as one batch, naming the first pair and what they differ in."""
    runs = [(m.label, m.seed) for m in members]
    if len(set(runs)) != len(runs):
        raise ValueError(f"a batch trains each run once; {runs} repeat a label and seed")
    key = members[0].batch_key()
    if key is None:
        raise ValueError(f"{members[0].label} (algo {members[0].algo}) cannot be trained batched")
    shared = json.loads(key)
    for m in members[1:]:
        other = m.batch_key()
        if other != key:
            theirs = json.loads(other) if other is not None else {}
            differ = sorted(k for k in {*shared, *theirs} if shared.get(k) != theirs.get(k))
            raise ValueError(
                f"{m.label} seed {m.seed} cannot train in one batch with {members[0].label} seed {members[0].seed}: "
                f"they differ in {', '.join(differ)} (a batch's runs differ only in seed, label and the method's "
                "per-member settings)"
            )


def make_batch(
    members: Sequence[TrainConfig], dtype: torch.dtype | None = None
) -> tuple[BatchedPPO, MemberEnvs, list[PPO]]:
    """The batched learner of the seeds' resolved configs (``TrainConfig.member``), its envs, and each seed's SB3
    model with its single run's policy class (which holds the seed's state for its checkpoints and model).

    :param dtype: of the batched network (default: SB3's, float32); float64 for exactness tests
    """
    first = members[0]
    seeds = [m.seed for m in members]
    preset = first.hyperparameters
    envs = make_member_envs(
        first.env,
        seeds,
        first.n_envs,
        first.task_shift if first.has_tasks() else None,
        preset.normalize,
        first.vec,
        preset.env_kwargs,
        preset.reward_scale,
        first.offset_scale,
    )
    try:
        templates = [sb3_ppo(m, envs, ActorCriticPolicy, m.hyperparameters.policy_objects()) for m in members]
        for template in templates:
            template.policy.to(dtype or torch.float32)
        models = [sb3_ppo(m, envs, ALGORITHMS["ppo"][1], m.policy_kwargs()) for m in members]
        targets = first.targets.split(",") if first.method != "vanilla" else ()
        batch = BatchedPPO(templates, envs, first.method, [m.method_settings for m in members], targets, seeds)
    except BaseException:
        envs.close()
        raise
    return batch, envs, models


def train_rollouts(config: TrainConfig, rollouts: int, dtype: torch.dtype | None = None) -> BatchedPPO:
    """The batch of ``config.seeds`` after ``rollouts`` rollouts and updates, without run folders, logs or
    checkpoints (for tests and benchmarks of the learner).

    :param dtype: of the batched network (default float32); float64 for exactness tests
    """
    cfg = config.resolved()
    assert cfg.seeds is not None, "train_rollouts trains a batch: give seeds"
    batch, envs, _ = make_batch([cfg.member(seed) for seed in cfg.seeds], dtype)
    try:
        batch.reset()
        for _ in range(rollouts):
            batch.collect_rollout()
            batch.train(batch.progress_remaining(cfg.timesteps))
    finally:
        envs.close()
    return batch


def _train(resume: bool, seeds: list[_Seed]) -> list[dict[str, Any]]:
    first = seeds[0].cfg
    batch, envs, models = make_batch([s.cfg for s in seeds])
    try:
        for seed, model in zip(seeds, models):
            seed.model = model
        step = _resume(batch, seeds, envs) if resume else 0
        if step >= first.timesteps and all((s.run_dir / "summary.json").is_file() for s in seeds):
            raise ValueError(
                f"--resume: the runs in {', '.join(str(s.run_dir) for s in seeds)} are finished at {step} steps; "
                f"give --timesteps above {step} to continue them"
            )
        return _learn(batch, seeds, envs, step)
    finally:
        envs.close()


def _resume(batch: BatchedPPO, seeds: list[_Seed], envs: MemberEnvs) -> int:
    """Load each seed's last checkpoint at the batch's last common step (a seed killed after the others wrote
    theirs resumes from its previous one); 0 when none has one."""
    found = [_read(s.run_dir) for s in seeds]
    if not any(found):
        return 0
    loaded = [[PPO.load(io.BytesIO(p["model"]), device=s.cfg.device) for p in f] for s, f in zip(seeds, found)]
    steps = [[m.num_timesteps for m in models] for models in loaded]
    if not all(steps):
        missing = [s.cfg.seed for s, st in zip(seeds, steps) if not st]
        raise ValueError(
            f"--resume: seeds {missing} of the batch have no checkpoint, the others do; resume them one by one"
        )
    common = min(st[0] for st in steps)
    chosen = []
    for seed, models, payloads, st in zip(seeds, loaded, found, steps):
        if common not in st:
            raise ValueError(
                f"--resume: seed {seed.cfg.seed}'s checkpoints are at steps {st}, the batch's last common step is "
                f"{common}; resume its seeds one by one"
            )
        chosen.append((models[st.index(common)], payloads[st.index(common)]))
    policies, optimizers, methods = [], [], []
    for model, _ in chosen:
        state = model.policy.state_dict()
        state.pop("_extra_state", None)
        policies.append(state)
        optimizers.append(model.policy.optimizer.state_dict())
        methods.append({t: m.state_dict() for t, m in model.policy.methods.items()})
    batch.load_members(policies, optimizers, methods)
    batch.num_timesteps, batch.n_updates = common, chosen[0][0]._n_updates
    for k, (model, payload) in enumerate(chosen):
        batch.ep_info[k].extend(model.ep_info_buffer or [])
        batch.generators[k].set_state(payload["batched"]["actions"])
        batch.order_generators[k].set_state(payload["batched"]["orders"])
        if payload["normalize"] is not None and isinstance(envs, VecEnvMembers):
            normalize = pickle.loads(payload["normalize"])
            normalize.set_venv(envs.venvs[k].venv)
            envs.venvs[k] = normalize
    for seed in seeds:
        seed.last_checkpoint = common
    return common


class _Schedule:
    """The permuted-observation tasks of every seed (:class:`syre_rl.envs.tasks.TaskScheduleCallback`'s rule):
    task ``first_task + steps // task_every``, switched after the env step that reaches it."""

    def __init__(self, cfg: TrainConfig, members: int):
        self.every = cfg.task_every
        self.at = TaskScheduleCallback(cfg.task_every, cfg.first_task or 0).task  # its rule, shared
        self.active = cfg.has_tasks()
        self.task = -1
        self.members = members

    def start(self, batch: BatchedPPO) -> None:
        if self.active:
            self._switch(batch)

    def __call__(self, batch: BatchedPPO) -> None:
        if self.every and self.at(batch.num_timesteps) != self.task:
            self._switch(batch)

    def _switch(self, batch: BatchedPPO) -> None:
        self.task = self.at(batch.num_timesteps)
        for k in range(self.members):
            batch.envs.set_task(k, self.task)


def _check_data(names: Sequence[str], batch: BatchedPPO):
    """The guard's half for data (:class:`~syre_rl.agents.rl.checkpoints.FiniteDataCallback`), naming the seed."""

    def check(what: str, values: torch.Tensor) -> None:
        finite = torch.isfinite(values.reshape(*values.shape[:2], -1)).all(-1)  # (K, N)
        if bool(finite.all()):
            return
        k, env = (int(i) for i in (~finite).nonzero()[0])
        raise NonFiniteError(
            f"{names[k]}, env step {batch.num_timesteps}: non-finite {what} from env {env} "
            f"({values[k, env].flatten()[:8].tolist()}); training stopped before it entered the buffer"
        )

    return check


def _probes(cfg: TrainConfig, batch: BatchedPPO) -> dict[str, LayerProbe]:
    """Per target, the plasticity probe of its layers in the batch (:class:`syre_rl.callbacks.PlasticityCallback`)."""
    probes = {}
    for target in ("actor", "critic"):
        layers = hidden_layers(batch.policy, target_params(batch.policy, target))
        if layers:
            probes[target] = LayerProbe(layers, batch.methods.get(target), cfg.tau, cfg.duplicate_threshold, True)
    return probes


def _learn(batch: BatchedPPO, seeds: list[_Seed], envs: MemberEnvs, step: int) -> list[dict]:
    """The training loop: SB3's ``OnPolicyAlgorithm.learn`` for every seed, with its callbacks' records."""
    first = seeds[0].cfg
    loggers: list[Logger] = [run_logger(s.cfg, s.run_dir, step) for s in seeds]
    for seed, logger in zip(seeds, loggers):
        write_hparams(logger, {**policy_hparams(seed.model), **plain_hparams(seed.cfg.hparams())})
    names = _names(seeds)
    schedule = _Schedule(first, len(seeds))
    batch.on_step = schedule
    guard = None
    if first.guard:
        where = lambda: f"env step {batch.num_timesteps}"  # noqa: E731
        guard = NonFiniteGuard(batch.policy, [batch.optimizer], where, names, _stopper(batch, seeds, step))
        batch.check_data = _check_data(names, batch)
    probes = _probes(first, batch) if first.metrics_every else {}
    total = first.timesteps
    batch.reset()
    schedule.start(batch)
    bar = tqdm(
        total=total,
        initial=step,
        desc=_describe(seeds),
        unit="step",
        disable=not first.progress,
    )
    start, start_ns, iteration = time.perf_counter(), time.time_ns(), 0
    try:
        with SafeStop() as stop:
            while batch.num_timesteps < total:
                batch.collect_rollout()
                iteration += 1
                _rollout_end(batch, seeds, loggers, probes, schedule, iteration, start_ns, step)
                figures = batch.train(batch.progress_remaining(total))
                for logger, own in _going(seeds, zip(loggers, figures)):
                    for key, value in own.items():
                        logger.record(f"train/{key}", value)
                    logger.record("train/n_updates", batch.n_updates, exclude="tensorboard")
                bar.update(batch.num_timesteps - bar.n)
                more = batch.num_timesteps < total  # (SB3 checks at the next rollout's start; the end saves anyway)
                last = max(s.last_checkpoint for s in seeds)
                if more and first.checkpoint_every and batch.num_timesteps - last >= first.checkpoint_every:
                    _checkpoint(batch, seeds, envs)
                if stop.asked and more:
                    _checkpoint(batch, seeds, envs)
                    saved = ", ".join(str(s.run_dir / CHECKPOINT) for s in seeds if s.stopped is None)
                    raise Interrupted(
                        f"stopped by Ctrl-C at env step {batch.num_timesteps}; checkpoints saved as {saved}"
                    )
    except NonFiniteError as error:  # every seed stopped, or the envs' data
        going = [s for s in seeds if s.stopped is None]
        for seed in going:
            seed.stopped, seed.stopped_at = str(error), batch.num_timesteps
            write_stopped(seed.run_dir, batch.num_timesteps, str(error), _kept_step(seed, step))
        last = max(s.last_checkpoint for s in seeds)
        kept = (
            f"the last good checkpoints are at env step {last}: remove their {STOPPED}, then --resume continues "
            "from them"
            if any(s.checkpointed for s in seeds) or step
            else f"no checkpoint was written yet: remove their {STOPPED}, then --resume starts the runs again in "
            "their folders"
        )
        raise NonFiniteError(f"{error}; {kept}") from None
    finally:
        bar.close()
        if guard is not None:
            guard.remove()
    wall = time.perf_counter() - start
    for k, logger in _going(seeds, enumerate(loggers)):  # MethodLoggerCallback's end of training, and the flush
        _record_methods(batch, k, logger)
        logger.dump(batch.num_timesteps)
        logger.dump(batch.num_timesteps)
    if first.checkpoint_every:
        _checkpoint(batch, seeds, envs)
    summaries = []
    for k, (seed, logger) in enumerate(zip(seeds, loggers)):
        if seed.stopped is not None:
            logger.close()
            stopped = {"algo": "ppo", "method": seed.cfg.method, "seed": seed.cfg.seed, "env": seed.cfg.env}
            summaries.append(
                {**stopped, "timesteps": seed.stopped_at, "stopped": seed.stopped, "run_dir": str(seed.run_dir)}
            )
            continue
        model = seed.export(batch, k)
        model_path = seed.run_dir / "model.zip"
        atomic_write(model_path, model.save)
        normalize = _normalizer(envs, k)
        if normalize is not None:
            atomic_write(seed.run_dir / NORMALIZE_FILE, lambda tmp, n=normalize: n.save(str(tmp)))
        logger.close()
        returns = [ep["r"] for ep in batch.ep_info[k]]
        summary = {
            **{"algo": "ppo", "method": seed.cfg.method, "seed": seed.cfg.seed, "env": seed.cfg.env},
            "timesteps": batch.num_timesteps,
            "mean_return": float(np.mean(returns)) if returns else None,
            "episodes": len(returns),
            "steps_per_s": (batch.num_timesteps - step) / max(wall, 1e-9),
            "seeds_in_batch": len(seeds),
            **{"wall_s": wall, "run_dir": str(seed.run_dir), "model": str(model_path)},
        }
        write_json_atomic(seed.run_dir / "summary.json", summary)
        summaries.append(summary)
    return summaries


def _names(seeds: Sequence[_Seed]) -> list[str]:
    """Each seed's name in messages: ``seed S``, with its label where the batch has several."""
    several = len({s.cfg.label for s in seeds}) > 1
    return [f"{s.cfg.label} seed {s.cfg.seed}" if several else f"seed {s.cfg.seed}" for s in seeds]


def _kept_step(seed: _Seed, step: int) -> int | None:
    """The step of the seed's last good checkpoint (None: none yet)."""
    return seed.last_checkpoint if seed.checkpointed or step else None


def _stopper(batch: BatchedPPO, seeds: list[_Seed], step: int):
    """The guard's ``stop`` for the batch: the seeds whose values are not finite stop alone (each writes its
    ``stopped.json``; its logs and checkpoint stay at its last good step) and the others go on; when none is
    left, training stops."""

    def stop(members: list[int], message: str) -> None:
        for k in members:
            if seeds[k].stopped is None:
                seeds[k].stopped, seeds[k].stopped_at = message, batch.num_timesteps
                write_stopped(seeds[k].run_dir, batch.num_timesteps, message, _kept_step(seeds[k], step))
        if all(s.stopped is not None for s in seeds):
            raise NonFiniteError(message)

    return stop


def _going(seeds: Sequence[_Seed], items):
    """The items of the seeds that still train (``items``: one per seed, in order)."""
    return (item for seed, item in zip(seeds, items) if seed.stopped is None)


def _describe(seeds: Sequence[_Seed]) -> str:
    """The progress bar's name of the batch: its label and seeds, or how many labels and runs."""
    labels = list(dict.fromkeys(s.cfg.label for s in seeds))
    numbers = [s.cfg.seed for s in seeds]
    if len(labels) == 1:
        return f"{labels[0]} s{numbers[0]}-{numbers[-1]} ({len(seeds)} seeds)"
    return f"{labels[0]} .. {labels[-1]} ({len(labels)} labels, {len(seeds)} runs)"


def _record_methods(batch: BatchedPPO, k: int, logger: Logger) -> None:
    for target, method in batch.methods.items():
        for key, value in method.stats(k).items():
            logger.record(f"{method.name}/{target}/{key}", value)


def _rollout_end(
    batch: BatchedPPO,
    seeds: list[_Seed],
    loggers: list[Logger],
    probes: dict[str, LayerProbe],
    schedule: _Schedule,
    iteration: int,
    start_ns: int,
    step: int,
) -> None:
    """What SB3's callbacks record at a rollout's end (the method's figures, the plasticity metrics, the task),
    then ``OnPolicyAlgorithm.dump_logs``."""
    cfg = seeds[0].cfg
    seeds[0].rollouts += 1
    rollouts = seeds[0].rollouts
    measured: dict[str, list[dict[str, float]]] = {}
    if probes and (rollouts - 1) % cfg.metrics_every == 0:
        obs = batch.buffer["obs"]  # (T, K, N, obs): the probe is the last probe_size, time-major as SB3's
        recent = obs.movedim(1, 0).reshape(obs.shape[1], -1, *obs.shape[3:])[:, -cfg.probe_size :]
        runs = {
            "actor": lambda: batch.distribution(batch.policy.mlp_extractor.forward_actor(recent.to(batch.dtype))),
            "critic": lambda: batch.values(recent),
        }
        measured = {target: probe.measure_members(runs[target]) for target, probe in probes.items()}
    elapsed = max((time.time_ns() - start_ns) / 1e9, 1e-9)
    for k, logger in _going(seeds, enumerate(loggers)):
        _record_methods(batch, k, logger)
        for target, members in measured.items():
            for key, value in members[k].items():
                logger.record(f"plasticity/{target}/{key}", value)
        if schedule.active:
            logger.record("env/task", schedule.task)
        logger.record("time/iterations", iteration, exclude="tensorboard")
        episodes = batch.ep_info[k]
        if episodes:
            logger.record("rollout/ep_rew_mean", float(np.mean([e["r"] for e in episodes])))
            logger.record("rollout/ep_len_mean", float(np.mean([e["l"] for e in episodes])))
        logger.record("time/fps", int((batch.num_timesteps - step) / elapsed))
        logger.record("time/time_elapsed", int(elapsed), exclude="tensorboard")
        logger.record("time/total_timesteps", batch.num_timesteps, exclude="tensorboard")
        logger.dump(step=batch.num_timesteps)


def _checkpoint(batch: BatchedPPO, seeds: list[_Seed], envs: MemberEnvs) -> None:
    """Every going seed's verified checkpoint at the batch's step (each a single run's, :class:`_Seed.payload`); a
    stopped seed's stays its last good one."""
    for k, seed in _going(seeds, enumerate(seeds)):
        write_verified(seed.run_dir / CHECKPOINT, seed.payload(batch, k, envs))
        seed.last_checkpoint, seed.checkpointed = batch.num_timesteps, True
