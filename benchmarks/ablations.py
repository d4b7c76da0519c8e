"""Ablation study on the built-in demo data: do Video Mobile-Former's global tokens help?

    python benchmarks/ablations.py [--seeds 0 1 2] [--epochs 3] [--videos 2400] [--out DIR]
                                   [--arms NAME ...] [--report benchmarks/results/ablations]

Every arm trains with the same recipe (`demo`, see effvid/configs/demo.yaml) for the same number
of epochs, once per seed (the seed sets the initial weights, the data order and the
augmentation), then is evaluated once on the held-out test split (single view: centre clip,
centre crop). Nothing is selected on the test split; the validation pass at the end of training
is only logged. Arms:

- `vmf_xxs`: the smallest VMF (3 global tokens of width 128, 0.52 GFLOPs total at its card's
  8x160x160 x 2 views);
- `tokens_1`, `tokens_6`, `tokens_12`: the same with 1, 6 or 12 tokens;
- `frame_tokens`: 3 tokens per frame instead of per clip (`tokens_per_frame=True`);
- `cnn_only`: its 3D-CNN alone (`global_branch=False`: no tokens, Former, bridges or dynamic
  ReLUs), every conv width (stem, lite block, block outputs) multiplied by the factor whose
  multiply-adds come closest to `vmf_xxs`'s at the study input;
- `x3d_xs`: X3D-XS from the zoo, with its own card's 4 frames (every 4th of the 16);
- `dualformer`: a reduced DualFormer of similar cost (below: `DUALFORMER_REDUCED`).

Run folders go to `--out`/<arm>/seed<k> (default out: runs/ablations/<videos>v_<epochs>e); an
arm/seed whose test_metrics.json exists is not retrained, so an interrupted study continues
where it stopped.
The report (`<report>.json`, `<report>.md` table, `<report>.png` accuracy vs GFLOPs) is written
from every finished run.
"""

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from effvid.engine.config import load_config
from effvid.engine.distributed import setup_distributed
from effvid.engine.evaluate import evaluate_checkpoint
from effvid.engine.trainer import Trainer
from effvid.models import create_model
from effvid.models.flops import count_flops, count_params
from effvid.models.mobile_former import MOBILE_FORMER_CONFIGS, BlockSpec

NUM_CLASSES = 10  # the demo dataset's

# Four stages at 8x56x56: 7x7 patches make 4x8x8 tokens, then 4x4x4, 4x2x2, 4x1x1. The grids
# are too small for the pooled pyramid (its coarse level needs >= 7x7 tokens), so every second
# block attends globally to all tokens of its stage, after a local-window block.
DUALFORMER_REDUCED = dict(
    video_size=(8, 56, 56),
    patch_size=(2, 7, 7),
    embed_dims=(32, 64, 128, 256),
    num_heads=(1, 2, 4, 8),
    depths=(2, 2, 2, 2),
    local_sizes=((2, 4, 4),) * 4,
    fine_pysizes=((4, 8, 8), (4, 4, 4), (4, 2, 2), (4, 1, 1)),
)


@dataclass(frozen=True)
class Arm:
    """One configuration of the study: a registered model, its arguments, recipe overrides."""

    name: str
    label: str
    model: str
    args: dict = field(default_factory=dict)
    overrides: tuple[str, ...] = ()

    def input_shape(self, config: dict) -> tuple[int, ...]:
        data = config["data"]
        return (1, 3, data["num_frames"], data["crop_size"], data["crop_size"])


def widened_cnn_args(base: str, factor: float) -> dict:
    """The Mobile-Former table `base` without its global branch, every conv width x factor."""
    table = MOBILE_FORMER_CONFIGS[base]

    def widen(channels: int) -> int:
        return max(1, round(channels * factor))

    lite = BlockSpec(*table["lite_block"])
    return {
        "global_branch": False,
        "stem_channels": widen(table["stem_channels"]),
        "lite_block": [lite.expansion, widen(lite.out_channels), lite.stride],
        "blocks": [[e, widen(c), s] for e, c, s in table["blocks"]],
    }


def _flops(model_name: str, args: dict, shape: tuple[int, ...]) -> int:
    with torch.device("meta"):
        model = create_model(model_name, num_classes=NUM_CLASSES, **args)
    return count_flops(model, shape).total


def match_cnn_width(base_model: str, base: str, shape: tuple[int, ...]) -> tuple[float, dict]:
    """The widening factor (steps of 0.01) whose CNN-only multiply-adds are closest to the
    full model's at `shape`, and its constructor arguments."""
    target = _flops(base_model, {}, shape)
    factors = [1.0 + step / 100 for step in range(51)]
    best = min(
        factors, key=lambda f: abs(_flops(base_model, widened_cnn_args(base, f), shape) - target)
    )
    return best, widened_cnn_args(base, best)


def study_arms(shape: tuple[int, ...]) -> list[Arm]:
    factor, cnn_args = match_cnn_width("vmf_xxs", "52m", shape)
    return [
        Arm("vmf_xxs", "VMF-XXS, 3 tokens", "vmf_xxs"),
        Arm("tokens_1", "VMF-XXS, 1 token", "vmf_xxs", {"num_tokens": 1}),
        Arm("tokens_6", "VMF-XXS, 6 tokens", "vmf_xxs", {"num_tokens": 6}),
        Arm("tokens_12", "VMF-XXS, 12 tokens", "vmf_xxs", {"num_tokens": 12}),
        Arm("frame_tokens", "VMF-XXS, 3 tokens per frame", "vmf_xxs", {"tokens_per_frame": True}),
        Arm("cnn_only", f"its 3D-CNN alone, widths x{factor:.2f}", "vmf_xxs", cnn_args),
        Arm(
            "x3d_xs",
            "X3D-XS, 4 frames",
            "x3d_xs",
            overrides=("data.num_frames=4", "data.sampling_rate=4"),
        ),
        Arm("dualformer", "DualFormer, reduced", "dualformer_t", DUALFORMER_REDUCED),
    ]


def arm_config(arm: Arm, seed: int, epochs: int, videos: int, run_dir: Path) -> dict:
    return load_config(
        "demo",
        [
            f"train.epochs={epochs}",
            f"train.seed={seed}",
            f"data.demo_videos={videos}",
            "train.warmup_epochs=0.5",
            "eval.clips=1",
            "eval.crops=1",
            f"eval.every={epochs}",
            f"output.dir={run_dir}",
            *arm.overrides,
        ],
    ) | {"model": {"name": arm.model, "args": arm.args, "checkpoint": None}}


def run_arm(arm: Arm, seed: int, epochs: int, videos: int, out: Path) -> dict:
    """Train and test one arm with one seed (or read the result of an earlier run)."""
    run_dir = out / arm.name / f"seed{seed}"
    result_file = run_dir / "test_metrics.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    config = arm_config(arm, seed, epochs, videos, run_dir)
    start = time.perf_counter()
    trainer = Trainer(config, setup_distributed("cpu"), resume=False, progress=False)
    trainer.fit()
    train_seconds = time.perf_counter() - start
    test = evaluate_checkpoint(config, run_dir / "last.pth", split="test", progress=False)
    shape = arm.input_shape(config)
    result = {
        "arm": arm.name,
        "label": arm.label,
        "seed": seed,
        "model": arm.model,
        "args": arm.args,
        "input": list(shape[1:]),
        "gflops_per_view": count_flops(trainer.model, shape).total / 1e9,
        "params_m": count_params(trainer.model) / 1e6,
        "test_top1": test.metrics()["top1"],
        "val_top1": trainer.state.history[-1]["val_top1"],
        "train_seconds": round(train_seconds, 1),
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def summarise(results: list[dict]) -> list[dict]:
    """One row per arm: mean, sample standard deviation, min and max of test top-1."""
    rows = []
    for arm in dict.fromkeys(r["arm"] for r in results):
        runs = [r for r in results if r["arm"] == arm]
        top1 = [r["test_top1"] for r in runs]
        rows.append(
            {
                "arm": arm,
                "label": runs[0]["label"],
                "gflops_per_view": runs[0]["gflops_per_view"],
                "params_m": runs[0]["params_m"],
                "seeds": [r["seed"] for r in runs],
                "top1": top1,
                "mean": statistics.fmean(top1),
                "std": statistics.stdev(top1) if len(top1) > 1 else 0.0,
                "train_seconds": statistics.fmean(r["train_seconds"] for r in runs),
            }
        )
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "| arm | model | MFLOPs/view | params (M) | test top-1 % mean ± std | min-max | per seed |"
        " train s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        per_seed = ", ".join(f"{v:.1f}" for v in row["top1"])
        lines.append(
            f"| {row['arm']} | {row['label']} | {row['gflops_per_view'] * 1000:.1f} | "
            f"{row['params_m']:.2f} | {row['mean']:.1f} ± {row['std']:.1f} | "
            f"{min(row['top1']):.1f}-{max(row['top1']):.1f} | {per_seed} | "
            f"{row['train_seconds']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Accuracy vs multiply-adds per view (mean and std over seeds); the per-clip token series
    of VMF-XXS joined by a line, as in the papers' first figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    figure, axes = plt.subplots(figsize=(7.5, 5.8))
    series = sorted(
        (r for r in rows if r["arm"] == "vmf_xxs" or r["arm"].startswith("tokens_")),
        key=lambda r: r["gflops_per_view"],
    )
    if series:
        axes.plot(
            [r["gflops_per_view"] * 1000 for r in series],
            [r["mean"] for r in series],
            "-",
            color="tab:red",
            alpha=0.4,
        )
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:gray"]
    styles = iter(zip("osD^vP", colours, strict=True))
    for row in rows:
        in_series = row in series
        marker, colour = ("*", "tab:red") if in_series else next(styles)
        axes.errorbar(
            row["gflops_per_view"] * 1000,
            row["mean"],
            yerr=row["std"],
            fmt=marker,
            markersize=13 if in_series else 8,
            color=colour,
            capsize=3,
            alpha=0.85,
            label=None if in_series else row["label"],
        )
        if in_series:
            tokens = row["label"].split(", ")[-1]
            axes.annotate(
                tokens, (row["gflops_per_view"] * 1000, row["mean"]), textcoords="offset points",
                xytext=(7, -4), fontsize=8, color="tab:red",
            )  # fmt: skip
    if series:
        axes.plot([], [], "*-", color="tab:red", markersize=11, label="VMF-XXS, tokens per clip")
    axes.set_xscale("log")
    axes.xaxis.set_major_formatter(ScalarFormatter())
    axes.xaxis.set_minor_formatter(ScalarFormatter())
    axes.tick_params(axis="x", which="minor", labelsize=7)
    axes.set_xlabel("MFLOPs (multiply-adds) per view, log scale")
    axes.set_ylabel("test top-1 (%), mean ± std over seeds")
    axes.set_title(title, fontsize=10)
    axes.grid(alpha=0.3, which="both")
    axes.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--videos", type=int, default=2400, help="demo dataset size")
    parser.add_argument("--arms", nargs="+", help="a subset of the arms, by name")
    parser.add_argument("--out", type=Path, help="default: runs/ablations/<videos>v_<epochs>e")
    parser.add_argument("--report", type=Path, default=Path("benchmarks/results/ablations"))
    args = parser.parse_args()
    args.out = args.out or Path(f"runs/ablations/{args.videos}v_{args.epochs}e")
    shape = (1, 3, 8, 56, 56)  # the demo recipe's clips
    arms = study_arms(shape)
    if args.arms:
        unknown = set(args.arms) - {arm.name for arm in arms}
        if unknown:
            parser.error(f"unknown arms {sorted(unknown)}; choose from {[a.name for a in arms]}")
        arms = [arm for arm in arms if arm.name in args.arms]
    start = time.perf_counter()
    results = []
    for seed in args.seeds:  # seed-major: a partial study already covers every arm
        for arm in arms:
            result = run_arm(arm, seed, args.epochs, args.videos, args.out)
            print(f"{arm.name:11s} seed {seed}: test top-1 {result['test_top1']:.2f}%", flush=True)
            results.append(result)
    rows = summarise(results)
    table = markdown_table(rows)
    print(table)
    print(f"study wall time {time.perf_counter() - start:.0f} s")
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    args.report.with_suffix(".md").write_text(table)
    title = (
        f"demo data, {args.epochs} epochs, seeds {', '.join(map(str, args.seeds))}; "
        "test single view"
    )
    plot(rows, args.report.with_suffix(".png"), title)


if __name__ == "__main__":
    main()
