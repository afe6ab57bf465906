"""The thin CLIs: train_ppo.py and demo.py parse flags into the library and report clear errors."""

import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
TINY = str(Path(__file__).parent / "tiny-preset.yaml")


def script(name):
    return runpy.run_path(str(ROOT / "scripts" / name))


def test_train_ppo_flags_reach_the_run(tmp_path, capsys):
    summary = script("train_ppo.py")["main"](
        ["--syre", "--preset", TINY, "--syre-gamma", "0.03", "--syre-ar-eps", "0.01", "--syre-targets", "critic",
         "--seed", "4", "--logdir", str(tmp_path), "--no-progress", "--device", "cpu"])
    assert summary["method"] == "syre-ar" and summary["seed"] == 4
    assert summary["run_dir"] == str(tmp_path / "AntBulletEnv-v0" / "syre-ar_s4")
    from stable_baselines3 import PPO

    handles = PPO.load(summary["model"], device="cpu").policy.methods
    assert list(handles) == ["critic"] and handles["critic"].gamma == 0.03 and handles["critic"].ar_eps == 0.01
    assert "syre-ar seed 4: mean return" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["--syre-gamma", "0.1"], "train_ppo.py: error: --syre-gamma given without --syre"),
    (["--syre", "--syre-targets", "legs"], "train_ppo.py: error: targets must be one or more of"),
    (["--env", "Nope-v0"], "train_ppo.py: error: unknown environment id 'Nope-v0'"),
    (["--preset", "fast"], "train_ppo.py: error: unknown preset 'fast'; available: ant-zoo, dohare"),
])
def test_train_ppo_bad_input_exits_with_one_clear_line(argv, message, tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_ppo.py"), *argv, "--logdir",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())


def test_train_ppo_help_lists_every_option():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_ppo.py"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    for flag in ("--env", "--timesteps", "--seed", "--n-envs", "--vec", "--preset", "--device", "--logdir",
                 "--save", "--syre", "--syre-gamma", "--syre-scale", "--syre-ar-eps", "--syre-targets",
                 "--weight-decay", "--progress"):
        assert f"{flag} " in out or f"{flag}," in out or f"{flag}\n" in out, flag


def test_demo_trains_both_twins_and_prints_the_table(tmp_path, capsys):
    summaries = script("demo.py")["main"](["--preset", TINY, "--timesteps", "256", "--logdir", str(tmp_path),
                                           "--no-progress"])
    assert [s["method"] for s in summaries] == ["vanilla", "syre"]
    out = capsys.readouterr().out
    assert "vanilla     0" in out and "syre        0" in out and f"--logdir {tmp_path}" in out
