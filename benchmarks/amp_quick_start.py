"""The README's first command (train.yaml on the embedded synthetic dataset) with ``--amp false`` and ``--amp true``,
seed by seed, taking turns so that drifts of the machine's speed hit both alike. Prints, per run, the wall time of
the command, the summed time of its training epochs, the best validation Dice and the test Dice, then the paired
differences (amp - float32) with their 90 % interval and the speed ratio.

    python benchmarks/amp_quick_start.py                       # seeds 0 1 2, in a temporary folder
    python benchmarks/amp_quick_start.py --seeds 0 --output /tmp/amp_runs
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)  # the repository's experiments package
from experiments.aggregate import t_interval  # noqa: E402

EPOCH_TIME = re.compile(r"(TeacherPretrainer|CoTrainer) - INFO - Epoch\[\d+\] Complete\. Time taken: (\d+):(\d+):([\d.]+)")


def run(amp: bool, seed: int, folder: str) -> dict:
    """One run of the quick start's training command; its times and scores."""
    command = [sys.executable, "-m", "monai.bundle", "run", "training", "--config_file",
               os.path.join(ROOT, "bundle", "configs", "train.yaml"), "--seed", str(seed), "--amp", str(amp).lower(),
               "--ckpt_dir", os.path.join(folder, "models"), "--output_dir", os.path.join(folder, "eval")]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    training = sum(int(h) * 3600 + int(m) * 60 + float(s) for _, h, m, s in EPOCH_TIME.findall(result.stderr + result.stdout))
    with open(os.path.join(folder, "eval", "figures", "progress.json")) as f:
        validation = json.load(f)["val_mean_dice"]
    with open(os.path.join(folder, "models", "test_metrics.json")) as f:
        test = json.load(f)["dice"]["mean"]
    return {"wall_s": wall, "training_s": training, "best_val_dice": max(validation.values()), "test_dice": test}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--output", default=None, help="where the runs' folders go (default: a temporary folder)")
    args = parser.parse_args()
    output = args.output or tempfile.mkdtemp(prefix="amp_quick_start_")
    results = {}
    for seed in args.seeds:
        for amp in (False, True):
            results[amp, seed] = run(amp, seed, os.path.join(output, f"amp_{str(amp).lower()}_seed{seed}"))
            r = results[amp, seed]
            print(f"seed {seed} amp {str(amp).lower():5}  wall {r['wall_s']:6.1f} s  training {r['training_s']:6.1f} s  "
                  f"best validation Dice {r['best_val_dice']:.4f}  test Dice {r['test_dice']:.4f}", flush=True)
    for key in ("best_val_dice", "test_dice"):
        d = t_interval([results[True, s][key] - results[False, s][key] for s in args.seeds])
        print(f"{key}: amp - float32 = {d.mean:+.4f} ± {d.half_width:.4f} (90 % interval, n = {d.n})")
    for key in ("wall_s", "training_s"):
        ratio = sum(results[False, s][key] for s in args.seeds) / sum(results[True, s][key] for s in args.seeds)
        print(f"{key}: float32 / amp = {ratio:.2f}x")


if __name__ == "__main__":
    main()
