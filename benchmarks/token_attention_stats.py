"""Where a trained VMF's global tokens look, in numbers, over many test videos.

    python benchmarks/token_attention_stats.py CHECKPOINT [--model vmf_xxs] [--videos 60]

CHECKPOINT is a VMF trained on the demo data (e.g. a run of benchmarks/ablations.py); its
recipe's demo dataset is read. For each Mobile->Former bridge, over the first `--videos` test
videos (centre clip, as `effvid explain` shows them), prints:
- how alike the tokens' maps are: the mean Pearson correlation between the maps of every pair
  of tokens (1 = the tokens look at exactly the same places);
- where the attention mass lies in time: the share of each frame (uniform = 1/T each).
"""

import argparse
import itertools
from pathlib import Path

import torch

from effvid.data import open_video
from effvid.engine import recipe_data
from effvid.engine.predictor import Predictor
from effvid.engine.training_checkpoint import read_training_checkpoint
from effvid.explain import token_attention


def _pairwise_correlation(maps: torch.Tensor) -> float:
    """maps (M, positions) -> mean Pearson correlation over token pairs (nan for one token)."""
    pairs = list(itertools.combinations(range(maps.shape[0]), 2))
    if not pairs:
        return float("nan")
    return sum(torch.corrcoef(maps[list(p)])[0, 1].item() for p in pairs) / len(pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--model", default="vmf_xxs")
    parser.add_argument("--videos", type=int, default=60)
    args = parser.parse_args()
    config = read_training_checkpoint(args.checkpoint)["config"]
    test = recipe_data.read_split(recipe_data.demo_data_section(config["data"]), "test")
    predictor = Predictor(args.model, args.checkpoint)
    correlation: dict[str, list[float]] = {}
    frame_mass: dict[str, torch.Tensor] = {}
    grids: dict[str, str] = {}
    for record in test.records[: args.videos]:
        with open_video(record.path, short_side=predictor.preprocessing.short_side) as reader:
            clip = predictor.read_clip(reader, predictor.centre_indices(reader))
        _, bridges = token_attention(predictor.network, clip[None])
        for bridge in bridges:
            weights = bridge.weights[0]  # (M, T, H, W)
            grids[bridge.name] = "x".join(map(str, weights.shape[1:]))
            correlation.setdefault(bridge.name, []).append(
                _pairwise_correlation(weights.flatten(1))
            )
            mass = weights.sum(dim=(2, 3)).mean(dim=0)  # (T,)
            frame_mass[bridge.name] = frame_mass.get(bridge.name, 0) + mass / args.videos
    frames = next(iter(frame_mass.values())).numel()
    print(f"{args.model}, {args.checkpoint}, {args.videos} test videos; uniform = {1 / frames:.3f}")
    header = " | ".join(f"t={t}" for t in range(frames))
    print(f"| bridge | T x H x W | token-map correlation | {header} |")
    print("|---|---|---|" + "---|" * frames)
    for name, values in correlation.items():
        shares = " | ".join(f"{share:.3f}" for share in frame_mass[name].tolist())
        mean = sum(values) / len(values)
        print(f"| {name} | {grids[name]} | {mean:.2f} | {shares} |")


if __name__ == "__main__":
    main()
