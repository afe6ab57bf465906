"""Issue 4, experiment 1: the paper's low-capacity experiment. A two-layer ReLU student starts with two groups
of four identical hidden units and learns a random teacher (full batch, Adam lr 0.01, decay 0.01); methods
vanilla (weight decay), syre, syre-ar and the jitter control, 5 seeds. Writes curves.csv, summary.csv and
symmetric_init.png to --out.

    python scripts/symmetric_init.py --out results/symmetric-init
    python scripts/symmetric_init.py --scale 1.0 --out results/symmetric-init/scale1
"""

from dataclasses import dataclass, field
from pathlib import Path

from syre_rl.agents.config import parse_dataclass
from syre_rl.agents.teacher_student import TeacherStudent, method_table, plot, run_all, summarize, write_csv


@dataclass
class Settings:
    out: str = field(default="results/symmetric-init", metadata={"help": "output folder"})
    seeds: int = field(default=5, metadata={"help": "seeds 0 .. N-1"})
    steps: int = field(default=3000, metadata={"help": "Adam steps"})
    scale: float = field(
        default=0.01,
        metadata={
            "help": "anchor scale of syre and syre-ar, shift scale of jitter "
            "(0.01: the paper's order; the library's default is 1.0)"
        },
    )


def main(argv: list[str] | None = None) -> list[dict]:
    settings = parse_dataclass(Settings, __doc__, argv)
    try:  # bad input: one clear line, before anything is written
        rows = run_all(TeacherStudent(steps=settings.steps), list(range(settings.seeds)), method_table(settings.scale))
    except ValueError as err:
        raise SystemExit(f"symmetric_init.py: error: {err}") from None
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(rows)
    write_csv(rows, out / "curves.csv")
    write_csv(summary, out / "summary.csv")
    plot(rows, out / "symmetric_init.png")
    for row in summary:
        print(
            f"{row['method']:8} {row['quantity']:17} mean {row['mean']:9.4f} [{row['ci_low']:.4f}, "
            f"{row['ci_high']:.4f}]  IQM {row['iqm']:9.4f} [{row['iqm_low']:.4f}, {row['iqm_high']:.4f}]"
        )
    return summary


if __name__ == "__main__":
    main()
