"""The reduced-precision copies of the trained demo model, on every runtime, checked on the whole
demo test split: top-1 agreement with the fp32 file and the accuracy each keeps.

    python benchmarks/precision_demo.py RUN_DIR [--runtimes onnx openvino executorch]
        [--calibration 64] [--output benchmarks/results/precision_demo.json]

RUN_DIR is a demo run folder (`effvid demo --out RUN_DIR`). For each runtime its best.pth is
exported as `effvid export --runtime R --int8 [--bf16]` does (OpenVINO: bf16 too where the CPU
has it), calibrated on the first `--calibration` training videos and checked on the centre clip
of every test video, each runtime in a process of its own (as the command runs). The limits are
switched off here so that every copy is measured; `effvid export` keeps a copy only at >= 99%
agreement and <= 1 point lost.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

RUNTIMES = {"onnx": ".onnx", "openvino": ".xml", "executorch": ".pte"}


def export_one(run_dir: Path, runtime: str, calibration: int) -> list[dict]:
    """Export the run's best.pth for `runtime` with its copies; their checks as dicts."""
    from effvid.deploy.export import export_registered_model
    from effvid.inference.openvino_runtime import supports_bf16
    from effvid.train import recipe_data
    from effvid.train.training_checkpoint import read_training_checkpoint

    checkpoint = run_dir / "best.pth"
    data = recipe_data.demo_data_section(read_training_checkpoint(checkpoint).config["data"])
    train = recipe_data.read_split(data, "train")
    test = recipe_data.read_split(data, "test")
    export = export_registered_model(
        None, run_dir / "precision" / f"model{RUNTIMES[runtime]}", format=runtime,
        checkpoint=checkpoint, int8=True, bf16=runtime == "openvino" and supports_bf16(),
        calibration=[record.path for record in train.records[:calibration]],
        check_data=data["test"], check_clips=len(test.records),
        limits={"min_agreement": 0.0, "max_accuracy_drop": 100.0},
    )  # fmt: skip
    print(export, flush=True)
    return [
        {
            "runtime": runtime,
            "precision": check.precision,
            "videos": check.clips,
            "agreement": check.top1_agreement,
            "fp32_top1": check.fp32_accuracy,
            "top1": check.accuracy,
            "max_logit_difference": check.max_abs_difference,
            "file_mb": check.path.stat().st_size / 2**20,
        }
        for check in export.copies
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--runtimes", nargs="+", choices=list(RUNTIMES), default=list(RUNTIMES))
    parser.add_argument("--calibration", type=int, default=64, help="training videos")
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results/precision_demo.json")
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # run one runtime, print its JSON
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(export_one(args.run_dir, args.one, args.calibration)))
        return
    rows = []
    for runtime in args.runtimes:
        command = [sys.executable, __file__, str(args.run_dir), "--one", runtime,
                   "--calibration", str(args.calibration)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not results:
            print(f"{runtime}: failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        rows += json.loads(results[-1].removeprefix("RESULT "))
    print("| runtime | copy | videos | agreement | fp32 top-1 | top-1 | points lost | file |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        lost = 100 * (row["fp32_top1"] - row["top1"])
        print(f"| {row['runtime']} | {row['precision']} | {row['videos']} | "
              f"{100 * row['agreement']:.1f}% | {100 * row['fp32_top1']:.2f}% | "
              f"{100 * row['top1']:.2f}% | {lost:+.2f} | {row['file_mb']:.1f} MB |")  # fmt: skip
    args.output.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
