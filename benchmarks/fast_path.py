"""Eager CPU latency of the models whose forward pass we optimise, for before/after records.

    python benchmarks/fast_path.py [--runs 15] [--threads 2] [MODEL ...]

Batch 1, each model at its model card's input, `torch.inference_mode()`, fp32; prints a Markdown
table. Run it on the commit before and after a change, on the same machine, back to back.
"""

import argparse

import torch

import effvid
from effvid.deploy.benchmark import benchmark_model

DEFAULT_MODELS = ["vmf_xxs", "vmf_xs", "vmf_s", "mobileformer_294m", "x3d_xs", "dualformer_t"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print("| model | input | median ms | min ms | IQR ms |")
    print("|---|---|---|---|---|")
    for name in args.models:
        card = effvid.get_model_card(name)
        torch.manual_seed(0)
        runs = max(3, args.runs // 5) if card.family == "dualformer" else args.runs
        result = benchmark_model(
            effvid.create_model(name),
            card.input_shape,
            name=name,
            threads=args.threads,
            warmup=2,
            runs=runs,
        )
        shape = "x".join(map(str, card.input_shape[1:]))
        print(
            f"| {name} | {shape} | {result.median_ms:.1f} | {result.min_ms:.1f} | "
            f"{result.iqr_ms:.1f} |",
            flush=True,
        )
    print(f"\n{result.environment}")


if __name__ == "__main__":
    main()
