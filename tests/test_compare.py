"""The comparison tool: run discovery, alignment, bootstrap intervals, and the figures and summaries it writes,
checked against TensorBoard logs with known values."""

import calendar
import csv
import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from torch.utils.tensorboard import SummaryWriter

from syre_rl.agents.analysis import combine, compare
from syre_rl.agents.analysis.phases import friction_changes, friction_marks, phase_returns
from syre_rl.agents.analysis.plots import method_colors
from syre_rl.agents.analysis.report import (
    fresh_comparison,
    paired_table,
    read_summary_csv,
    summary_csv,
    tuning_table,
)
from syre_rl.agents.analysis.runs import RETURN, check_event_file, find_runs, group_runs, latest_repeats, load_scalars
from syre_rl.agents.analysis.stats import Bootstrap, aggregate, align, bootstrap_ci, iqm_ci
from syre_rl.agents.analysis.summary import SummaryRow, summarize
from syre_rl.agents.analysis.tasks import chosen_points, method_of, paired_differences, plasticity_gaps, tuning

ROOT = Path(__file__).parent.parent
OFFSET = {"vanilla": 0.0, "syre": 100.0}
SPREAD = {"vanilla": 1.0, "syre": 3.0}  # return = OFFSET + SPREAD * seed + step / 1000: syre's seeds spread more
STEPS = range(0, 2001, 100)  # 21 points: the summary's return averages the last int(2.1) = 2 (steps 1900, 2000)
FRICTION = [(0, 1.0), (1000, 0.25), (1500, 0.5)]  # (first step, friction)
ACCURACY = {"vanilla": [0.9, 0.8, 0.7, 0.6], "syre-ar": [0.9, 0.9, 0.85, 0.85]}  # per task, + 0.01 * seed


def log(folder: Path, scalars: dict[str, list[tuple[int, float]]], config: dict | None = None) -> None:
    folder.mkdir(parents=True)
    with SummaryWriter(str(folder)) as writer:
        for tag, points in scalars.items():
            for step, value in points:
                writer.add_scalar(tag, value, step)
    if config is not None:
        (folder / "config.json").write_text(json.dumps(config))


def rl_scalars(method: str, seed: int) -> dict[str, list[tuple[int, float]]]:
    scalars = {
        "rollout/ep_rew_mean": [(s, OFFSET[method] + SPREAD[method] * seed + s / 1000) for s in STEPS],
        "env/friction": [(s, next(f for start, f in reversed(FRICTION) if s >= start)) for s in STEPS],
        "train/loss": [(s, 0.5 + seed) for s in STEPS],
    }
    for layer in (0, 1):  # effective rank 10 * (layer + 1) + seed + (5 for syre), others fixed fractions
        base = {
            "effective_rank": 10.0 * (layer + 1) + seed + 5 * (method == "syre"),
            "dead_units": 0.1 * layer,
            "duplicate_units": 0.2,
            "duplicate_units_learned": 0.1,
        }
        for metric, value in base.items():
            scalars[f"plasticity/actor/layer{layer}/{metric}"] = [(s, value) for s in STEPS[::5]]
    return scalars


def task_scalars(method: str, seed: int) -> dict[str, list[tuple[int, float]]]:
    acc = [a + 0.01 * seed for a in ACCURACY[method]]
    return {
        "task/test_accuracy": list(enumerate(acc)),
        "task/mean_seen_accuracy": [(t, float(np.mean(acc[: t + 1]))) for t in range(len(acc))],
        "task/online_accuracy": [(t, 0.5) for t in range(len(acc))],
        "plasticity/net/layer0/effective_rank": [(t, 8.0 + seed) for t in range(len(acc))],
        "plasticity/net/layer1/dead_units": [(t, 0.25) for t in range(len(acc))],
    }


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """An RL experiment (vanilla, syre x seeds 0-2) and a supervised one (vanilla x seeds 0-1, plus one syre-ar
    run with no config.json, told by its folder name)."""
    root = tmp_path_factory.mktemp("runs")
    for method in ("vanilla", "syre"):
        for seed in range(3):
            log(
                root / "demo" / "AntBulletEnv-v0" / f"{method}_s{seed}",
                rl_scalars(method, seed),
                {"method": method, "seed": seed, "env": "AntBulletEnv-v0"},
            )
    for seed in range(2):
        log(
            root / "pm" / "permuted-mnist" / f"vanilla_s{seed}",
            task_scalars("vanilla", seed),
            {"method": "vanilla", "seed": seed, "benchmark": "permuted-mnist"},
        )
    log(root / "pm" / "permuted-mnist" / "syre-ar_s0_2", task_scalars("syre-ar", 0))
    return root


@pytest.fixture(scope="module")
def summary(runs_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = compare(runs_dir, tmp_path_factory.mktemp("out"), extra_tags=["train/loss"])
    with open(out / "summary.csv") as f:
        rows = {(r["experiment"], r["method"], r["quantity"]): r for r in csv.DictReader(f)}
    return out, rows


def test_find_runs_reads_configs_and_folder_names(runs_dir):
    runs = find_runs(runs_dir)
    assert len(runs) == 9
    told_by_name = next(r for r in runs if r.path.name == "syre-ar_s0_2")
    assert (told_by_name.experiment, told_by_name.method, told_by_name.seed, told_by_name.repeat) == (
        "permuted-mnist",
        "syre-ar",
        0,
        2,
    )
    assert {(r.experiment, r.method) for r in runs} == {
        ("AntBulletEnv-v0", "vanilla"),
        ("AntBulletEnv-v0", "syre"),
        ("permuted-mnist", "vanilla"),
        ("permuted-mnist", "syre-ar"),
    }
    steps, values = load_scalars(runs[0])["rollout/ep_rew_mean"]
    assert len(steps) == len(STEPS)  # every point, not subsampled


def test_find_runs_rejects_unnamed_runs_without_config(tmp_path):
    log(tmp_path / "mystery", {"x": [(0, 1.0)]})
    with pytest.raises(ValueError, match="cannot tell the method and seed of run .*mystery.*METHOD_sSEED"):
        find_runs(tmp_path)


def test_bootstrap_ci_is_reproducible_and_covers_the_mean():
    samples = [1.0, 2.0, 4.0, 7.0]
    mean, low, high = bootstrap_ci(samples, seed=3)
    assert mean == 3.5 and low < mean < high and 1.0 <= low and high <= 7.0
    assert bootstrap_ci(samples, seed=3) == (mean, low, high)
    _, low99, high99 = bootstrap_ci(samples, confidence=0.99, seed=3)
    assert low99 <= low and high99 >= high
    _, low_wide, high_wide = bootstrap_ci([10 * s for s in samples], seed=3)
    assert high_wide - low_wide == pytest.approx(10 * (high - low))
    assert bootstrap_ci([5.0]) == (5.0, 5.0, 5.0)  # one seed: the interval is the point itself
    means, lows, highs = bootstrap_ci(np.array([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]]))
    assert means.tolist() == [2.0, 10.0] and lows[0] < 2.0 < highs[0] and lows[1] == highs[1] == 10.0


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(samples=[]), r"non-empty array of shape \(runs,\) or \(runs, points\), got shape \(0,\)"),
        (dict(samples=[1.0, 2.0], confidence=95), r"confidence must be in \(0, 1\), got 95"),
        (dict(samples=[1.0, 2.0], n_resamples=0), "n_resamples must be >= 1, got 0"),
    ],
)
def test_bootstrap_ci_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci(**kwargs)


def test_align_interpolates_misaligned_runs():
    shared = np.array([0.0, 1.0, 2.0])
    x, values = align([(shared, shared), (shared, 2 * shared)])
    assert x is not None and x.tolist() == [0, 1, 2] and values.tolist() == [[0, 1, 2], [0, 2, 4]]
    coarse, fine = np.array([0.0, 10.0, 20.0, 30.0]), np.arange(5.0, 50.0, 5.0)
    # common range [5, 30]: the coarse run has the fewest points there (10, 20, 30); the fine one is interpolated
    curve = aggregate([(coarse, coarse), (fine, 2 * fine)])
    assert curve.x.tolist() == [10, 20, 30] and curve.mean.tolist() == [15, 30, 45] and curve.n_seeds == 2
    with pytest.raises(ValueError, match="x ranges do not overlap"):
        align([(np.array([0.0, 1.0]), np.zeros(2)), (np.array([2.0, 3.0]), np.zeros(2))])


def test_friction_changes_are_where_the_value_changes():
    steps, friction = np.arange(6.0) * 10, np.array([1.0, 1.0, 0.3, 0.3, 0.3, 1.0])
    assert friction_changes(steps, friction) == [(20.0, 0.3), (50.0, 1.0)]
    assert friction_changes(steps, np.ones(6)) == []


def test_friction_marks_name_a_friction_only_when_the_runs_share_it():
    def run(changes):  # friction 1.0 until the first change
        steps = np.arange(0.0, 100.0, 10)
        friction = np.ones_like(steps)
        for x, value in changes:
            friction[steps >= x] = value
        return {"env/friction": (steps, friction)}

    same = friction_marks([run([(20, 0.5), (60, 0.1)]), run([(20, 0.5), (60, 0.1)])])
    assert same == [(20.0, 0.5), (60.0, 0.1)]
    differ = friction_marks([run([(20, 0.5), (60, 0.1)]), run([(40, 0.3), (60, 0.1)]), {}])  # {}: no friction
    assert differ == [(30.0, None), (60.0, 0.1)]
    assert friction_marks([{}]) == []


def test_phase_returns_average_the_end_of_each_phase():
    steps = np.arange(0.0, 105.0, 5)  # 0 .. 100, 21 points
    scalars = {"rollout/ep_rew_mean": (steps, steps.copy()), "env/friction": (steps, np.where(steps < 40, 1.0, 0.5))}
    # phases [0, 40): 8 points, last int(8 * 0.25) = 2 -> (30 + 35) / 2; [40, 100]: 13 points, last 3 -> 95
    assert phase_returns(scalars).tolist() == [32.5, 95.0]
    assert phase_returns(scalars, fraction=1.0).tolist() == [17.5, 70.0]
    scalars["env/friction"] = (steps, np.where(steps < 40, 1.0, np.where(steps < 95, 0.5, 2.0)))
    # a change at step 95 makes a last phase of 6 steps, under 90% of the earlier ones' median: left out
    assert phase_returns(scalars).tolist() == [32.5, 87.5]
    early = steps <= 70  # a run stopped 30 steps into its second phase: only the first counts
    short = {
        "rollout/ep_rew_mean": (steps[early], steps[early]),
        "env/friction": (steps[early], np.where(steps[early] < 40, 1.0, 0.5)),
    }
    assert phase_returns(short).tolist() == [32.5]
    assert phase_returns({"rollout/ep_rew_mean": (steps, steps)}).tolist() == [90.0]  # no friction: one phase


def test_summary_csv_has_the_known_means(summary):
    _, rows = summary
    for method in ("vanilla", "syre"):
        ret = rows["AntBulletEnv-v0", method, "return"]
        # seeds 0, 1, 2 -> mean seed 1; the last 2 points average step 1950
        assert float(ret["mean"]) == pytest.approx(OFFSET[method] + SPREAD[method] + 1.95, rel=1e-6)
        assert float(ret["ci_low"]) < float(ret["mean"]) < float(ret["ci_high"]) and ret["n_seeds"] == "3"
        rank = rows["AntBulletEnv-v0", method, "actor/layer1/effective_rank"]  # the last hidden layer only
        assert float(rank["mean"]) == pytest.approx(20 + 1 + 5 * (method == "syre"))
        assert float(rows["AntBulletEnv-v0", method, "actor/layer1/dead_units"]["mean"]) == pytest.approx(0.1)
        assert float(rows["AntBulletEnv-v0", method, "actor/layer1/duplicate_units_learned"]["mean"]) == pytest.approx(
            0.1
        )
        assert float(rows["AntBulletEnv-v0", method, "train/loss"]["mean"]) == pytest.approx(1.5)
    width = {
        m: float(rows["AntBulletEnv-v0", m, "return"]["ci_high"])
        - float(rows["AntBulletEnv-v0", m, "return"]["ci_low"])
        for m in OFFSET
    }
    assert width["syre"] == pytest.approx(3 * width["vanilla"], rel=1e-4)  # 3x spread, same resamples
    assert not any(q.startswith("actor/layer0") for _, _, q in rows)
    # friction phases [0, 1000), [1000, 1500): their last 25% of points are steps 800-900 and 1400; the last,
    # [1500, 2000], is shorter than 90% of the earlier phases' median (750): unfinished, left out
    for k, end in enumerate((0.85, 1.4)):
        for method in ("vanilla", "syre"):
            row = rows["AntBulletEnv-v0", method, f"return_phase{k}"]
            assert float(row["mean"]) == pytest.approx(OFFSET[method] + SPREAD[method] + end) and row["n_seeds"] == "3"
    assert ("AntBulletEnv-v0", "vanilla", "return_phase2") not in rows
    vanilla = {q: float(r["mean"]) for (e, m, q), r in rows.items() if (e, m) == ("permuted-mnist", "vanilla")}
    assert vanilla["first_task_accuracy"] == pytest.approx(0.905) and vanilla["last_task_accuracy"] == pytest.approx(
        0.605
    )
    assert vanilla["last_task_mean_seen_accuracy"] == pytest.approx(0.755)
    # net's last hidden layer is layer1: its dead units are reported, layer0's effective rank is not
    assert vanilla["net/layer1/dead_units"] == 0.25 and "net/layer0/effective_rank" not in vanilla
    assert "return" not in vanilla
    ret = rows["AntBulletEnv-v0", "syre", "return"]  # 3 runs: nothing trimmed, the IQM is the mean
    assert float(ret["iqm"]) == pytest.approx(float(ret["mean"])) and ret["seeds"] == "0;1;2"
    assert [float(v) for v in ret["values"].split(";")] == pytest.approx([101.95, 104.95, 107.95])
    assert float(ret["iqm_low"]) < float(ret["iqm"]) < float(ret["iqm_high"])
    single = rows["permuted-mnist", "syre-ar", "last_task_accuracy"]  # one run: the interval is the point
    assert single["n_seeds"] == "1" and float(single["mean"]) == float(single["ci_low"]) == float(
        single["ci_high"]
    ) == pytest.approx(0.85)


def test_summary_rows_hold_each_seeds_value_as_a_number(runs_dir):
    """Per-seed values are numbers keyed by seed; they become ``;``-joined text only in summary.csv."""
    runs, _ = latest_repeats(find_runs(runs_dir))
    rows = summarize(group_runs(runs), {run: load_scalars(run) for run in runs}, bootstrap=Bootstrap(n_resamples=100))
    row = next(r for r in rows if (r.experiment, r.method, r.quantity) == ("AntBulletEnv-v0", "syre", "return"))
    assert list(row.values) == [0, 1, 2] and all(type(s) is int and type(v) is float for s, v in row.values.items())
    assert row.values == pytest.approx({0: 101.95, 1: 104.95, 2: 107.95}) and row.n_seeds == 3
    assert row.mean == pytest.approx(104.95) and row.iqm == pytest.approx(104.95)
    assert summary_csv([row]).splitlines()[1].endswith(",3,0;1;2,101.95;104.95;107.95")
    import syre_rl.agents.compare as moved  # the old module re-exports the package's names

    assert moved.compare is compare and moved.SummaryRow is SummaryRow


def test_compare_is_reproducible(runs_dir, summary, tmp_path):
    out, _ = summary
    again = compare(runs_dir, tmp_path, extra_tags=["train/loss"])
    assert (again / "summary.csv").read_text() == (out / "summary.csv").read_text()


def test_summary_md_lists_inputs_and_one_row_per_method(summary, runs_dir):
    text = (summary[0] / "summary.md").read_text()
    assert f"RUNS_DIR `{runs_dir}`, 9 runs found" in text
    assert "- `pm/permuted-mnist/syre-ar_s0_2`: experiment permuted-mnist, method syre-ar, seed 0, repeat 2" in text
    assert "the interval is the point itself" in text
    assert "## AntBulletEnv-v0" in text and "## permuted-mnist" in text
    assert "| method | seeds | return | return_phase0 | return_phase1 | actor/layer1/effective_rank |" in text
    assert "| method | seeds | first_task_accuracy | last_task_accuracy | last_task_mean_seen_accuracy |" in text
    assert "| syre | 3 | 105 [102, 108] | 103.9 [100.9, 106.9] |" in text and "| 26 [25, 27] |" in text
    assert "| vanilla | 3 | 2.95 [1.95, 3.95] |" in text
    assert "| syre-ar | 1 | 0.9 [0.9, 0.9] | 0.85 [0.85, 0.85] |" in text


def test_summary_md_says_when_each_run_ran_and_whether_it_ran_batched(tmp_path):
    """Each run's minutes from its first to its last TensorBoard event (summed over its event files: a resumed
    run without its pause), "batched" from its config.json, and the span of them all."""
    start = calendar.timegm((2026, 12, 3, 9, 40, 0))

    def events(folder, first, seconds, suffix=""):  # points every 60 s from ``first`` for ``seconds``
        folder.mkdir(parents=True, exist_ok=True)
        with SummaryWriter(str(folder), filename_suffix=suffix) as writer:
            for t in range(0, seconds + 1, 60):
                writer.add_scalar("rollout/ep_rew_mean", 1.0, t, walltime=first + t)

    events(tmp_path / "E" / "syre_s0", start, 600)
    (tmp_path / "E" / "syre_s0" / "config.json").write_text(json.dumps({"method": "syre", "seed": 0, "batched": True}))
    events(tmp_path / "E" / "vanilla_s0", start + 120, 300)  # 5 minutes, then a pause, then 4 more
    events(tmp_path / "E" / "vanilla_s0", start + 3000, 240, suffix=".resumed")
    text = (compare(tmp_path, tmp_path / "out", n_resamples=50) / "summary.md").read_text()
    assert "- `E/syre_s0`: experiment E, method syre, seed 0, batched, 10.0 minutes\n" in text
    assert "- `E/vanilla_s0`: experiment E, method vanilla, seed 0, 9.0 minutes\n" in text
    assert "from 2026-12-03 09:40 to 2026-12-03 10:34 UTC, 54 minutes; 1 of the 2 runs trained batched" in text


def test_summary_marks_what_a_method_did_not_log(tmp_path):
    # "a" logs only test accuracy; of "b"'s runs, one logs the mean seen accuracy (from its second task on)
    log(tmp_path / "bench" / "a_s0", {"task/test_accuracy": [(0, 0.5), (1, 0.4)]})
    log(tmp_path / "bench" / "b_s0", {"task/test_accuracy": [(0, 0.9), (1, 0.8), (2, 0.7)]})
    log(
        tmp_path / "bench" / "b_s1",
        {"task/test_accuracy": [(0, 0.7), (1, 0.6), (2, 0.6)], "task/mean_seen_accuracy": [(1, 0.7), (2, 0.65)]},
    )
    text = (compare(tmp_path, tmp_path / "out") / "summary.md").read_text()
    assert "| method | seeds | first_task_accuracy | last_task_accuracy | last_task_mean_seen_accuracy |" in text
    assert "| a | 1 | 0.5 [0.5, 0.5] | 0.4 [0.4, 0.4] | – |" in text
    assert "| b | 2 | 0.8 [0.7, 0.9] | 0.65 [0.6, 0.7] | 0.65 [0.65, 0.65] (n=1) |" in text
    assert (tmp_path / "out" / "accuracy.png").is_file()


@pytest.mark.parametrize(
    "name",
    [
        "return_AntBulletEnv-v0",
        "phases_AntBulletEnv-v0",
        "accuracy_permuted-mnist",
        "effective_rank_AntBulletEnv-v0",
        "effective_rank_permuted-mnist",
        "dead_units_AntBulletEnv-v0",
        "dead_units_permuted-mnist",
        "duplicate_units_AntBulletEnv-v0",
    ],
)
def test_figures_are_valid_pngs(summary, name):
    image = imread(summary[0] / f"{name}.png")
    assert image.shape[0] > 200 and image.shape[1] > 300 and image.shape[2] in (3, 4) and image.std() > 0.05


def test_only_logged_figures_are_written(summary):
    names = sorted(p.name for p in summary[0].iterdir())
    assert "duplicate_units_permuted-mnist.png" not in names and "return_permuted-mnist.png" not in names
    assert "phases_permuted-mnist.png" not in names
    assert not any(name.endswith(".tmp") for name in names)


def test_cli_writes_to_runs_dir_compare_without_suffixes(runs_dir, tmp_path, capsys):
    one = runs_dir / "demo"  # a single experiment: unsuffixed names, default output folder
    out = runpy.run_path(str(ROOT / "scripts" / "compare.py"))["main"]([str(one)])
    assert out == one / "compare" and f"in {one / 'compare'}" in capsys.readouterr().out
    assert {
        "return.png",
        "phases.png",
        "effective_rank.png",
        "dead_units.png",
        "duplicate_units.png",
        "summary.md",
        "summary.csv",
    } == {p.name for p in out.iterdir()}


@pytest.mark.parametrize(
    "args,message",
    [
        (["{tmp}/nope"], "compare.py: error: runs folder '{tmp}/nope' does not exist or is not a folder"),
        (["{tmp}"], "compare.py: error: no runs under '{tmp}': a run is a folder holding TensorBoard event files"),
        (
            ["{runs}", "--out", "{tmp}/o", "--tags", "nope/tag"],
            "compare.py: error: no run logged the tag(s) nope/tag; logged tags: env/friction,",
        ),
    ],
)
def test_cli_bad_input_exits_with_one_clear_line(args, message, runs_dir, tmp_path):
    fill = dict(tmp=tmp_path, runs=runs_dir)
    with pytest.raises(SystemExit, match=None) as exit_info:
        runpy.run_path(str(ROOT / "scripts" / "compare.py"))["main"]([a.format(**fill) for a in args])
    assert str(exit_info.value.code).startswith(message.format(**fill)) and "\n" not in str(exit_info.value.code)


def test_cli_error_and_help_in_a_subprocess(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), str(tmp_path / "nope")], capture_output=True, text=True
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip() == f"compare.py: error: runs folder '{tmp_path / 'nope'}' does not exist or is not a folder"
    )
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compare.py"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "RUNS_DIR" in out and "--out DIR" in out and "--tags TAG" in out and "summary.csv" in out


def test_repeats_of_a_seed_count_once(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for name, value in (("l2_s0", 1.0), ("l2_s0_2", 3.0), ("l2_s1", 5.0)):
        with SummaryWriter(str(tmp_path / "exp" / name)) as writer:
            for task in range(2):
                writer.add_scalar("task/test_accuracy", value, task)
    out = compare(tmp_path, tmp_path / "out")
    rows = (out / "summary.csv").read_text().splitlines()
    first = next(r for r in rows if ",first_task_accuracy," in r).split(",")
    assert float(first[4]) == 4.0 and first[10:] == ["2", "0;1", "3;5"]  # 3 (latest repeat of seed 0) and 5
    assert "l2_s0`" in (out / "summary.md").read_text().split("Left out")[1]


def test_runs_without_friction_have_no_phases(tmp_path):
    with_friction = rl_scalars("vanilla", 0)
    without = {k: v for k, v in rl_scalars("vanilla", 1).items() if k != "env/friction"}
    log(tmp_path / "ant" / "vanilla_s0", with_friction)
    log(tmp_path / "ant" / "vanilla_s1", without)
    compare(tmp_path, tmp_path / "out")
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = {r["quantity"]: r for r in csv.DictReader(f)}
    assert rows["return"]["n_seeds"] == "2"
    assert rows["return_phase0"]["n_seeds"] == "1" and float(rows["return_phase0"]["mean"]) == pytest.approx(0.85)


def test_an_unreadable_event_file_is_an_error(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "exp" / "vanilla_s0"
    with SummaryWriter(str(run)) as writer:
        writer.add_scalar("rollout/ep_rew_mean", 1.0, 1)
    (run / "events.out.tfevents.0.broken").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match=r"events.out.tfevents.0.broken is damaged"):
        compare(tmp_path, tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).parent.parent / "scripts" / "compare.py"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("compare.py: error: ") and "broken" in proc.stderr


def test_iqm_and_its_stratified_bootstrap_interval_come_from_rliable():
    scores = [1.0, 2.0, 3.0, 10.0, 4.0]
    iqm, low, high = iqm_ci(scores, n_resamples=2000, seed=0)
    assert iqm == 3.0  # the middle 50% of 1, 2, 3, 4, 10 is 2, 3, 4 (the outlier 10 is trimmed), not the mean 4
    assert low < iqm < high <= 10 and (low, high) == iqm_ci(scores, n_resamples=2000, seed=0)[1:]  # reproducible
    assert iqm_ci([7.5]) == (7.5, 7.5, 7.5)
    np.random.random(3)  # whatever the global generator did before, the interval is the same
    state = np.random.get_state()[1].copy()
    assert iqm_ci(scores, n_resamples=2000, seed=0) == (iqm, low, high)
    assert np.array_equal(np.random.get_state()[1], state)  # and the global generator is left as it was


def test_five_seeds_get_a_performance_profile_and_a_per_seed_table(tmp_path):
    for method, base in (("vanilla", 0.0), ("syre", 2.0)):
        for seed in range(5):
            log(
                tmp_path / "exp" / f"{method}_s{seed}",
                {"task/test_accuracy": [(0, 0.1 * seed + base / 10), (1, 0.1 * seed + base / 10)]},
            )
    out = compare(tmp_path, tmp_path / "out")
    image = imread(out / "profile.png")
    assert image.ndim == 3 and image.shape[0] > 100
    text = (out / "summary.md").read_text()
    assert "stratified-bootstrap" in text and "| syre | s0: 0.2, s1: 0.3, s2: 0.4, s3: 0.5, s4: 0.6 |" in text
    for seed in range(4):
        log(tmp_path / "four" / "exp" / f"l2_s{seed}", {"task/test_accuracy": [(0, 0.5), (1, 0.5)]})
    assert not (compare(tmp_path / "four", tmp_path / "four-out") / "profile.png").exists()  # 4 seeds: no profile


def test_resumed_rl_runs_are_named_in_the_summary(tmp_path):
    for seed in (0, 1):
        log(tmp_path / "exp" / f"vanilla_s{seed}", {"rollout/ep_rew_mean": [(0, 1.0), (100, 2.0)]})
    (tmp_path / "exp" / "vanilla_s1" / "progress_from_4096.csv").write_text("")
    (tmp_path / "exp" / "vanilla_s1" / "progress_from_512.csv").write_text("")
    text = (compare(tmp_path, tmp_path / "out") / "summary.md").read_text()
    assert re.search(r"- `exp/vanilla_s0`: experiment exp, method vanilla, seed 0, \d+\.\d minutes\n", text)
    resumed = (
        r"- `exp/vanilla_s1`: experiment exp, method vanilla, seed 1, \d+\.\d minutes, \*\*resumed\*\* at step 512, "
    )
    resumed += r"4096\n"
    assert re.search(resumed, text)
    assert "1 of the 2 runs were resumed; an RL resume is not exact" in text


def test_task_runs_and_fresh_references_share_their_task_columns(tmp_path):
    steps = range(0, 3000, 100)  # tasks 0, 1, 2 of 1000 steps; return = 10 * task + (step % 1000) / 100
    log(
        tmp_path / "exp" / "vanilla_s0",
        {
            "rollout/ep_rew_mean": [(s, 10 * (s // 1000) + (s % 1000) / 100) for s in steps],
            "env/task": [(s, s // 1000) for s in steps],
        },
    )
    log(
        tmp_path / "exp" / "fresh-task2_s0",
        {
            "rollout/ep_rew_mean": [(s, 50 + s / 100) for s in range(0, 1000, 100)],
            "env/task": [(s, 2) for s in range(0, 1000, 100)],
        },
    )
    compare(tmp_path, tmp_path / "out")
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = {(r["method"], r["quantity"]): float(r["mean"]) for r in csv.DictReader(f)}
    # the last 25% of a task's 10 points are its last 2: (8 + 9) / 2 = 8.5 above the task's base
    assert rows["vanilla", "return_task0"] == 8.5 and rows["vanilla", "return_task1"] == 18.5
    assert rows["vanilla", "return_task2"] == 28.5 and rows["fresh-task2", "return_task2"] == 58.5
    assert ("fresh-task2", "return_task0") not in rows
    table = (tmp_path / "out" / "tasks.md").read_text()  # task 2: vanilla 28.5 against fresh 58.5, gap -30
    assert "| 2 | 58.5 [58.5, 58.5] | 28.5 [28.5, 28.5] |" in table
    assert "| **gap** |  | -30.0 [-30.0, -30.0] (n=1) |" in table
    assert "| vanilla | -30.0 [-30.0, -30.0] | s0: -30.0 | – |" in table
    assert imread(tmp_path / "out" / "tasks.png").shape[1] > 600
    assert not (compare(tmp_path / "exp", tmp_path / "only", only=["vanilla"]) / "tasks.md").exists()


def test_the_whole_task_measure_stuck_task_ends_and_entropy(tmp_path):
    """The whole-task return is the mean of all of a task's points (learning speed counts); a CartPole task end at
    or below 12 (the pole falls at once) is stuck; the entropy at task ends is minus SB3's entropy loss."""
    steps = range(0, 2000, 100)  # tasks 0 and 1 of 1000 steps, 10 points each
    for seed, (task1, entropy) in enumerate([(9.3, 0.01), (200.0, 0.6)]):  # seed 0 stuck on task 1
        log(
            tmp_path / "CartPole-v1" / f"vanilla_s{seed}",
            {
                "rollout/ep_rew_mean": [(s, 100.0 if s < 1000 else task1) for s in steps],
                "env/task": [(s, s // 1000) for s in steps],
                "train/entropy_loss": [(s, -0.69 if s < 1000 else -entropy) for s in steps],
            },
        )
        log(
            tmp_path / "CartPole-v1" / f"fresh-task1_s{seed}",
            {  # a fresh network learns task 1 from 0 to 450 in a straight line: its whole-task mean is 225
                "rollout/ep_rew_mean": [(s, 50.0 * (s // 100)) for s in range(0, 1000, 100)],
                "env/task": [(s, 1) for s in range(0, 1000, 100)],
                "train/entropy_loss": [(s, -0.5) for s in range(0, 1000, 100)],
            },
        )
    compare(tmp_path, tmp_path / "out")
    with open(tmp_path / "out" / "summary.csv") as f:
        rows = {(r["method"], r["quantity"]): r for r in csv.DictReader(f)}
    assert float(rows["fresh-task1", "mean_return_task1"]["mean"]) == 225.0  # the mean of 0, 50, ..., 450
    assert float(rows["fresh-task1", "return_task1"]["mean"]) == 425.0  # its last two points: 400, 450
    assert rows["vanilla", "mean_return_task1"]["values"] == "9.3;200"
    assert rows["vanilla", "entropy_loss_task1"]["values"] == "-0.01;-0.6"
    assert rows["vanilla", "entropy_loss_task1"]["tag"] == "train/entropy_loss"
    assert rows["vanilla", "mean_return_task1"]["tag"] == "rollout/ep_rew_mean"
    table = (tmp_path / "out" / "tasks.md").read_text()
    end, whole = table.split("# The same, with each task's return averaged over the whole task")
    assert "| vanilla | -320.3 [-415.7, -225.0] | s0: -415.7, s1: -225.0 | – |" in end  # 9.3 - 425, 200 - 425
    assert "| vanilla | -120.3 [-215.7, -25.0] | s0: -215.7, s1: -25.0 | – |" in whole  # 9.3 - 225, 200 - 225
    assert "| vanilla | 1 of 2 | 0.305 [0.010, 0.600] |" in end and "| fresh | 0 of 2 | 0.500 [0.500, 0.500] |" in end
    assert imread(tmp_path / "out" / "tasks_whole.png").shape[1] > 600
    with pytest.raises(ValueError, match="unknown measure 'area'; valid: end, whole"):
        plasticity_gaps([], measure="area")


def test_plasticity_gaps_pair_each_seed_with_its_own_fresh_network():
    """The gap is per seed (continual minus that seed's fresh run, averaged over the tasks both have), then its IQM
    over seeds; a task without a fresh run does not count."""

    def row(method, quantity, values):
        return SummaryRow.of("E", method, quantity, RETURN, {s: float(v) for s, v in values.items()}, Bootstrap())

    rows = [
        row("a", "return", {0: 1, 1: 1}),
        row("a", "return_task1", {0: 10, 1: 20}),
        row("a", "return_task2", {0: 30, 1: 40}),
        row("a", "return_task3", {0: 99, 1: 99}),
        row("b", "return", {0: 1}),
        row("b", "return_task1", {0: 16}),
        row("fresh-task1", "return_task1", {0: 12, 1: 30}),
        row("fresh-task2", "return_task2", {0: 34, 1: 38}),
    ]
    [c] = plasticity_gaps(rows)
    assert c.tasks == [1, 2] and c.fresh[1] == (21.0, 12.0, 30.0)
    # a: seed 0 (10-12 + 30-34)/2 = -3, seed 1 (20-30 + 40-38)/2 = -4; b: seed 0 only, 16 - 12 = 4, task 2 missing
    assert c.gap_per_seed == {"a": {0: -3.0, 1: -4.0}, "b": {0: 4.0}}
    assert c.gap["a"] == (-3.5, -4.0, -3.0) and c.gap["b"] == (4.0, 4.0, 4.0)
    assert set(c.returns["b"]) == {1}
    assert plasticity_gaps([r for r in rows if not r.method.startswith("fresh")]) == []
    # paired by seed against a reference: b - a on seed 0 only (4 - -3 = 7); a has no partner but itself
    [c] = plasticity_gaps(rows, reference="a")
    assert c.versus == {"b": (7.0, 7.0, 7.0)}
    assert "| b | 4.0 [4.0, 4.0] | s0: 4.0 | 7.0 [7.0, 7.0] (n=1) |" in fresh_comparison([c])
    assert plasticity_gaps(rows)[0].versus == {}  # no vanilla among them


# a tuning grid: label -> its task-1 returns (first half, second half), so the whole-task mean and the end (last 25%)
# differ; task 0 returns 100, and a fresh network's task 1 returns 100 throughout
GRID = {
    "vanilla": (10.0, 10.0),
    "syre-gamma0.001": (100.0, 20.0),  # whole 60, end 20
    "syre-gamma0.01": (40.0, 50.0),  # whole 45, end 50
    "syre-ar-gamma0.001": (30.0, 30.0),
    "l2-init-gamma0.01": (70.0, 70.0),
    "l2-gamma0.01": (20.0, 20.0),
    "l2-gamma0.1": (25.0, 25.0),
}


def log_grid(root: Path, labels: dict[str, tuple[float, float]], seeds=(0, 1), fresh: float = 100.0) -> None:
    """Runs of tasks 0 and 1 (1000 steps each) for ``labels`` (label -> task-1 returns, first and second half) and
    ``seeds``, with a fresh network on task 1 per seed returning ``fresh`` throughout."""
    for seed in seeds:
        for label, (first, second) in labels.items():
            task1 = [(s, first if s < 1500 else second) for s in range(1000, 2000, 100)]
            log(
                root / "CartPole-v1" / f"{label}_s{seed}",
                {
                    "rollout/ep_rew_mean": [(s, 100.0) for s in range(0, 1000, 100)] + task1,
                    "env/task": [(s, s // 1000) for s in range(0, 2000, 100)],
                },
            )
        log(
            root / "CartPole-v1" / f"fresh-task1_s{seed}",
            {
                "rollout/ep_rew_mean": [(s, fresh) for s in range(0, 1000, 100)],
                "env/task": [(s, 1) for s in range(0, 1000, 100)],
            },
        )


def test_a_tuning_grid_chooses_each_methods_point_of_the_highest_whole_task_gap(tmp_path):
    """tuning.md: the points of each method (told by the longest method name a label starts with), each with its
    whole-task and end-of-task gaps and its paired difference from vanilla; the highest whole-task gap chosen,
    whatever the end-of-task gap says."""
    runs = GRID
    log_grid(tmp_path, runs)
    assert [method_of(label) for label in runs] == ["vanilla", "syre", "syre", "syre-ar", "l2-init", "l2", "l2"]
    out = compare(tmp_path, tmp_path / "out", n_resamples=200)  # every seed alike: each interval is its point
    text = (out / "tuning.md").read_text()
    # syre: whole-task gaps -40 (gamma 0.001: (5 x 100 + 5 x 20) / 10 - 100) against -55; ends -80 against -50
    assert (
        "| syre | **syre-gamma0.001** (chosen) | -40.0 [-40.0, -40.0] | -80.0 [-80.0, -80.0] "
        "| 50.0 [50.0, 50.0] | 0, 1 |" in text
    )
    assert "| syre | syre-gamma0.01 | -55.0 [-55.0, -55.0] | -50.0 [-50.0, -50.0] | 35.0 [35.0, 35.0] | 0, 1 |" in text
    assert "| l2 | **l2-gamma0.1** (chosen) | -75.0 [-75.0, -75.0] |" in text
    assert "| syre-ar | syre-ar-gamma0.001 | -70.0" in text and "| l2-init | l2-init-gamma0.01 | -30.0" in text
    # paired.md: the chosen points' whole-task gaps l2-init -30, syre -40, syre-ar -70, l2 -75, vanilla -90; their
    # ends l2-init -30, syre -80, syre-ar -70, l2 -75, vanilla -90
    paired = (out / "paired.md").read_text()
    assert "| l2-init-gamma0.01 | syre-gamma0.001 | **10.0 [10.0, 10.0]** | **50.0 [50.0, 50.0]** | 2 |" in paired
    assert "| syre-gamma0.001 | syre-ar-gamma0.001 | **30.0 [30.0, 30.0]** | **-10.0 [-10.0, -10.0]** | 2 |" in paired
    assert "| l2-gamma0.1 | vanilla | **15.0 [15.0, 15.0]** | **15.0 [15.0, 15.0]** | 2 |" in paired
    assert paired.count("\n| ") == 1 + 10 and "syre-gamma0.01 " not in paired  # 10 pairs of the 5 chosen points
    found = find_runs(tmp_path)
    [c] = plasticity_gaps(
        summarize(group_runs(found), {r: load_scalars(r) for r in found}), n_resamples=200, measure="whole"
    )
    assert {t.method: (t.chosen, len(t.points)) for t in tuning(c)} == {
        "vanilla": ("vanilla", 1),
        "syre": ("syre-gamma0.001", 2),
        "syre-ar": ("syre-ar-gamma0.001", 1),
        "l2-init": ("l2-init-gamma0.01", 1),
        "l2": ("l2-gamma0.1", 2),
    }
    log(tmp_path / "one" / "CartPole-v1" / "vanilla_s0", {"rollout/ep_rew_mean": [(0, 1.0)], "env/task": [(0, 0)]})
    assert not (
        compare(tmp_path / "one", tmp_path / "one-out", n_resamples=200) / "tuning.md"
    ).exists()  # no grid, no tuning.md


def test_a_run_stopped_on_a_non_finite_value_is_left_out_named_and_its_point_not_chosen(tmp_path):
    """A run whose stopped.json says training stopped it: left out of every number (its own stop short), listed in
    summary.md, named in tuning.md beside its point's other seeds; a point with a stopped seed is not chosen
    though its other seeds' gap is the highest. The mark travels through summary.csv into combined tables."""
    log_grid(tmp_path / "runs", {**GRID, "syre-gamma0.1": (90.0, 90.0)})  # whole-task gap -10: the highest
    stopped = tmp_path / "runs" / "CartPole-v1" / "syre-gamma0.1_s1"
    record = {"step": 1500, "reason": "env step 1500: seed 1: non-finite gradient in w", "checkpoint_step": 1000}
    (stopped / "stopped.json").write_text(json.dumps(record))
    out = compare(tmp_path / "runs", tmp_path / "out", n_resamples=200)
    tuning_md = (out / "tuning.md").read_text()
    assert "| syre | **syre-gamma0.001** (chosen) | -40.0 [-40.0, -40.0] |" in tuning_md
    assert (
        "| syre | syre-gamma0.1 | -10.0 [-10.0, -10.0] | -10.0 [-10.0, -10.0] | 80.0 [80.0, 80.0] | "
        "0, **1 stopped at env step 1500** |" in tuning_md
    )
    summary_md = (out / "summary.md").read_text()
    assert (
        "- `CartPole-v1/syre-gamma0.1_s1`: experiment CartPole-v1, method syre-gamma0.1, seed 1, stopped at env "
        "step 1500" in summary_md
    )
    rows = {(r.method, r.quantity): r.values for r in read_summary_csv(out / "summary.csv")}
    assert rows["syre-gamma0.1", "stopped_at"] == {1: 1500.0} and rows["syre-gamma0.1", "mean_return_task1"] == {
        0: 90.0
    }
    combined = combine([out / "summary.csv"], tmp_path / "combined", n_resamples=200)
    assert (combined / "tuning.md").read_text().endswith(tuning_md.split("\n", 2)[2])


def test_paired_differences_pair_each_seed_and_leave_out_seeds_one_method_lacks():
    """Every two methods' chosen points (by the whole-task gap), the higher gap first, minus the lower, per seed on
    the seeds both ran; bold where the interval leaves out 0 (paired.md; its file: the tuning grid's test)."""

    def row(method, quantity, values):
        return SummaryRow.of("E", method, quantity, RETURN, {s: float(v) for s, v in values.items()}, Bootstrap())

    fresh = [row("fresh-task1", "mean_return_task1", {0: 10, 1: 10, 2: 10, 3: 10})]
    rows = fresh + [  # gaps a: 2, 4, 6, 8; b: 1, 5, 2, 8; c: seed 0 only, -5
        row("a", "return", {0: 0, 1: 0, 2: 0, 3: 0}),
        row("a", "mean_return_task1", {0: 12, 1: 14, 2: 16, 3: 18}),
        row("b", "return", {0: 0, 1: 0, 2: 0, 3: 0}),
        row("b", "mean_return_task1", {0: 11, 1: 15, 2: 12, 3: 18}),
        row("c", "return", {0: 0}),
        row("c", "mean_return_task1", {0: 5}),
    ]
    bootstrap = Bootstrap(n_resamples=200)  # the points do not depend on it
    [c] = plasticity_gaps(rows, n_resamples=200, measure="whole")
    assert chosen_points(c) == ["a", "b", "c"]
    pairs = paired_differences(c, chosen_points(c), bootstrap)
    # a - b per seed: 1, -1, 4, 0; IQM of 4 (rliable's: the middle two, 0 and 1) 0.5; a - c and b - c on seed 0
    assert pairs["a", "b"][0][0] == 0.5 and pairs["a", "b"][1] == 4
    assert pairs["a", "c"] == ((7.0, 7.0, 7.0), 1) and pairs["b", "c"] == ((6.0, 6.0, 6.0), 1)
    low, high = pairs["a", "b"][0][1:]
    assert low < 0 < high  # not bold
    table = paired_table([c], [], bootstrap)
    assert f"| a | b | {pairs['a', 'b'][0][0]:.1f} [{low:.1f}, {high:.1f}] | – | 4 |" in table
    one = plasticity_gaps(fresh + rows[1:3], n_resamples=200, measure="whole")
    assert paired_table(one, [], bootstrap) == ""  # one method


def test_combined_summaries_give_the_tables_of_all_their_runs_compared_at_once(tmp_path, capsys):
    """A grid run in two parts (each with the fresh networks and vanilla of the same seeds, as two sessions run
    them), each compared on its own, then combined from the two summary.csv files, gives tasks.md, tuning.md and
    paired.md of all the runs compared at once; seeds of one part and another unite; a seed whose value differs
    between the parts is refused, naming both files."""
    syre = {k: v for k, v in GRID.items() if k == "vanilla" or k.startswith("syre-")}
    rest = {k: v for k, v in GRID.items() if k not in syre or k == "vanilla"}
    log_grid(tmp_path / "all", GRID)
    log_grid(tmp_path / "all", {"syre-gamma0.001": (90.0, 90.0)}, seeds=(2,), fresh=80.0)  # a third seed
    log_grid(tmp_path / "a", syre)
    log_grid(tmp_path / "b", rest)
    log_grid(tmp_path / "c", {"syre-gamma0.001": (90.0, 90.0)}, seeds=(2,), fresh=80.0)

    def rows_of(root):  # compare()'s rows, without its curves' figures
        found = find_runs(root)
        return summarize(group_runs(found), {r: load_scalars(r) for r in found}, bootstrap=Bootstrap(n_resamples=50))

    parts = []
    for part in "abc":
        parts.append(tmp_path / f"{part}.csv")
        parts[-1].write_text(summary_csv(rows_of(tmp_path / part)))
    out = combine(parts, tmp_path / "combined", n_resamples=50)  # (rliable's intervals take 1 s each at 2000)
    header = "Combined from " + ", ".join(f"`{p}`" for p in parts) + " (`scripts/compare.py --summaries`).\n\n"
    every = rows_of(tmp_path / "all")
    ends, whole = plasticity_gaps(every, n_resamples=50), plasticity_gaps(every, n_resamples=50, measure="whole")
    assert (out / "tasks.md").read_text() == header + fresh_comparison(ends, 0.95, whole)
    assert (out / "tuning.md").read_text() == header + tuning_table(whole, ends)
    assert (out / "paired.md").read_text() == header + paired_table(whole, ends, Bootstrap(n_resamples=50))
    assert "| syre | **syre-gamma0.001** (chosen) |" in (out / "tuning.md").read_text()
    assert imread(out / "tasks_whole.png").shape[1] > 600
    rows = {(r.method, r.quantity): r for r in read_summary_csv(out / "summary.csv")}
    assert rows["syre-gamma0.001", "mean_return_task1"].values == {0: 60.0, 1: 60.0, 2: 90.0}
    assert rows["fresh-task1", "mean_return_task1"].values == {0: 100.0, 1: 100.0, 2: 80.0}
    # a file's own rows read back as written: summary.csv's text again
    with open(parts[0], newline="") as f:
        assert summary_csv(read_summary_csv(parts[0])) == f.read()

    # seed 1 of b's fresh network made different: refused, naming both files
    text = parts[1].read_text().splitlines()
    at = next(i for i, line in enumerate(text) if line.startswith("CartPole-v1,fresh-task1,mean_return_task1,"))
    text[at] = text[at].replace(";100", ";99")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(text) + "\n")
    with pytest.raises(ValueError, match=rf"fresh-task1, mean_return_task1, seed 1: 99 in {bad} but 100 in "):
        combine([parts[0], bad], tmp_path / "bad-out")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv is not a comparison's summary.csv: its columns are a, b"):
        combine([tmp_path / "other.csv"], tmp_path / "o")
    with pytest.raises(ValueError, match="is in the output folder"):
        combine([out / "summary.csv"], out)
    main = runpy.run_path(str(ROOT / "scripts" / "compare.py"))["main"]
    with pytest.raises(SystemExit, match=f"compare.py: error: no file {tmp_path / 'nope.csv'}: give the summary.csv"):
        main(["--summaries", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o")])
    for args, said in [
        ([str(tmp_path / "all"), "--summaries", str(parts[0]), "--out", "x"], "not both"),
        ([], "give RUNS_DIR"),
        (["--summaries", str(parts[0])], "--summaries needs --out DIR"),
        (["--summaries", str(parts[0]), "--out", "x", "--only", "syre*"], "takes neither --tags nor --only"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        assert exit_info.value.code == 2 and said in capsys.readouterr().err


def test_three_seeds_iqm_is_the_mean_and_its_interval_the_extremes():
    """With 3 runs rliable's IQM trims nothing, and a 95% bootstrap interval of it is [min, max] (each extreme
    alone has probability 1/27 > 2.5%): the published 3-seed rows are the same under both estimators."""
    values = [2163.0, 2210.0, 2259.0]
    assert iqm_ci(values) == pytest.approx((np.mean(values), 2163.0, 2259.0))
    assert bootstrap_ci(values) == pytest.approx((np.mean(values), 2163.0, 2259.0))


def test_method_colors_are_distinct_and_put_continual_methods_first():
    methods = ["vanilla", "syre", "cbp"] + [f"fresh-task{k}" for k in range(1, 10)] + ["l2", "redo"]
    colors = method_colors(methods)
    assert len(set(colors.values())) == len(methods) == 14
    assert colors["cbp"] == "#1f77b4" and colors["l2"] == "#ff7f0e"  # tab20's strong colours, in name order
    assert method_colors(["vanilla", "syre"]) == {"syre": "C0", "vanilla": "C1"}


def test_a_flipped_byte_in_an_event_file_is_refused_not_read_as_fewer_points(tmp_path):
    """TensorBoard's reader stops at the first record whose CRC fails, silently: the last task's accuracy would
    then be an earlier task's. Every one of these damages is named; a last record cut short is not damage."""
    run = tmp_path / "exp" / "vanilla_s0"
    log(run, {"task/test_accuracy": [(k, 0.9 - 0.01 * k) for k in range(40)]}, {"method": "vanilla", "seed": 0})
    [path] = run.glob("events.out.tfevents.*")
    raw = path.read_bytes()
    path.write_bytes(raw[:-3])  # a kill mid-write: its last point is lost, nothing else
    assert check_event_file(path) == 40  # the file's first event (its version) and 39 points
    detected = 0
    for position in range(0, len(raw), 37):
        damaged = bytearray(raw)
        damaged[position] ^= 0x04
        path.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match="is damaged"):
            compare(tmp_path, tmp_path / "out")
        detected += 1
    assert detected == len(range(0, len(raw), 37)) > 30


def test_runs_of_one_method_that_end_at_different_steps_are_not_averaged(tmp_path):
    for seed, tasks in ((0, 3), (1, 2)):
        log(
            tmp_path / "pm" / f"syre_s{seed}",
            {"task/test_accuracy": [(k, 0.9) for k in range(tasks)]},
            {"method": "syre", "seed": seed, "benchmark": "pm"},
        )
    with pytest.raises(ValueError, match=r"pm, syre: its runs end at different steps \(syre_s0 at 2, syre_s1 at 1\)"):
        compare(tmp_path, tmp_path / "out")
