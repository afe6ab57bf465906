"""Run a sweep (continual or RL runs) from a YAML specification (see agents/sweep.py) as Ray tasks: on this machine
by default, as many runs at once as the cores hold, or on a Ray cluster with --address. Finished runs are skipped,
interrupted ones resume from their checkpoints, and a run whose worker dies is retried from its checkpoint.

    python scripts/sweep.py agents/experiments/pm-paper.yaml               # here, every core
    python scripts/sweep.py agents/experiments/pm-paper.yaml --list        # the runs and their status
    python scripts/sweep.py agents/experiments/slippery-ant.yaml --address 10.0.0.1:6379   # on a cluster
    python scripts/sweep.py agents/experiments/cchain-cartpole-tuning.yaml --only 'fresh-*' vanilla 'syre-*'
    python scripts/sweep.py agents/experiments/dqn-cartpole-offset-control.yaml --seeds 0,1    # a pilot: 2 seeds
"""

import argparse

from syre_rl.agents.config import StrictParser, parse_seeds
from syre_rl.agents.sweep import expand, load_spec, run_sweep, select, status


def main(argv: list[str] | None = None) -> None:
    parser = StrictParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("spec", help="sweep specification (YAML)")
    parser.add_argument(
        "--address",
        help="Ray cluster to run on (what `ray start --head` prints, or auto); "
        "default: a local Ray instance on this machine",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        help="CPUs of the local Ray instance (default: all cores); runs at once = CPUS / the spec's cpus per run",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="run (or list) only the runs whose label matches one of these shell patterns, e.g. 'fresh-*' 'syre-*'",
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        metavar="SEEDS",
        help="run (or list) only these of the spec's seeds, e.g. 0,1 or 0-4",
    )
    parser.add_argument("--list", action="store_true", help="list the runs and their status, run nothing")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    args = parser.parse_args(argv)
    if args.cpus is not None and args.cpus < 1:
        raise SystemExit(f"sweep.py: error: --cpus must be >= 1, got {args.cpus}")
    if args.cpus is not None and args.address:
        raise SystemExit("sweep.py: error: --cpus sizes the local Ray instance; a cluster (--address) has its own")
    try:
        spec = load_spec(args.spec)
        configs = select(expand(spec), args.only, args.seeds)
    except (ValueError, OSError) as err:
        raise SystemExit(f"sweep.py: error: {err}") from None
    if args.list:
        for cfg in configs:
            print(f"{status(cfg):8} {cfg.label} seed {cfg.seed}")
        return
    try:
        run_sweep(configs, spec, args.address, args.cpus, args.progress)
    except (RuntimeError, ValueError, ConnectionError) as err:
        raise SystemExit(f"sweep.py: error: {err}") from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
