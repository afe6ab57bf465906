#!/usr/bin/env bash
# The prepared GPU check (issue 11): every GPU test (pytest -m gpu: continual runs with the data on the device,
# K seeds in one model against single runs, PPO and SAC, a sweep whose runs share one GPU by fractions), then the
# GPU benchmarks (K = 1, 8, 32 seeds in one model against sequential runs; batched PPO, K = 1 and 64 seeds, goal:
# K = 64 in <= 2x the wall time of one seed). Planned to take under 6 minutes on one GPU; prints its own wall time. Output goes to stdout and, when OUT is set, to $OUT/gpu_check.log.
#
#   scripts/gpu_check.sh                       # with .venv (make test sets it up; on a GPU box torch==2.13.0 from
#                                              # PyPI is the CUDA build)
#   PYTHON=python3 scripts/gpu_check.sh        # another environment holding syre_rl[dev]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
LOG=${OUT:-/tmp}/gpu_check.log
start=$(date +%s)
{
  "$PYTHON" -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'; print('GPU:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
  "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests
  "$PYTHON" scripts/bench_seeds.py --device cuda --ks 1,8,32 --nets "300,300,300,300" --batch-sizes 64,16 --repeats 2
  "$PYTHON" scripts/bench_batched_ppo.py --device cuda --ks 1,64 --rollouts 10 --repeats 1
  echo "gpu_check: $(( $(date +%s) - start )) s"
} 2>&1 | tee "$LOG"
