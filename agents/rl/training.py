"""Build and train one RL run: the algorithm with its syre_rl policy from a resolved :class:`TrainConfig`, its
logs, callbacks and guard, and the command line of ``scripts/train.py``.

A syre run and its vanilla twin differ only in syre: same preset, same seed, same initial weights (the anchors
come from their own random streams), same environment stream. The L2 baseline is the same policy with anchor
scale 0: coupled weight decay toward zero on exactly the parameters syre decays toward its anchors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import CSVOutputFormat, Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from syre_rl.agents.config import parse_dataclass, resume_command
from syre_rl.agents.guard import NonFiniteError, NonFiniteGuard
from syre_rl.agents.rl.checkpoints import (
    CheckpointCallback,
    FiniteDataCallback,
    StopOnInterrupt,
    TensorBoardFrom,
    load_checkpoint,
    save_checkpoint,
    trim_progress,
)
from syre_rl.agents.rl.config import METRICS_STEPS, TrainConfig
from syre_rl.agents.rl.presets import ALGORITHMS
from syre_rl.agents.runs import (
    CONFIG,
    Interrupted,
    check_not_stopped,
    check_unchanged,
    kept,
    latest_run_dir,
    new_run_dir,
    owned,
    write_json_atomic,
    write_stopped,
)
from syre_rl.callbacks import HParamsCallback, MethodLoggerCallback, PlasticityCallback
from syre_rl.envs.vec import make_env, save_normalization
from syre_rl.files import atomic_write


def build_model(cfg: TrainConfig, env: VecEnv) -> BaseAlgorithm:
    """The agent of the resolved ``cfg`` on ``env``: the algorithm and its syre_rl policy class, hyperparameters
    from ``cfg.hyperparameters``."""
    algorithm, policy = ALGORITHMS[cfg.algo]
    return algorithm(
        policy,
        env,
        seed=cfg.seed,
        device=cfg.device,
        verbose=cfg.verbose,
        policy_kwargs=cfg.policy_kwargs(),
        **cfg.hyperparameters.algo_kwargs,
    )


def run_env(cfg: TrainConfig) -> VecEnv:
    """The envs of a (resolved) run, as its single run makes them: the preset's ``gym.make`` arguments and reward
    scale, its normalisation and the environments' settings (tasks) included."""
    return make_env(
        cfg.env,
        n_envs=cfg.n_envs,
        seed=cfg.seed,
        vec=cfg.vec,
        normalize=cfg.hyperparameters.normalize,
        **cfg.make_env_kwargs(),
    )


def _build(cfg: TrainConfig) -> tuple[BaseAlgorithm, VecEnv]:
    """A new model on new envs; SB3's assertions (e.g. DQN given a Box action space) become one-line errors."""
    env = run_env(cfg)
    try:
        return build_model(cfg, env), env
    except AssertionError as error:
        env.close()
        raise ValueError(f"{cfg.algo} on {cfg.env}: {error}") from None
    except Exception:
        env.close()
        raise


def train(config: TrainConfig, callbacks: Sequence[BaseCallback] = ()) -> dict[str, Any]:
    """Train one run (or resume one): TensorBoard + CSV logs (scalars and hparams), verified checkpoints, the
    final model and VecNormalize statistics in the run folder, which this process owns while it trains.

    :param callbacks: more SB3 callbacks for ``learn``, after the run's own
    :return: summary with ``algo``, ``method``, ``seed``, ``timesteps``, ``mean_return`` (over the last <= 100
        episodes), ``episodes``, ``steps_per_s``, ``wall_s``, ``run_dir``, ``model`` (also written to summary.json)
    :raises ValueError: bad input, a run in use, a damaged checkpoint, a finished run, or a non-finite value
        met in training (the last checkpoint is then the last good state)
    """
    cfg = config.resolved()
    torch.set_num_threads(cfg.threads)
    if cfg.resume:
        run_dir = latest_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed, CONFIG)
        with owned(run_dir):
            check_not_stopped(run_dir)
            check_unchanged(run_dir, cfg.to_dict(), cfg.RESUMABLE, "--resume", cfg.upgraded)
            loaded = load_checkpoint(cfg, run_dir)
            model, env = loaded if loaded is not None else _build(cfg)
            if model.num_timesteps >= cfg.timesteps and (run_dir / "summary.json").is_file():
                env.close()
                raise ValueError(
                    f"--resume: the run in {run_dir} is finished at {model.num_timesteps} steps; give "
                    f"--timesteps above {model.num_timesteps} to continue it"
                )
            # (trained to the end but stopped before its summary: _train learns 0 steps and writes it)
            return _train(cfg, model, env, run_dir, callbacks)
    model, env = _build(cfg)  # before the run folder: a policy refusing its settings leaves nothing
    run_dir = new_run_dir(cfg.logdir, cfg.env, cfg.label, cfg.seed, cfg.to_dict())
    with owned(run_dir):
        return _train(cfg, model, env, run_dir, callbacks)


def run_logger(cfg: TrainConfig, run_dir: Path, step: int) -> Logger:
    """TensorBoard and CSV (and with ``verbose`` the console): a resumed run writes its CSV beside the earlier
    ones, and TensorBoard hides the steps it redoes."""
    trim_progress(run_dir, step)
    csv_name = f"progress_from_{step}.csv" if step else "progress.csv"
    formats = [TensorBoardFrom(str(run_dir), step), CSVOutputFormat(str(run_dir / csv_name))]
    if cfg.verbose:
        formats.append(make_output_format("stdout", str(run_dir)))
    return Logger(str(run_dir), formats)


def _callbacks(cfg: TrainConfig, model: BaseAlgorithm, run_dir: Path) -> list[BaseCallback]:
    """The run's own callbacks: HParams, the method's figures, the plasticity metrics, the environments'
    schedules and the checkpoints."""
    per = 1  # off-policy "rollouts" are train_freq steps: measure every METRICS_STEPS env steps per --metrics-every
    if isinstance(model, OffPolicyAlgorithm):
        per = max(1, METRICS_STEPS // (cfg.hyperparameters.rollout(cfg.n_envs) or METRICS_STEPS))
    callbacks: list[BaseCallback] = [HParamsCallback(cfg.hparams()), MethodLoggerCallback(every=per)]
    if cfg.metrics_every:
        probe = dict(probe_size=cfg.probe_size, tau=cfg.tau, duplicate_threshold=cfg.duplicate_threshold)
        callbacks.append(PlasticityCallback(every=cfg.metrics_every * per, **probe))
    callbacks += cfg.env_callbacks()
    if cfg.checkpoint_every:
        callbacks.append(CheckpointCallback(run_dir, cfg.checkpoint_every))
    return callbacks


def _train(
    cfg: TrainConfig, model: BaseAlgorithm, env: VecEnv, run_dir: Path, extra: Sequence[BaseCallback]
) -> dict[str, Any]:
    """The training of :func:`train`, in a run folder this process owns."""
    guard = None
    step = model.num_timesteps
    try:
        model.set_logger(run_logger(cfg, run_dir, step))
        stop = StopOnInterrupt()
        callbacks = [stop, *_callbacks(cfg, model, run_dir), *extra]
        if cfg.guard:
            guard = NonFiniteGuard(model.policy, model.policy._optimizers(), lambda: f"env step {model.num_timesteps}")
            callbacks.insert(1, FiniteDataCallback())  # after the Ctrl-C one, before anything records the step
        start = time.perf_counter()
        try:
            model.learn(
                max(0, cfg.timesteps - step),
                callback=callbacks,
                progress_bar=cfg.progress,
                reset_num_timesteps=not step,
            )
        except NonFiniteError as error:
            last = _last_good(callbacks, step)
            write_stopped(run_dir, model.num_timesteps, str(error), last)
            raise NonFiniteError(f"{error}; {kept(run_dir, last)}") from None
        wall = time.perf_counter() - start
        model.logger.dump(model.num_timesteps)  # SB3 dumps train/* one iteration late: flush the last ones
        if stop.asked:
            saved = save_checkpoint(model, run_dir)
            raise Interrupted(f"stopped by Ctrl-C at env step {model.num_timesteps}; checkpoint saved as {saved}")
        model_path = Path(cfg.save) if cfg.save else run_dir / "model.zip"
        atomic_write(model_path, model.save)
        save_normalization(env, model_path.parent)
    finally:
        if guard is not None:
            guard.remove()
        env.close()
    returns = [ep["r"] for ep in model.ep_info_buffer]
    summary = {
        **{"algo": cfg.algo, "method": cfg.method, "seed": cfg.seed, "env": cfg.env},
        "timesteps": model.num_timesteps,
        "mean_return": float(np.mean(returns)) if returns else None,
        "episodes": len(returns),
        "steps_per_s": (model.num_timesteps - step) / max(wall, 1e-9),
        **{"wall_s": wall, "run_dir": str(run_dir), "model": str(model_path)},
    }
    write_json_atomic(run_dir / "summary.json", summary)
    return summary


def _last_good(callbacks: list[BaseCallback], step: int) -> int | None:
    """The step of a stopped run's last checkpoint (None: none), written while everything in it was finite (the
    guard stops training before a non-finite value enters the weights or a buffer)."""
    saved = [c.last for c in callbacks if isinstance(c, CheckpointCallback) and c.saved]
    return saved[0] if saved else step or None


def cli(argv: list[str] | None, description: str, prog: str) -> dict[str, Any]:
    """What ``scripts/train.py`` and ``scripts/train_ppo.py`` run: flags into a :class:`TrainConfig`, one run, a
    one-line summary; bad input exits with one line (``prog: error: ...``) before anything is built."""
    config = parse_dataclass(TrainConfig, description, argv, prog)
    try:
        if config.seeds is not None:
            from syre_rl.agents.rl.seeds import train_seeds

            summaries = train_seeds(config)
        else:
            summaries = [train(config)]
    except ValueError as err:
        raise SystemExit(f"{prog}: error: {err}") from None
    except KeyboardInterrupt as stop:  # Interrupted: at a safe point, saved; a second Ctrl-C: at once
        said = f"{stop}; " if isinstance(stop, Interrupted) else "stopped by Ctrl-C; "
        print(f"{prog}: {said}continue with: {resume_command(prog, argv)}", file=sys.stderr)
        raise SystemExit(130) from None
    for summary in summaries:
        if "stopped" in summary:
            print(
                f"{summary['algo']} {summary['method']} seed {summary['seed']}: stopped at env step "
                f"{summary['timesteps']} ({summary['stopped']}); run in {summary['run_dir']}"
            )
            continue
        print(
            f"{summary['algo']} {summary['method']} seed {summary['seed']}: mean return {summary['mean_return']} over "
            f"the last {summary['episodes']} episodes, {summary['steps_per_s']:.0f} steps/s; "
            f"run in {summary['run_dir']}"
        )
    return summaries[0] if len(summaries) == 1 else {"seeds": summaries}
