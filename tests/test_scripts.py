"""The thin CLIs: train_ppo.py and demo.py parse flags into the library and report clear errors."""

import json
import re
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
        [
            "--syre",
            "--preset",
            TINY,
            "--syre-gamma",
            "0.03",
            "--syre-ar-eps",
            "0.01",
            "--syre-targets",
            "critic",
            "--seed",
            "4",
            "--logdir",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert summary["method"] == "syre-ar" and summary["seed"] == 4
    assert summary["run_dir"] == str(tmp_path / "AntBulletEnv-v0" / "syre-ar_s4")
    from stable_baselines3 import PPO

    handles = PPO.load(summary["model"], device="cpu").policy.methods
    settings = handles["critic"].settings
    assert list(handles) == ["critic"] and settings.gamma == 0.03 and settings.ar_eps == 0.01
    assert "syre-ar seed 4: mean return" in capsys.readouterr().out


BAD_PRESETS = {  # the typos of issue 8, each in a copy of the tiny preset
    "timestep": ("timesteps: 256", "timestep: 256"),
    "normalise": ("normalize: true", "normalise: true"),
    "gama": ("{gamma: 0.01, scale: 0.1}", "{gama: 0.5}"),
    "n_step": ("n_steps: 128", "n_step: 128"),
    "net_arc": ("net_arch:", "net_arc:"),
    "relu6": ("activation_fn: relu", "activation_fn: relu6"),
    "malformed": ("n_epochs: 1}", "n_epochs: 1"),
}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--syre-gamma", "0.1"], "train_ppo.py: error: --syre-gamma given without --syre"),
        (["--syre", "--syre-targets", "legs"], "train_ppo.py: error: targets must be one or more of"),
        (["--env", "Nope-v0"], "train_ppo.py: error: unknown environment id 'Nope-v0'"),
        (
            ["--preset", "fast"],
            "train_ppo.py: error: unknown preset 'fast'; available: ant-zoo, cartpole-tasks, cchain-acrobot, "
            "cchain-cartpole, dohare",
        ),
        (["--timestep", "10"], "train_ppo.py: error: unrecognized arguments: --timestep 10"),
        (
            ["--method", "syre", "--method-args", "gamma=true"],
            "train_ppo.py: error: syre gamma must be a number, got True",
        ),
        (
            ["--method", "syre", "--method-args", "seed=1.7"],
            "train_ppo.py: error: syre seed must be an integer, got 1.7",
        ),
        (["--method", "syre", "--method-args", "gama=0.5"], "syre has no setting 'gama'; did you mean 'gamma'?"),
        (
            ["--method", "syre", "--method-args", "gamma"],
            "argument --method-args: method setting 'gamma' is not key=value",
        ),
        (["--seed", "1.7"], "train_ppo.py: error: argument --seed: invalid int value: '1.7'"),
        (["--syre", "--syre-gamma", "true"], "train_ppo.py: error: argument --syre-gamma: invalid float value: 'true'"),
        (
            ["--timesteps", "4096", "--preset", "ant-zoo"],
            "train_ppo.py: error: --timesteps 4096 is not a whole number of "
            "rollouts of 8192 steps (512 x 16 envs), and ppo only stops "
            "between rollouts; use 8192",
        ),
        (["--preset", "timestep"], "tiny.yaml: preset has no setting 'timestep'; did you mean 'timesteps'?"),
        (["--preset", "normalise"], "tiny.yaml: preset has no setting 'normalise'; did you mean 'normalize'?"),
        (["--preset", "gama"], "tiny.yaml: preset method_settings has no setting 'gama'; did you mean 'gamma'?"),
        (["--preset", "n_step"], "tiny.yaml: preset algo_kwargs has no setting 'n_step'; did you mean 'n_steps'?"),
        (["--preset", "net_arc"], "tiny.yaml: preset policy_kwargs has no setting 'net_arc'; did you mean 'net_arch'?"),
        (
            ["--preset", "relu6"],
            "activation_fn must be one of relu, tanh, elu, leaky_relu, leaky_relu_0.1, gelu, got 'relu6'",
        ),
        (["--preset", "malformed"], "tiny.yaml:8: malformed YAML in this preset"),
    ],
)
def test_train_ppo_bad_input_exits_with_one_clear_line(argv, message, tmp_path):
    if argv[-1] in BAD_PRESETS:
        old, new = BAD_PRESETS[argv[-1]]
        text = Path(TINY).read_text()
        assert old in text
        (tmp_path / "tiny.yaml").write_text(text.replace(old, new))
        argv = [*argv[:-1], str(tmp_path / "tiny.yaml")]
    logdir = tmp_path / "runs"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_ppo.py"), "--preset", TINY, *argv, "--logdir", str(logdir)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("pybullet build time")]  # PyBullet's C
    assert proc.returncode != 0 and len(lines) == 1 and lines[0].startswith("train_ppo.py: error: "), proc.stderr
    assert message in lines[0]
    assert not logdir.exists()


def test_a_setting_is_text_only_on_the_command_line(tmp_path):
    """--syre-gamma is text in argv and in argparse, then one number (in TrainConfig, then in one SyreSettings)
    all the way to the decay: nothing formats it as text and parses it back (tests/trace_setting.py)."""
    from tests.trace_setting import train_ppo_gamma

    calls = train_ppo_gamma(str(tmp_path))
    assert [name for how, _, name in calls if how == "text"] == ["main", "cli", "parse_dataclass"]
    assert calls[-1][::2] == ("decay", "before_step")
    assert ("number", str(ROOT / "syre_rl" / "settings.py"), "from_dict") in calls  # made once, typed


def test_train_ppo_help_lists_every_option():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_ppo.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in (
        "--env",
        "--timesteps",
        "--seed",
        "--n-envs",
        "--vec",
        "--preset",
        "--device",
        "--logdir",
        "--save",
        "--syre",
        "--syre-gamma",
        "--syre-scale",
        "--syre-ar-eps",
        "--syre-targets",
        "--weight-decay",
        "--progress",
    ):
        assert f"{flag} " in out or f"{flag}," in out or f"{flag}\n" in out, flag


def test_demo_trains_both_twins_and_prints_the_table(tmp_path, capsys):
    summaries = script("demo.py")["main"](
        ["--preset", TINY, "--timesteps", "256", "--logdir", str(tmp_path), "--no-progress"]
    )
    assert [s["method"] for s in summaries] == ["vanilla", "syre"]
    out = capsys.readouterr().out
    assert "vanilla     0" in out and "syre        0" in out and f"--logdir {tmp_path}" in out


TINY_SAC = str(Path(__file__).parent / "tiny-sac.yaml")


def test_train_runs_sac_with_hparams_metrics_and_a_model_sac_loads(tmp_path):
    from stable_baselines3 import SAC
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    summary = script("train.py")["main"](
        [
            "--algo",
            "sac",
            "--preset",
            TINY_SAC,
            "--syre",
            "--syre-gamma",
            "0.02",
            "--logdir",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
            "--metrics-every",
            "1",
        ]
    )
    assert (summary["algo"], summary["method"], summary["timesteps"]) == ("sac", "syre", 256)
    model = SAC.load(summary["model"], device="cpu")
    assert type(model.policy).__name__ == "MethodSACPolicy" and model.policy.method_settings.gamma == 0.02
    events = EventAccumulator(summary["run_dir"])
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "syre/actor/anchor_distance",
        "syre/critic/penalty",
        "plasticity/critic/layer0/effective_rank",
        "plasticity/actor/layer1/dead_units",
        "train/critic_loss",
    } <= tags
    start = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["algo"].string_value == "SAC" and hparams["method"].string_value == "syre"
    assert hparams["method/gamma"].number_value == 0.02 and hparams["seed"].number_value == 0


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--algo", "dqn"], "dqn on AntBulletEnv-v0: The algorithm only supports"),
        (
            ["--algo", "sac", "--preset", "ant-zoo"],
            "--algo sac with preset ant-zoo of algorithm ppo: give a sac preset",
        ),
        (["--algo", "sac", "--timesteps", "100"], "--timesteps 100 is not a whole number of rollouts of 8 steps"),
        (["--algo", "ppo2"], "argument --algo: invalid choice: 'ppo2'"),
    ],
)
def test_train_refuses_algorithm_mismatches(argv, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train.py"), *argv, "--logdir", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stderr.splitlines() if not line.startswith("pybullet build time")]
    assert proc.returncode != 0 and len(lines) == 1 and message in lines[0], proc.stderr
    assert not any(tmp_path.iterdir())


def test_train_runs_dqn_on_sb3_defaults(tmp_path):
    summary = script("train.py")["main"](
        [
            "--algo",
            "dqn",
            "--env",
            "CartPole-v1",
            "--timesteps",
            "200",
            "--syre",
            "--logdir",
            str(tmp_path),
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert (summary["algo"], summary["timesteps"]) == ("dqn", 200)
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["targets"] == "critic" and config["hyperparameters"]["algo"] == "dqn"


def test_sac_resumes_with_its_replay_buffer(tmp_path):
    import io
    import pickle

    from syre_rl.agents.runs import read_verified

    argv = [
        "--algo",
        "sac",
        "--preset",
        TINY_SAC,
        "--logdir",
        str(tmp_path),
        "--no-progress",
        "--device",
        "cpu",
        "--metrics-every",
        "0",
        "--checkpoint-every",
        "64",
    ]
    first = script("train.py")["main"](argv)
    payload = pickle.loads(read_verified(Path(first["run_dir"]) / "checkpoint.ckpt"))
    from stable_baselines3 import SAC

    model = SAC.load(io.BytesIO(payload["model"]), device="cpu")
    model.load_replay_buffer(io.BytesIO(payload["replay_buffer"]))
    assert model.replay_buffer.size() == 256
    resumed = script("train.py")["main"]([*argv, "--timesteps", "512", "--resume"])
    assert resumed["timesteps"] == 512 and resumed["run_dir"] == first["run_dir"]


def interrupt_when(argv: list[str], ready: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run a script, send it one Ctrl-C (SIGINT) once ``ready`` holds something (an RL run's progress.csv is
    made empty before training starts, and written at its first rollout's end), and wait for it to end."""
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + timeout
    while not (ready.exists() and ready.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


@pytest.mark.slow  # two processes trained, about 12 s
def test_ctrl_c_stops_a_training_run_at_a_safe_point_saves_it_and_says_how_to_go_on(tmp_path):
    """One line, exit 130, a verified checkpoint written at the step it stopped, and --resume continues it."""
    from syre_rl.agents.runs import read_verified

    argv = ["scripts/train.py", "--algo", "ppo", "--preset", "cartpole-tasks", "--timesteps", "1024000"]
    argv += ["--logdir", str(tmp_path), "--no-progress", "--checkpoint-every", "0"]
    run = tmp_path / "CartPole-v1" / "vanilla_s0"
    done = interrupt_when(argv, run / "progress.csv")
    assert done.returncode == 130, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("train.py: stopped by Ctrl-C at env step ") and "checkpoint saved as" in line
    assert line.endswith(" ".join(["python", *argv, "--resume"]))
    assert read_verified(run / "checkpoint.ckpt") and not (run / "summary.json").exists()
    resumed = subprocess.run(
        [sys.executable, *argv[:6], "4096", *argv[7:], "--resume"], cwd=ROOT, capture_output=True, text=True
    )
    assert resumed.returncode == 0 and "mean return" in resumed.stdout, resumed.stderr[-2000:]


@pytest.mark.slow  # two processes trained, about 10 s
def test_ctrl_c_stops_a_continual_run_after_the_task_it_came_in_and_saves_it(tmp_path):
    argv = ["scripts/continual.py", "--tasks", "12", "--examples-per-task", "3000", "--probe-size", "100"]
    argv += ["--hidden", "16", "--no-eval-seen", "--logdir", str(tmp_path), "--no-progress"]
    run = tmp_path / "permuted-mnist" / "vanilla_s0"
    done = interrupt_when(argv, run / "checkpoint.ckpt")
    assert done.returncode == 130, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert re.fullmatch(
        r"continual.py: stopped by Ctrl-C after task (\d+); checkpoint saved as .*checkpoint.ckpt; continue with: "
        + re.escape(" ".join(["python", *argv, "--resume"])),
        line,
    ), line
    task = int(re.match(r".*after task (\d+)", line).group(1))
    assert (run / "results.jsonl").read_text().count("\n") == task + 1  # that task finished, and no other
    resumed = subprocess.run([sys.executable, *argv, "--resume"], cwd=ROOT, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run / "results.jsonl").read_text().count("\n") == 12


@pytest.mark.slow  # about 2 minutes: each case is a fresh process
def test_every_bad_input_a_new_user_tried_is_refused_in_one_line():
    proc = subprocess.run([sys.executable, "scripts/check_bad_inputs.py"], cwd=ROOT, capture_output=True, text=True)
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and counts["refused"] == counts["cases"] >= 29, proc.stdout[-3000:]
