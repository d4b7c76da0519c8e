"""Accuracy of an int8-quantised ONNX export against its fp32 export on the demo test split.

    python benchmarks/int8_demo.py RUN_DIR [--model vmf_xxs] [--clips 2]

RUN_DIR is a demo run folder (`effvid demo --out RUN_DIR`): its best.pth is exported, quantised
(dynamic int8, ONNX Runtime) and both files predict every test video of the demo dataset the
run was trained on. Prints top-1 of each, their agreement, file sizes and latency.
"""

import argparse
import time
from pathlib import Path

from effvid.deploy.onnx_export import export_registered_model, quantize_int8
from effvid.engine import recipe_data
from effvid.engine.predictor import Predictor
from effvid.engine.training_checkpoint import read_training_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--model", default="vmf_xxs")
    parser.add_argument("--clips", type=int, default=2)
    args = parser.parse_args()
    fp32 = export_registered_model(
        args.model, args.run_dir / "model.onnx", checkpoint=args.run_dir / "best.pth"
    ).path
    int8 = quantize_int8(fp32)
    config = read_training_checkpoint(args.run_dir / "best.pth")["config"]
    test = recipe_data.read_split(recipe_data.demo_data_section(config["data"]), "test")
    predictors = {"fp32": Predictor(onnx=fp32), "int8": Predictor(onnx=int8)}
    top1, labels, seconds = {}, {}, {}
    for name, predictor in predictors.items():
        start = time.perf_counter()
        predicted = [predictor.predict(r.path, clips=args.clips).labels[0] for r in test.records]
        seconds[name] = time.perf_counter() - start
        truth = [test.classes[r.label] for r in test.records]
        top1[name] = 100.0 * sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
        labels[name] = predicted
    agree = sum(a == b for a, b in zip(labels["fp32"], labels["int8"], strict=True))
    print(f"{len(test.records)} demo test videos, {args.clips} clips each")
    for name, path in (("fp32", fp32), ("int8", int8)):
        print(f"{name}: top-1 {top1[name]:.2f}%  file {path.stat().st_size / 2**20:.1f} MB  "
              f"{seconds[name]:.1f} s")  # fmt: skip
    print(f"top-1 change {top1['int8'] - top1['fp32']:+.2f} points; "
          f"same top-1 label on {100 * agree / len(test.records):.1f}% of videos")  # fmt: skip


if __name__ == "__main__":
    main()
