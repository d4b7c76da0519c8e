"""Peer comparison in one process: the VMF ladder, X3D, DualFormer and the image Mobile-Former
applied to every frame, on the same machine, one after the other.

    python benchmarks/peers.py [--threads 2] [--runs 10] [--skip-dualformer]

For each model at its model card's input: params, GFLOPs per view, eager latency at batch 1,
eager throughput at batch 8, ONNX Runtime latency at batch 1 and its ratio to eager, and the
peak memory growth of the batch-1 eager run. Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse

import torch
from torch import nn

import effvid
from effvid.deploy.benchmark import benchmark_model


class PerFrame(nn.Module):
    """An image classifier applied to each frame of a clip, logits averaged over time:
    (B, 3, T, H, W) -> (B, classes)."""

    def __init__(self, image_model: nn.Module) -> None:
        super().__init__()
        self.image_model = image_model

    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        batch, channels, frames, height, width = clips.shape
        frames_as_images = clips.transpose(1, 2).reshape(batch * frames, channels, height, width)
        return self.image_model(frames_as_images).view(batch, frames, -1).mean(dim=1)


VIDEO_MODELS = ["vmf_xxs", "vmf_xs", "vmf_s", "vmf_m", "vmf_l", "x3d_xs", "x3d_s", "x3d_m"]
# The image Mobile-Former per frame, at the clip of the VMF built on it (8 frames, 160 / 224 px).
PER_FRAME = [("mobileformer_52m", 160), ("mobileformer_96m", 160), ("mobileformer_151m", 224)]


def _candidates(skip_dualformer: bool):
    for name in VIDEO_MODELS + ([] if skip_dualformer else ["dualformer_t"]):
        card = effvid.get_model_card(name)
        yield name, effvid.create_model(name), card.batch_shape
    for name, size in PER_FRAME:

        def shape(batch, size=size):
            return (batch, 3, 8, size, size)

        yield f"{name} per frame", PerFrame(effvid.create_model(name)), shape


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--skip-dualformer", action="store_true")
    args = parser.parse_args()
    print("| model | input (1 view) | params (M) | GFLOPs/view | eager b1 ms | eager b8 clips/s "
          "| ORT b1 ms | ORT speed-up | peak mem b1 (MB) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, model, shape in _candidates(args.skip_dualformer):
        torch.manual_seed(0)
        model.eval()
        heavy = "dualformer" in name
        runs = 3 if heavy else args.runs
        flops = effvid.count_flops(model, shape(1)).total
        eager = benchmark_model(model, shape(1), name=name, threads=args.threads, runs=runs)
        batch8 = benchmark_model(
            model, shape(8), name=name, threads=args.threads, warmup=1, runs=max(2, runs // 3)
        )
        ort = benchmark_model(
            model, shape(1), name=name, runtime="onnxruntime", threads=args.threads, runs=runs
        )
        input_text = "x".join(map(str, shape(1)[2:]))
        memory = "" if eager.peak_memory_mb is None else f"{eager.peak_memory_mb:.0f}"
        print(
            f"| {name} | {input_text} | {effvid.count_params(model) / 1e6:.2f} | "
            f"{flops / 1e9:.3f} | {eager.median_ms:.1f} | {batch8.clips_per_s:.1f} | "
            f"{ort.median_ms:.1f} | {eager.median_ms / ort.median_ms:.2f}x | {memory} |",
            flush=True,
        )
    print(f"\n{eager.environment}")


if __name__ == "__main__":
    main()
