"""The demo (`effvid demo`, `make demo`): the whole product on a laptop CPU, with no download.

1. make the built-in demo dataset (real mp4 files of moving handwritten digits) if absent;
2. train a Video Mobile-Former on it (recipe `demo`), with progress bars;
3. evaluate the best checkpoint on the held-out test split with multi-view testing, and again
   with every clip played backwards: a model that learned time order confuses each class with
   its time-reversed twin (moving left <-> right, approaching <-> separating, ...);
4. predict a few held-out videos, printing their top-3;
5. write `metrics.json` (top-1, top-5, time-reversed top-1, wall time, model, video counts),
   the confusion matrix, the training curves and the checkpoints into the run folder.
"""

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from effvid.data.demo_data import TASKS as DEMO_TASKS
from effvid.distributed import setup_distributed
from effvid.inference.predictor import Predictor
from effvid.train import recipe_data
from effvid.train.config import load_config
from effvid.train.evaluate import evaluate_checkpoint, summarize
from effvid.train.trainer import Trainer


def reversal_accuracy(results, task: str) -> float:
    """Top-1 (%) of time-reversed clips of demo `task` against the class each becomes when
    played backwards (local: left <-> right, ...; global: larger <-> smaller, ...)."""
    twins = DEMO_TASKS[task].time_reversed
    reversed_labels = torch.tensor([twins[int(label)] for label in results.labels])
    return 100.0 * (results.scores.argmax(dim=1) == reversed_labels).float().mean().item()


def run_demo(
    out: str | Path = "runs/demo",
    overrides: Sequence[str] = (),
    *,
    show_videos: int = 4,
    device: str = "cpu",
) -> dict:
    """Run the whole demo into `out` on `device` ('cpu' or 'cuda'); returns the metrics written
    to `out/metrics.json`."""
    start = time.perf_counter()
    out = Path(out)
    context = setup_distributed(device)
    config = load_config("demo", [f"output.dir={out}", *overrides])
    print("== 1/4 the demo dataset")
    data = recipe_data.demo_data_section(config["data"])
    config["data"] = data
    print(f"videos in {data['root']}")

    print(f"== 2/4 training {config['model']['name']} on {context.device}")
    trainer = Trainer(config, context, resume=False)
    trainer.fit()
    best = out / "best.pth"

    print("== 3/4 held-out test split, multi-view")
    test = evaluate_checkpoint(
        config, best, split="test", output=out, progress=False, device=device
    )
    metrics = test.metrics()
    print(f"test: {summarize(metrics)}")
    reversed_test = evaluate_checkpoint(
        config,
        best,
        split="test",
        output=out,
        time_order="reversed",
        progress=False,
        device=device,
    )
    reversed_top1 = reversed_test.metrics()["top1"]
    reversed_as_twin = reversal_accuracy(reversed_test, data["demo_task"])
    print(
        f"time-reversed test clips: top-1 {reversed_top1:.2f}% against their labels, "
        f"{reversed_as_twin:.2f}% read as the time-reversed class"
    )

    print("== 4/4 predictions on held-out videos")
    predictor = Predictor(config["model"]["name"], best, device=str(context.device))
    classes = test.class_names
    for record in recipe_data.read_split(data, "test").records[:show_videos]:
        prediction = predictor.predict(record.path, top_k=3, clips=2)
        print(f"{prediction}   (true: {classes[record.label]})")

    result = {
        "model": config["model"]["name"],
        "top1": metrics["top1"],
        "top5": metrics["top5"],
        "mean_class_accuracy": metrics["mean_class_accuracy"],
        "top1_time_reversed": reversed_top1,
        "top1_time_reversed_as_reversed_class": reversed_as_twin,
        "test_views": metrics["views_per_video"],
        "train_videos": len(trainer.train_set.videos.records),
        "test_videos": metrics["videos"],
        "epochs": config["train"]["epochs"],
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    (out / "metrics.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"done in {result['wall_seconds']:.0f} s; run folder {out} (metrics.json, "
          "test_confusion.png, training_curves.png, best.pth)")  # fmt: skip
    return result
