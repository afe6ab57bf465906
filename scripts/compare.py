"""Compare runs: mean curves over seeds with 95% bootstrap confidence bands, and a summary table.

python scripts/compare.py runs/demo                     # writes to runs/demo/compare
python scripts/compare.py runs --out results --tags train/entropy_loss
"""

import argparse
from pathlib import Path

from syre_rl.agents.analysis import compare
from syre_rl.agents.config import StrictParser

EPILOG = """\
A run is a folder holding TensorBoard event files; its method and seed come from its config.json, else from a
folder name METHOD_sSEED or METHOD_sSEED_K; its experiment from config.json's env or benchmark, else the parent
folder. Runs are grouped by experiment and method and averaged over seeds.

Writes to DIR: return.png, accuracy.png, effective_rank.png, dead_units.png, duplicate_units.png (those whose
tags were logged; suffixed _EXPERIMENT when there are several experiments), summary.md (a table per
experiment, mean [95% CI] per method) and summary.csv (the same numbers, one row per experiment, method and
quantity)."""


def main(argv: list[str] | None = None) -> Path:
    parser = StrictParser(
        description=__doc__.splitlines()[0], epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs_dir", metavar="RUNS_DIR", help="folder searched at any depth for runs")
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
    args = parser.parse_args(argv)
    try:
        out = compare(args.runs_dir, args.out, extra_tags=args.tags, only=args.only)
    except ValueError as err:  # bad input: one clear line, no traceback
        raise SystemExit(f"compare.py: error: {err}") from None
    print(f"figures, summary.md and summary.csv in {out}")
    return out


if __name__ == "__main__":
    main()
