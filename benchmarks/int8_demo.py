"""Accuracy and speed of an int8 ONNX export against its fp32 export on the demo test split.

    python benchmarks/int8_demo.py RUN_DIR [--clips 2] [--calibration 64]

RUN_DIR is a demo run folder (`effvid demo --out RUN_DIR`): its best.pth is exported, quantised
to int8 (static QDQ, calibrated on the centre clips of the first `--calibration` training
videos; `--dynamic` for dynamic quantisation instead), and both files predict every test video
of the demo dataset the run was trained on. Prints top-1 of each, their agreement, file sizes
and the time each took for the whole test split (interleaved by video, one process).
"""

import argparse
import time
from pathlib import Path

from effvid.deploy.export import export_registered_model
from effvid.deploy.onnx_export import centre_clip
from effvid.deploy.quantize import quantize_int8
from effvid.inference.exported_files import read_exported_model
from effvid.inference.predictor import Predictor
from effvid.train import recipe_data
from effvid.train.training_checkpoint import read_training_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--calibration", type=int, default=64, help="training videos")
    parser.add_argument("--dynamic", action="store_true")
    args = parser.parse_args()
    checkpoint = args.run_dir / "best.pth"
    exported = export_registered_model(None, args.run_dir / "model.onnx", checkpoint=checkpoint)
    fp32 = exported.path
    data = recipe_data.demo_data_section(read_training_checkpoint(checkpoint).config["data"])
    train, test = (recipe_data.read_split(data, split) for split in ("train", "test"))
    clips = (
        []
        if args.dynamic
        else [
            centre_clip(r.path, read_exported_model(fp32).preprocessing, exported.input_shape)
            for r in train.records[: args.calibration]
        ]
    )
    int8 = quantize_int8(fp32, calibration=clips)
    predictors = {"fp32": Predictor(onnx=fp32), "int8": Predictor(onnx=int8)}
    labels = {name: [] for name in predictors}
    seconds = dict.fromkeys(predictors, 0.0)
    for record in test.records:
        for name, predictor in predictors.items():
            start = time.perf_counter()
            labels[name].append(predictor.predict(record.path, clips=args.clips).labels[0])
            seconds[name] += time.perf_counter() - start
    truth = [test.classes[r.label] for r in test.records]
    kind = "dynamic" if args.dynamic else f"static QDQ, {len(clips)} calibration clips"
    print(f"{len(test.records)} demo test videos, {args.clips} clips each; int8 {kind}")
    top1 = {}
    for name, path in (("fp32", fp32), ("int8", int8)):
        top1[name] = (
            100 * sum(p == t for p, t in zip(labels[name], truth, strict=True)) / len(truth)
        )
        print(f"{name}: top-1 {top1[name]:.2f}%  file {path.stat().st_size / 2**20:.1f} MB  "
              f"{seconds[name]:.1f} s")  # fmt: skip
    agree = sum(a == b for a, b in zip(labels["fp32"], labels["int8"], strict=True))
    print(f"top-1 change {top1['int8'] - top1['fp32']:+.2f} points; same top-1 label on "
          f"{100 * agree / len(truth):.1f}% of videos; int8 / fp32 time "
          f"{seconds['int8'] / seconds['fp32']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
