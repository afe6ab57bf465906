"""The paper's low-capacity experiment: a two-layer ReLU student, started with groups of exact copies among its
hidden units (a permutation-symmetric state), learns a random two-layer ReLU teacher by full-batch regression.
Gradient descent with weight decay never leaves the symmetric state; syre is meant to."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from syre_rl.agents.guard import NonFiniteGuard
from syre_rl.agents.kinds import RunConfig
from syre_rl.agents.runs import CONFIG, check_unchanged, latest_run_dir, new_run_dir, owned
from syre_rl.files import atomic_write
from syre_rl.methods import make_method
from syre_rl.settings import check_range

RESULTS = "results.jsonl"


@dataclass(frozen=True)
class TeacherStudentConfig(RunConfig):
    """Settings of one teacher-student run, a run kind like the continual and RL ones (defaults: the paper's Adam
    lr 0.01; its baseline is weight decay 0.01, method ``l2``).

    :param inputs: input dimension
    :param teacher_width: hidden units of the teacher
    :param student_width: hidden units of the student
    :param copies: hidden units per group of copies (>= 2)
    :param groups: groups of copies (``groups * copies <= student_width``)
    :param examples: training examples (full batch)
    :param steps: Adam steps
    :param lr: Adam step size
    :param record_every: steps between recorded points
    """

    owner = "teacher-student"
    kind = "teacher-student"

    inputs: int = field(default=10, metadata={"help": "input dimension"})
    teacher_width: int = field(default=8, metadata={"help": "hidden units of the teacher"})
    student_width: int = field(default=16, metadata={"help": "hidden units of the student"})
    copies: int = field(default=4, metadata={"help": "hidden units per group of copies (>= 2)"})
    groups: int = field(default=2, metadata={"help": "groups of copies (groups x copies <= student width)"})
    examples: int = field(default=512, metadata={"help": "training examples (full batch)"})
    steps: int = field(default=3000, metadata={"help": "Adam steps"})
    lr: float = field(default=0.01, metadata={"help": "Adam step size"})
    record_every: int = field(default=100, metadata={"help": "steps between recorded points"})

    def check(self) -> None:
        super().check()
        for name in ("inputs", "teacher_width", "student_width", "examples", "record_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{self.owner} {name} must be >= 1, got {getattr(self, name)}")
        if self.steps < 0:
            raise ValueError(f"{self.owner} steps must be >= 0, got {self.steps}")
        if self.targets not in (None, "net"):
            raise ValueError(f"--targets {self.targets!r}: a teacher-student run trains one network, net")
        check_range(self.owner, "lr", self.lr, low_open=True)
        self.copy_groups()

    def copy_groups(self) -> list[list[int]]:
        """Hidden units that start as copies: ``[[0, 1, 2, 3], [4, 5, 6, 7]]`` by default."""
        if self.copies < 2 or self.groups * self.copies > self.student_width:
            raise ValueError(
                f"need copies >= 2 and groups * copies <= student_width, got copies={self.copies}, "
                f"groups={self.groups}, student_width={self.student_width}"
            )
        return [list(range(g * self.copies, (g + 1) * self.copies)) for g in range(self.groups)]

    def group(self) -> str:
        return "teacher-student"

    def finished(self, run_dir: Path) -> bool:
        path = run_dir / RESULTS
        return path.is_file() and len(path.read_text().splitlines()) == self.steps // self.record_every + 1

    def execute(self) -> str:
        """Train in a new run folder (a run is seconds long: resumed, it starts again in its own folder), writing
        ``results.jsonl`` (the records of :func:`train_student`) when it is done."""
        cfg = self.resolved()
        if cfg.resume:
            run_dir = latest_run_dir(cfg.logdir, cfg.group(), cfg.label, cfg.seed, CONFIG)
        else:
            run_dir = new_run_dir(cfg.logdir, cfg.group(), cfg.label, cfg.seed, cfg.to_dict())
        with owned(run_dir):
            if cfg.resume:
                check_unchanged(run_dir, cfg.to_dict(), cfg.RESUMABLE, "--resume", cfg.upgraded)
            records = train_student(cfg)
            atomic_write(run_dir / RESULTS, lambda tmp: tmp.write_text("".join(json.dumps(r) + "\n" for r in records)))
        return f"teacher loss {records[-1]['loss']:.4g}, {records[-1]['distinct_learned']} distinct units"


TeacherStudent = TeacherStudentConfig  # the problem's settings under their earlier name


def incoming(layer: nn.Linear) -> torch.Tensor:
    """Each hidden unit's incoming weights with its bias, shape (units, inputs + 1)."""
    return torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach()


def copy_spread(vectors: torch.Tensor, groups: list[list[int]]) -> float:
    """Largest distance between a unit and the first unit of its group of copies."""
    return max(float((vectors[g] - vectors[g[0]]).norm(dim=1).max()) for g in groups)


def distinct_units(vectors: torch.Tensor, threshold: float = 0.99) -> int:
    """Number of groups of units whose incoming vectors are near-copies (cosine similarity > ``threshold``,
    joined transitively): the number of units the layer really has."""
    unit = vectors.double() / vectors.double().norm(dim=1, keepdim=True).clamp_min(1e-300)
    linked = (unit @ unit.T) > threshold
    n = len(vectors)
    label = list(range(n))
    for i in range(n):  # union of linked units; n is small
        for j in range(i + 1, n):
            if linked[i, j]:
                old, new = label[j], label[i]
                label = [new if x == old else x for x in label]
    return len(set(label))


def run(setting: TeacherStudentConfig, method: str, seed: int, /, **method_settings: Any) -> list[dict]:
    """Train one student with ``method`` (e.g. ``l2`` for plain weight decay, ``syre``, ``syre-ar``, ``jitter``)
    and its settings: :func:`train_student` of ``setting`` with that method and seed."""
    cfg = dataclasses.replace(setting, method=method, seed=seed, method_args=method_settings, method_settings=None)
    return train_student(cfg.resolved())


def train_student(cfg: TeacherStudentConfig) -> list[dict]:
    """Train the student of a resolved config.

    :return: records every ``record_every`` steps: ``step``, ``loss`` (teacher loss), ``spread`` (of the copies,
        effective weights), ``spread_learned`` (weights minus the random offsets of syre or jitter), ``distinct``
        and ``distinct_learned``
    """
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    groups = cfg.copy_groups()
    gen = torch.Generator().manual_seed(10_000 + cfg.seed)
    teacher = nn.Sequential(nn.Linear(cfg.inputs, cfg.teacher_width), nn.ReLU(), nn.Linear(cfg.teacher_width, 1))
    with torch.no_grad():
        for p in teacher.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
        x = torch.randn(cfg.examples, cfg.inputs, generator=gen)
        y = teacher(x)
    torch.manual_seed(cfg.seed)
    student = nn.Sequential(nn.Linear(cfg.inputs, cfg.student_width), nn.ReLU(), nn.Linear(cfg.student_width, 1))
    with torch.no_grad():  # the symmetric start: every unit of a group equals the group's first unit
        for g in groups:
            student[0].weight[g] = student[0].weight[g[0]].clone()
            student[0].bias[g] = student[0].bias[g[0]].clone()
            student[2].weight[:, g] = student[2].weight[:, g[0] : g[0] + 1].clone()
    opt = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    handle = make_method(cfg.method, cfg.method_settings).attach(student, opt)
    guard = NonFiniteGuard(student, [opt], lambda: f"step {step}") if cfg.guard else None
    records, step = [], 0
    try:
        for step in range(cfg.steps + 1):
            loss = nn.functional.mse_loss(student(x), y)
            if step % cfg.record_every == 0:
                effective = incoming(student[0])
                offsets = handle.drawn_offsets()  # syre's anchors, jitter's shift
                learned = effective - torch.cat([offsets[0], offsets[1][:, None]], dim=1) if offsets else effective
                records.append(
                    {
                        "step": step,
                        "loss": float(loss.detach()),
                        "spread": copy_spread(effective, groups),
                        "spread_learned": copy_spread(learned, groups),
                        "distinct": distinct_units(effective),
                        "distinct_learned": distinct_units(learned),
                    }
                )
            if step < cfg.steps:
                opt.zero_grad()
                loss.backward()
                opt.step()
    finally:
        if guard is not None:
            guard.remove()
    return records


def method_table(scale: float = 0.01) -> dict[str, tuple[str, dict]]:
    """label: (method, settings), decay 0.01 for all; syre, syre-ar and jitter draw offsets at anchor ``scale``
    (0.01: the paper's order of magnitude). "vanilla" is the paper's baseline, Adam with weight decay 0.01. As in
    the published experiment 1, every seed's offsets come from method seed 0 (the students' seeds differ)."""
    return {
        "vanilla": ("l2", {"gamma": 0.01}),
        "syre": ("syre", {"gamma": 0.01, "scale": scale, "seed": 0}),
        "syre-ar": ("syre-ar", {"gamma": 0.01, "scale": scale, "ar_eps": 0.01, "seed": 0}),
        "jitter": ("jitter", {"gamma": 0.01, "scale": scale, "seed": 0}),
    }


QUANTITIES = ("spread", "spread_learned", "distinct", "distinct_learned", "loss")


def run_all(setting: TeacherStudentConfig, seeds: list[int], methods: dict | None = None) -> list[dict]:
    """Every method (default :func:`method_table`) at every seed: rows of ``method``, ``seed`` and the records
    of :func:`run`.

    :raise ValueError: no seeds, fewer than 1 step, or a method setting out of range (before anything runs)
    """
    methods = method_table() if methods is None else methods
    if not seeds or setting.steps < 1:
        raise ValueError(
            f"seeds must be at least one and steps >= 1, got {len(seeds)} seed(s) and {setting.steps} step(s)"
        )
    for method, settings in methods.values():
        make_method(method, **settings)  # refuses bad settings now rather than after the first methods ran
    rows = []
    for label, (method, settings) in methods.items():
        for seed in seeds:
            rows += [{"method": label, "seed": seed, **r} for r in run(setting, method, seed, **settings)]
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """Per method and quantity, over seeds at the last step: the mean with its 95% percentile-bootstrap interval,
    and the IQM with rliable's stratified-bootstrap interval (:func:`~syre_rl.agents.analysis.stats.iqm_ci`)."""
    from syre_rl.agents.analysis.stats import bootstrap_ci, iqm_ci

    last = max(r["step"] for r in rows)
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        final = [r for r in rows if r["method"] == method and r["step"] == last]
        for q in QUANTITIES:
            values = np.array([r[q] for r in final], dtype=float)
            mean, low, high = bootstrap_ci(values)
            iqm, iqm_low, iqm_high = iqm_ci(values)
            out.append(
                {
                    "method": method,
                    "quantity": q,
                    "step": last,
                    "mean": float(mean),
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "iqm": iqm,
                    "iqm_low": iqm_low,
                    "iqm_high": iqm_high,
                    "n_seeds": len(final),
                }
            )
    return out


def write_csv(rows: list[dict], path: Path) -> None:
    """Rows to CSV, atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    atomic_write(path, write)


def plot(rows: list[dict], path: Path) -> None:
    """Copy spread, distinct units and teacher loss over training: mean over seeds and its 95% bootstrap band."""
    from matplotlib.figure import Figure

    from syre_rl.agents.analysis.stats import bootstrap_ci

    fig = Figure(figsize=(15, 4))
    panels = [
        ("spread", "spread of the copies (effective weights)", "linear"),
        ("distinct_learned", "distinct units (weights minus random offsets)", "linear"),
        ("loss", "teacher loss", "log"),
    ]
    for i, (q, title, scale) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        for j, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
            steps = sorted({r["step"] for r in rows if r["method"] == method})
            values = np.array([[r[q] for r in rows if r["method"] == method and r["step"] == s] for s in steps])
            mean, low, high = bootstrap_ci(values.T)
            ax.plot(steps, mean, color=f"C{j}", label=f"{method} (n={values.shape[1]})")
            ax.fill_between(steps, low, high, color=f"C{j}", alpha=0.2)
        ax.set(title=title, xlabel="Adam step", yscale=scale)
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90))
