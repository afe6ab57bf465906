"""GPU paths (marked ``gpu``: skipped without CUDA; scripts/gpu_check.sh runs every GPU test and the GPU
benchmark): continual runs with the data on the device, K seeds in one model, PPO and SAC, and a sweep whose runs
share one GPU."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from syre_rl.agents import sweep
from syre_rl.agents.continual import ContinualConfig, load_checkpoint, run_continual, run_continual_seeds
from syre_rl.agents.rl import ALGORITHMS, TrainConfig, train
from tests.conftest import SMALL, close, synthetic_digits, without_wall

pytestmark = pytest.mark.gpu
TESTS = Path(__file__).parent


def test_a_continual_run_on_the_gpu_keeps_data_and_state_there(tmp_path):
    from syre_rl.agents import continual

    seen = {}
    real = continual._SeedRun.start

    def start(run):
        seen["data"] = run.tasks.task(0)[0].device
        seen["net"] = next(run.net.parameters()).device
        real(run)

    continual._SeedRun.start = start
    try:
        records = run_continual(
            ContinualConfig(**SMALL, method="syre", device="cuda", logdir=str(tmp_path)), data=synthetic_digits()
        )
    finally:
        continual._SeedRun.start = real
    assert seen["data"].type == "cuda" and seen["net"].type == "cuda"
    assert len(records) == 3 and 0 < records[-1]["test_accuracy"] <= 1
    state = load_checkpoint(tmp_path / "permuted-mnist" / "syre_s0")["learner"]
    assert state["net"]["0.weight_syre_anchor"].device.type == "cpu"  # checkpoints load anywhere


@pytest.mark.parametrize("method", ["syre", "shrink-perturb", "redo"])
def test_k_seeds_on_the_gpu_equal_their_single_gpu_runs(tmp_path, method):
    data = synthetic_digits()
    cfg = ContinualConfig(
        **SMALL,
        method=method,
        device="cuda",
        logdir=str(tmp_path / "batched"),
        method_args={"every": 10, "tau": 0.3} if method == "redo" else {},
    )
    batched = run_continual_seeds(dataclasses.replace(cfg, seeds=[0, 1, 2]), data=data)
    for seed in (0, 1, 2):
        single = run_continual(dataclasses.replace(cfg, seed=seed, logdir=str(tmp_path / "single")), data=data)
        assert close(without_wall(batched[seed]), without_wall(single)) == []


@pytest.mark.parametrize("preset", ["tiny-preset.yaml", "tiny-sac.yaml"])
def test_ppo_and_sac_train_on_the_gpu(tmp_path, preset):
    summary = train(
        TrainConfig(preset=str(TESTS / preset), syre=True, device="cuda", logdir=str(tmp_path), progress=False)
    )
    assert summary["timesteps"] == 256
    algo = {"tiny-preset.yaml": "ppo", "tiny-sac.yaml": "sac"}[preset]
    loaded = ALGORITHMS[algo][0].load(summary["model"], device="cuda")
    assert all(p.is_cuda for p in loaded.policy.parameters())
    assert all(a.is_cuda for h in loaded.policy.methods.values() for a in h.anchors())


def test_sweep_runs_share_one_gpu_by_fractions(tmp_path):
    spec = sweep.SweepSpec.from_dict(
        {
            "logdir": str(tmp_path),
            "seeds": [0, 1],
            "gpus": 0.5,
            "base": {**{k: v for k, v in SMALL.items() if k != "progress"}, "examples_per_task": 300, "device": "cuda"},
            "grid": [{"method": "syre"}],
        }
    )
    configs = sweep.expand(spec)
    lines = []
    done = sweep.run_sweep(configs, spec, cpus=2, progress=False, log=lines.append)
    assert len(done) == 2 and "0.5 GPUs)" in lines[0]
    config = json.loads((tmp_path / "permuted-mnist" / "syre_s1" / "config.json").read_text())
    assert config["device"] == "cuda"


@pytest.mark.parametrize("method", ["syre", "redo"])
def test_batched_ppo_on_the_gpu_keeps_network_buffers_and_sampling_there_and_equals_its_cpu_run(tmp_path, method):
    """K seeds of PPO as one batched learner on the GPU (float64, so that the CPU and GPU runs agree to 1e-6
    over 52 updates), and a batched run's model that loads on the GPU."""
    from syre_rl.agents.rl.seeds import make_batch, train_seeds

    settings = {"every": 2, "tau": 0.9} if method == "redo" else {}
    runs = {}
    for device in ("cpu", "cuda"):
        cfg = TrainConfig(
            preset=str(TESTS / "tiny-cartpole.yaml"), seeds=[0, 3], method=method, method_args=settings, device=device
        ).resolved()
        batch, envs, _ = make_batch([cfg.member(s) for s in (0, 3)], torch.float64)
        batch.reset()
        for _ in range(13):
            batch.collect_rollout()
            assert batch.buffer["values"].is_cuda == (device == "cuda")
            batch.train(batch.progress_remaining(cfg.timesteps))
        envs.close()
        runs[device] = batch
    assert all(p.is_cuda for p in runs["cuda"].policy.parameters())
    for name, value in runs["cpu"].policy.state_dict().items():
        torch.testing.assert_close(runs["cuda"].policy.state_dict()[name].cpu(), value, rtol=1e-6, atol=1e-9)
    [summary, _] = train_seeds(
        TrainConfig(
            preset=str(TESTS / "tiny-cartpole.yaml"),
            seeds=[0, 3],
            method=method,
            device="cuda",
            logdir=str(tmp_path),
            progress=False,
        )
    )
    loaded = ALGORITHMS["ppo"][0].load(summary["model"], device="cuda")
    assert all(p.is_cuda for p in loaded.policy.parameters())
