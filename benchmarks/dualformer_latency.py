"""CPU latency of effvid's DualFormer against the same model computing attention the official
way (explicit softmax(q k^T * scale) v, materialising the attention matrix), same weights, same
process, interleaved runs.

    python benchmarks/dualformer_latency.py [--model dualformer_t] [--frames 32] [--runs 7]

Prints a Markdown row for benchmarks/RESULTS.md.
"""

import argparse
import copy
import platform
import statistics

import torch

import effvid
from effvid.deploy.benchmark import interleaved_times
from effvid.models.dualformer import GlobalPyramidAttention, LocalWindowAttention


def naive_attend(self, q, k, v):
    """The official code's attention: scores, softmax, (dropout), weighted sum."""
    attn = (q @ k.transpose(-2, -1)) * self.scale
    return attn.softmax(dim=-1) @ v


class OfficialLocalWindowAttention(LocalWindowAttention):
    attend = naive_attend


class OfficialGlobalPyramidAttention(GlobalPyramidAttention):
    attend = naive_attend


def official_style(model: torch.nn.Module) -> torch.nn.Module:
    naive = copy.deepcopy(model)
    for module in naive.modules():
        if type(module) is LocalWindowAttention:
            module.__class__ = OfficialLocalWindowAttention
        elif type(module) is GlobalPyramidAttention:
            module.__class__ = OfficialGlobalPyramidAttention
    return naive


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="dualformer_t")
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model = effvid.create_model(args.model).eval()
    naive = official_style(model)
    clip = torch.randn(1, 3, args.frames, 224, 224)
    with torch.inference_mode():
        difference = (model(clip) - naive(clip)).abs().max().item()
        candidates = {"effvid": lambda: model(clip), "official-style": lambda: naive(clip)}
        times = interleaved_times(candidates, args.runs)  # milliseconds
    ours, theirs = (statistics.median(times[k]) / 1000 for k in ("effvid", "official-style"))
    print(
        f"machine: {platform.processor() or platform.machine()}, {args.threads} threads, "
        f"torch {torch.__version__}; input 1x3x{args.frames}x224x224; {args.runs} runs each"
    )
    print(f"max |logits difference| = {difference:.2e}")
    for name, values in times.items():
        print(
            f"{name:>15}: median {statistics.median(values):.3f} s "
            f"(min {min(values):.3f}, max {max(values):.3f})"
        )
    print(
        f"| {args.model} | 1x3x{args.frames}x224x224 | {ours:.2f} s | {theirs:.2f} s | "
        f"{theirs / ours:.2f}x | {difference:.1e} |"
    )


if __name__ == "__main__":
    main()
