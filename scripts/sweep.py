"""Run a sweep of continual runs from a YAML specification (see agents/sweep.py), skipping finished runs and
resuming interrupted ones, several worker processes at a time.

    python scripts/sweep.py agents/experiments/pm-paper.yaml --workers 2
    python scripts/sweep.py agents/experiments/pm-paper.yaml --list      # the runs and their status
"""

import argparse

from syre_rl.agents.config import StrictParser
from syre_rl.agents.sweep import expand, load_spec, run_sweep, status


def main(argv: list[str] | None = None) -> None:
    parser = StrictParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="sweep specification (YAML)")
    parser.add_argument("--workers", type=int, default=1, help="runs at a time, one process each (default: 1)")
    parser.add_argument("--list", action="store_true", help="list the runs and their status, run nothing")
    args = parser.parse_args(argv)
    try:
        configs = expand(load_spec(args.spec))
    except (ValueError, OSError) as err:
        raise SystemExit(f"sweep.py: error: {err}") from None
    if args.list:
        for cfg in configs:
            print(f"{status(cfg):8} {cfg.label} seed {cfg.seed}")
        return
    if args.workers < 1:
        raise SystemExit(f"sweep.py: error: --workers must be >= 1, got {args.workers}")
    try:
        run_sweep(configs, args.workers)
    except RuntimeError as err:
        raise SystemExit(f"sweep.py: error: {err}") from None


if __name__ == "__main__":
    main()
