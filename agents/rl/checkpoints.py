"""Checkpoint and resume of RL runs: the verified checkpoint written between rollouts, the model and envs read
back from it, and the TensorBoard and CSV logs of a resumed run trimmed to the steps it redoes."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import TensorBoardOutputFormat
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from syre_rl.agents.guard import NonFiniteError
from syre_rl.agents.rl.config import TrainConfig
from syre_rl.agents.rl.presets import ALGORITHMS
from syre_rl.agents.runs import CHECKPOINT, SafeStop, previous, read_verified, write_verified
from syre_rl.envs.vec import make_env
from syre_rl.files import atomic_write


class CheckpointCallback(BaseCallback):
    """Every ``every`` env steps, once the rollout is trained on, saves ``RUN_DIR/checkpoint.ckpt``: the model, the
    VecNormalize statistics and (off-policy algorithms) the replay buffer in one file verified by its SHA-256, the
    previous one kept until it is complete (:func:`syre_rl.agents.runs.write_verified`). A resumed run continues
    from there (weights, optimizer, the methods' state, friction phase) but not bit-exactly: SB3 reseeds its random
    streams and resets the envs on load."""

    def __init__(self, run_dir: Path, every: int):
        super().__init__()
        self.run_dir, self.every, self.last, self.saved = run_dir, every, 0, False

    def _on_training_start(self) -> None:
        self.last = self.num_timesteps

    def _on_rollout_start(self) -> None:
        # At a rollout start every collected step has been trained on (SB3 calls on_rollout_end before train()).
        if self.num_timesteps - self.last >= self.every:
            self._save()

    def _on_training_end(self) -> None:
        self._save()

    def _save(self) -> None:
        self.last, self.saved = self.num_timesteps, True
        save_checkpoint(self.model, self.run_dir)

    def _on_step(self) -> bool:
        return True


def save_checkpoint(model: BaseAlgorithm, run_dir: Path) -> Path:
    """Write ``RUN_DIR/checkpoint.ckpt``: the model, its VecNormalize statistics and (off-policy algorithms) the
    replay buffer, verified by its SHA-256, the previous one kept until it is complete."""
    buffer = io.BytesIO()
    model.save(buffer)
    env = model.get_env()
    normalize = env if isinstance(env, VecNormalize) else None
    payload = {
        "model": buffer.getvalue(),
        "normalize": pickle.dumps(normalize) if normalize else None,
        "replay_buffer": None,
    }
    if isinstance(model, OffPolicyAlgorithm):  # an off-policy run resumes with the data it learnt from
        replay = io.BytesIO()
        model.save_replay_buffer(replay)
        payload["replay_buffer"] = replay.getvalue()
    write_verified(run_dir / CHECKPOINT, pickle.dumps(payload))
    return run_dir / CHECKPOINT


class StopOnInterrupt(BaseCallback):
    """The first Ctrl-C stops training after the current env step (:class:`~syre_rl.agents.runs.SafeStop`), so
    that the run can write its checkpoint; a second one stops at once."""

    def __init__(self) -> None:
        super().__init__()
        self.stop = SafeStop()

    @property
    def asked(self) -> bool:
        return self.stop.asked

    def _on_training_start(self) -> None:
        self.stop.__enter__()

    def _on_step(self) -> bool:
        return not self.stop.asked

    def _on_training_end(self) -> None:
        self.stop.__exit__()


class FiniteDataCallback(BaseCallback):
    """The guard's half for data: at every env step, before SB3 stores the transition in its rollout or replay
    buffer, its observations, rewards and actions must be finite. A NaN reward that entered a replay buffer would
    make every later checkpoint hold it; stopped here, nothing non-finite enters training, and the last checkpoint
    is good."""

    def _on_step(self) -> bool:
        for field, what in (("new_obs", "observation"), ("rewards", "reward"), ("actions", "action")):
            value = self.locals.get(field)
            for name, array in value.items() if isinstance(value, dict) else [(what, value)]:
                if array is None:
                    continue
                array = np.asarray(array, dtype=float)
                if not np.isfinite(array).all():
                    env = int(np.argwhere(~np.isfinite(array.reshape(len(array), -1)))[0][0])
                    raise NonFiniteError(
                        f"env step {self.num_timesteps}: non-finite {name} from env "
                        f"{env} ({array[env].ravel()[:8].tolist()}); training stopped before it entered the buffer"
                    )
        return True


class TensorBoardFrom(TensorBoardOutputFormat):
    """SB3's TensorBoard output, with earlier events after ``step`` hidden (``purge_step``): a resumed run redoes
    the steps after its checkpoint (all of them when it was stopped before its first), and TensorBoard then shows
    each step once."""

    def __init__(self, folder: str, step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=folder, purge_step=step + 1 if step else 0)
        self._is_closed = False
        self._step, self._keys = -1, set()

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        """One value per tag and step: SB3 dumps ``train/*`` one iteration late, so the end of training's flush
        (and the method's end-of-training figures) would give a tag a second value at the last step. The first
        stays (SB3's convention: a step's ``train/*`` is of the update before it); the CSV keeps every row."""
        if step != self._step:
            self._step, self._keys = step, set()
        fresh = {k: v for k, v in key_values.items() if k not in self._keys}
        self._keys |= set(fresh)
        super().write(fresh, {k: v for k, v in key_excluded.items() if k in fresh}, step)


def trim_progress(run_dir: Path, step: int) -> None:
    """Drop the rows after ``step`` from a run's ``progress*.csv`` files (the steps a resumed run redoes); a file
    left with no row is removed (a run started again from step 0 writes ``progress.csv`` anew)."""
    for path in run_dir.glob("progress*.csv"):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
        if not rows or "time/total_timesteps" not in rows[0]:
            continue
        kept = [r for r in rows if r["time/total_timesteps"] == "" or float(r["time/total_timesteps"]) <= step]
        if not kept:
            path.unlink()
        elif len(kept) < len(rows):
            atomic_write(path, lambda tmp, kept=kept, names=list(reader.fieldnames or []): _write_csv(tmp, names, kept))


def _write_csv(path: Path, names: list[str], rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, names)
        writer.writeheader()
        writer.writerows(rows)


def load_checkpoint(cfg: TrainConfig, run_dir: Path) -> tuple[BaseAlgorithm, VecEnv] | None:
    """The model and envs of a run's last verified checkpoint, or None when it has none (it was stopped before)."""
    path = run_dir / CHECKPOINT
    if not (path.is_file() or previous(path).is_file()):
        return None
    payload = pickle.loads(read_verified(path))
    env = make_env(cfg.env, n_envs=cfg.n_envs, seed=cfg.seed, vec=cfg.vec, **cfg.make_env_kwargs())
    if payload["normalize"] is not None:
        normalize = pickle.loads(payload["normalize"])
        normalize.set_venv(env)
        env = normalize
    model = ALGORITHMS[cfg.algo][0].load(io.BytesIO(payload["model"]), env=env, device=cfg.device)
    if payload.get("replay_buffer") is not None:
        model.load_replay_buffer(io.BytesIO(payload["replay_buffer"]))
    return model, env
