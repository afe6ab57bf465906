"""Compare runs: mean curves over seeds with 95% bootstrap confidence bands, and a summary table.

python scripts/compare.py runs/demo                     # writes to runs/demo/compare
python scripts/compare.py runs --out results --tags train/entropy_loss
python scripts/compare.py --summaries results/a/summary.csv results/b/summary.csv --out results/ab
"""

import argparse
from pathlib import Path

from syre_rl.agents.analysis import combine, compare
from syre_rl.agents.config import StrictParser

EPILOG = """\
A run is a folder holding TensorBoard event files; its method and seed come from its config.json, else from a
folder name METHOD_sSEED or METHOD_sSEED_K; its experiment from config.json's env or benchmark, else the parent
folder. Runs are grouped by experiment and method and averaged over seeds.

Writes to DIR: return.png, accuracy.png, effective_rank.png, dead_units.png, duplicate_units.png (those whose
tags were logged; suffixed _EXPERIMENT when there are several experiments), summary.md (a table per experiment,
mean [95% CI] per method) and summary.csv (the same numbers, one row per experiment, method and quantity), and,
where fresh-task<k> runs stand beside task runs, tasks.md, tasks.png, tasks_whole.png, (for a grid) tuning.md
and (for two methods or more) paired.md: every two methods' gaps against each other, seed by seed.

--summaries combines earlier comparisons without their runs (a grid or an evaluation run in parts, whose run
folders are gone): it writes summary.csv, tasks.md, tuning.md, paired.md and the task figures from their
summary.csv files, seeds united; a seed that two files both hold must have the same value in each."""


def main(argv: list[str] | None = None) -> Path:
    parser = StrictParser(
        description=__doc__.splitlines()[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs_dir", metavar="RUNS_DIR", nargs="?", help="folder searched at any depth for runs")
    parser.add_argument("--out", metavar="DIR", help="output folder, created if needed (default: RUNS_DIR/compare)")
    parser.add_argument(
        "--tags",
        nargs="+",
        default=[],
        metavar="TAG",
        help="more scalar tags for the summary, each run's last value (e.g. train/entropy_loss)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=[],
        metavar="PATTERN",
        help="compare only methods (or run labels) matching these shell patterns, e.g. 'syre*' l2",
    )
    parser.add_argument(
        "--summaries",
        nargs="+",
        default=[],
        metavar="CSV",
        help="instead of RUNS_DIR: combine these comparisons' summary.csv files (needs --out)",
    )
    args = parser.parse_args(argv)
    if (args.runs_dir is None) == (not args.summaries):
        parser.error(
            "give either RUNS_DIR or --summaries CSV ..., not both"
            if args.summaries
            else "give RUNS_DIR (or --summaries)"
        )
    if args.summaries and (args.out is None or args.tags or args.only):
        parser.error("--summaries needs --out DIR and takes neither --tags nor --only (they read runs' logs)")
    try:
        if args.summaries:
            out = combine(args.summaries, args.out)
            print(f"tasks.md, tuning.md, paired.md and summary.csv in {out}")
            return out
        out = compare(args.runs_dir, args.out, extra_tags=args.tags, only=args.only)
    except ValueError as err:  # bad input: one clear line, no traceback
        raise SystemExit(f"compare.py: error: {err}") from None
    print(f"figures, summary.md and summary.csv in {out}")
    return out


if __name__ == "__main__":
    main()
