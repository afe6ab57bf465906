"""The largest difference between a seed trained in a batch of K seeds and the same seed trained alone (a batch of
one), for every method: the batched PPO (agents/rl/batched.py) on the small CartPole preset of the tests, 52
updates, in float64 (where the two agree to rounding) and in float32 (where they agree to rounding at first and
drift apart as training goes on: it is chaotic).

    python scripts/check_members.py            # about 30 s on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from syre_rl.agents.rl import TrainConfig
from syre_rl.agents.rl.seeds import train_rollouts

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.conftest import ACTIVE as SETTINGS  # noqa: E402  (settings under which each method acts in 52 updates)


def largest_difference(method: str, dtype: torch.dtype, seeds=(4, 1, 7), member: int = 1) -> float:
    """Max over the policy's tensors of max |batched - alone| / max |alone|, for ``seeds[member]``."""
    preset = str(ROOT / "tests" / "tiny-cartpole.yaml")
    runs = [
        train_rollouts(
            TrainConfig(preset=preset, seeds=list(s), method=method, method_args=SETTINGS[method], device="cpu"),
            13,
            dtype,
        )
        for s in (seeds, [seeds[member]])
    ]
    mine, alone = runs[0].member_policy_state(member), runs[1].member_policy_state(0)
    return max(float((mine[k] - v).abs().max() / v.abs().max().clamp_min(1e-30)) for k, v in alone.items())


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print(f"{'method':>15} | {'float64':>9} {'float32':>9}   (largest relative difference, seed 1 of 4,1,7 vs alone)")
    out = {}
    for method in SETTINGS:
        out[method] = {
            name: largest_difference(method, dtype)
            for name, dtype in (("float64", torch.float64), ("float32", torch.float32))
        }
        print(f"{method:>15} | {out[method]['float64']:>9.1e} {out[method]['float32']:>9.1e}", flush=True)
    return out


if __name__ == "__main__":
    main()
