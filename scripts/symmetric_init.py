"""Issue 4, experiment 1: the paper's low-capacity experiment. A two-layer ReLU student starts with two groups
of four identical hidden units and learns a random teacher (full batch, Adam lr 0.01, decay 0.01); methods
vanilla (weight decay), syre, syre-ar and the jitter control, 5 seeds. Writes curves.csv, summary.csv and
symmetric_init.png to --out.

    python scripts/symmetric_init.py --out results/symmetric-init
"""

from dataclasses import dataclass, field
from pathlib import Path

from agents.teacher_student import TeacherStudent, plot, run_all, summarize, write_csv
from syre_rl.cli import parse_dataclass


@dataclass
class Settings:
    out: str = field(default="results/symmetric-init", metadata={"help": "output folder"})
    seeds: int = field(default=5, metadata={"help": "seeds 0 .. N-1"})
    steps: int = field(default=3000, metadata={"help": "Adam steps"})


def main(argv: list[str] | None = None) -> list[dict]:
    settings = parse_dataclass(Settings, __doc__, argv)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = run_all(TeacherStudent(steps=settings.steps), list(range(settings.seeds)))
    summary = summarize(rows)
    write_csv(rows, out / "curves.csv")
    write_csv(summary, out / "summary.csv")
    plot(rows, out / "symmetric_init.png")
    for row in summary:
        print(f"{row['method']:8} {row['quantity']:17} {row['mean']:9.4f} [{row['ci_low']:.4f}, {row['ci_high']:.4f}]")
    return summary


if __name__ == "__main__":
    main()
