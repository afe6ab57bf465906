"""Continual learning on a task sequence with one plasticity method and seed (or several seeds trained as one
batched model); results per task go to TensorBoard and to RUN_DIR/results.jsonl, with a checkpoint at every task
boundary (--resume continues).

    python scripts/continual.py --benchmark permuted-mnist --tasks 10 --method syre --seed 0 --logdir runs/pm
    python scripts/continual.py --method l2 --method-args gamma=1e-3 --examples-per-task 6000   # quick
    python scripts/continual.py --method syre --seeds 0-7 --device cuda     # 8 seeds, one model, 8 run folders
"""

import sys

from syre_rl.agents.config import parse_dataclass, resume_command
from syre_rl.agents.continual import ContinualConfig, run_continual_seeds
from syre_rl.agents.runs import Interrupted


def main(argv: list[str] | None = None) -> dict[int, list[dict]]:
    config = parse_dataclass(ContinualConfig, __doc__, argv)
    try:
        runs = run_continual_seeds(config)
    except (ValueError, FileNotFoundError) as err:  # bad input or no data: one clear line, no traceback
        raise SystemExit(f"continual.py: error: {err}") from None
    except KeyboardInterrupt as stop:  # Interrupted: after a task, its checkpoint written; a second Ctrl-C: at once
        said = (
            f"{stop}"
            if isinstance(stop, Interrupted)
            else "stopped by Ctrl-C; every finished task is in its checkpoint"
        )
        print(f"continual.py: {said}; continue with: {resume_command('continual.py', argv)}", file=sys.stderr)
        raise SystemExit(130) from None
    for seed, records in runs.items():
        first, last = records[0], records[-1]
        print(
            f"{config.method} seed {seed}: task 0 accuracy {first['test_accuracy']:.4f}, task "
            f"{last['task']} accuracy {last['test_accuracy']:.4f}, last hidden layer effective rank "
            f"{list(last['effective_rank'].values())[-1]:.1f}"
        )
    return runs


if __name__ == "__main__":
    main()
