"""The key pair of the study on the main job's recipe: VMF-XXS against its 3D-CNN alone widened
to equal multiply-adds, each trained and tested by `effvid demo` (all 2100 training videos of the
local demo task, the demo recipe as shipped, 6 test views), seed by seed.

    python benchmarks/demo_pair.py [--seeds 5] [--out runs/demo_pair]

Written down before the runs: both arms get the demo recipe unchanged and no tuning (the study's
local-task grid picked the same rate, 1.6e-3, for both); seed k of both arms has the same
initial generator state and the same clip order; the paired difference VMF-XXS minus CNN alone
(test top-1, 95% t-interval over seeds) decides the claim on this task. Resumable: a seed whose
run folder holds metrics.json is read, not run again. The report goes to
benchmarks/results/demo_pair.{md,json}.
"""

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import study  # benchmarks/study.py, beside this script

from effvid.engine.config import load_config

REPORT = Path("benchmarks/results/demo_pair")


def arm_overrides() -> dict[str, list[str]]:
    """`effvid demo` overrides per arm: VMF-XXS as shipped, and its CNN alone at equal MACs."""
    data = load_config("demo")["data"]
    shape = (1, 3, data["num_frames"], data["crop_size"], data["crop_size"])
    target = study._flops("vmf_xxs", {}, shape)
    _, cnn = study.match_width("vmf_xxs", study.widened_cnn, target, shape)
    return {
        "vmf_xxs": [],
        "cnn": [f"model.args.{key}={json.dumps(value)}" for key, value in cnn.items()],
    }


def run_seed(arm: str, overrides: list[str], seed: int, out: Path) -> dict:
    folder = out / arm / f"seed{seed}"
    if not (folder / "metrics.json").exists():
        command = [sys.executable, "-m", "effvid.cli", "demo", "--out", str(folder)]
        subprocess.run([*command, f"train.seed={seed}", *overrides], check=True)
    return json.loads((folder / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("runs/demo_pair"))
    args = parser.parse_args()
    arms = arm_overrides()
    top1 = {arm: [] for arm in arms}
    for seed in range(args.seeds):  # seed by seed: an interrupted study is paired so far
        for arm, overrides in arms.items():
            top1[arm].append(run_seed(arm, overrides, seed, args.out)["top1"])
    differences = [a - b for a, b in zip(top1["vmf_xxs"], top1["cnn"], strict=True)]
    mean, half = study.t_interval(differences)
    report = {
        "command": f"python benchmarks/demo_pair.py --seeds {args.seeds}",
        "machine": study._machine("cpu"),
        "overrides": arms,
        "test_top1": top1,
        "difference": {"per_seed": differences, "mean": mean, "half_width": half},
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.with_suffix(".json").write_text(json.dumps(report, indent=2))
    lines = ["| arm | mean | sd | per seed |", "|---|---|---|---|"]
    for arm, values in top1.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        seeds = ", ".join(f"{v:.1f}" for v in values)
        lines.append(f"| {arm} | {statistics.fmean(values):.1f} | {spread:.1f} | {seeds} |")
    lines.append(
        f"\nVMF-XXS minus CNN alone, paired over {len(differences)} seeds: {mean:+.2f} points "
        f"(95% CI {mean - half:+.2f} to {mean + half:+.2f})"
    )
    REPORT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
