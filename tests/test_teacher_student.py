"""The symmetric-initialisation experiment: its measures on constructed vectors, and the effect it shows."""

import runpy
from pathlib import Path

import pytest
import torch

from syre_rl.agents.teacher_student import (
    QUANTITIES,
    TeacherStudent,
    copy_spread,
    distinct_units,
    run,
    summarize,
)


def test_measures_on_constructed_units():
    v = torch.eye(5)
    v[1] = v[0] * 3  # same direction as unit 0
    v[4] = v[3] + 0.001  # near-copy of unit 3
    assert distinct_units(v) == 3 and distinct_units(v, threshold=0.99999999) == 4
    assert copy_spread(v, [[0, 1]]) == pytest.approx(2.0)
    assert copy_spread(v, [[3, 4], [2]]) == pytest.approx(0.001 * 5**0.5, rel=1e-4)


def test_weight_decay_keeps_the_copies_and_syre_separates_them():
    setting = TeacherStudent(steps=400, record_every=200)
    assert setting.copy_groups() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    vanilla = run(setting, "l2", 0, gamma=0.01)
    # identical gradients keep the copies together; float32 matmuls sum in blocks, so they differ by ~1e-7
    assert vanilla[0]["spread"] == 0.0 and max(r["spread"] for r in vanilla) < 1e-5
    assert [r["distinct"] for r in vanilla] == [10, 10, 10]  # 16 units, two groups of 4 copies
    assert vanilla[-1]["loss"] < vanilla[0]["loss"] / 10  # it learns, within the symmetric state
    syre = run(setting, "syre", 0, gamma=0.01, scale=0.01)
    assert syre[0]["spread_learned"] < 1e-6 and 0.01 < syre[0]["spread"] < 0.05  # only the anchors differ at first
    assert syre[-1]["spread_learned"] > 0.2 and syre[-1]["distinct_learned"] > 10
    rows = [{"method": "l2", "seed": 0, **r} for r in vanilla]
    final = {row["quantity"]: row for row in summarize(rows)}
    assert final["distinct"]["mean"] == 10 and final["distinct"]["n_seeds"] == 1
    assert (final["distinct"]["iqm"], final["distinct"]["iqm_low"], final["distinct"]["iqm_high"]) == (10, 10, 10)


def test_summary_gives_the_iqm_of_the_middle_seeds():
    """5 seeds: the IQM trims one from each end (scipy's trim_mean(x, 0.25)), the mean does not."""
    rows = [
        {"method": "syre", "seed": s, "step": 9, **{q: v for q in QUANTITIES}}
        for s, v in enumerate([0.0, 1.0, 2.0, 3.0, 100.0])
    ]
    final = {row["quantity"]: row for row in summarize(rows)}["loss"]
    assert final["mean"] == 21.2 and final["iqm"] == 2.0 and final["iqm_low"] <= 2.0 <= final["iqm_high"]


def test_bad_copy_groups():
    with pytest.raises(ValueError, match="groups \\* copies <= student_width"):
        TeacherStudent(copies=5, groups=4).copy_groups()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--scale", "-1"], "symmetric_init.py: error: syre scale must be a finite number >= 0, got -1.0"),
        (
            ["--seeds", "0"],
            "symmetric_init.py: error: seeds must be at least one and steps >= 1, got 0 seed(s) and 3000 step(s)",
        ),
    ],
)
def test_script_refuses_bad_input_in_one_line(args, message, tmp_path):
    main = runpy.run_path(str(Path(__file__).parent.parent / "scripts" / "symmetric_init.py"))["main"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(tmp_path / "out")])
    assert str(exit_info.value) == message and not (tmp_path / "out").exists()


def test_method_table_sets_the_offset_scale():
    from syre_rl.agents.teacher_student import method_table

    table = method_table(1.0)
    assert table["vanilla"] == ("l2", {"gamma": 0.01})
    assert {label: settings.get("scale") for label, (_, settings) in table.items()} == {
        "vanilla": None,
        "syre": 1.0,
        "syre-ar": 1.0,
        "jitter": 1.0,
    }
