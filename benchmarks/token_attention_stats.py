"""How distinct a trained VMF's global tokens are, module by module, and where they look in
time, over many test videos.

    python benchmarks/token_attention_stats.py CHECKPOINT [CHECKPOINT ...] [--videos 60]

Each CHECKPOINT is an effvid run's checkpoint of a VMF trained on demo data (e.g.
`runs/study/global/vmf_xxs/lr0.0004_seed0/last.pth`); its recipe's demo dataset is read. On the
centre clip of each of the first `--videos` test videos (as `effvid predict` and `effvid
explain` read them), prints the measures of `effvid.explain.diversity`:
- after every module that updates the tokens, the mean pairwise cosine similarity of the tokens
  (1: one token repeated);
- per Mobile->Former bridge, the mean pairwise correlation of the tokens' attention maps (1: all
  tokens look at the same places), and the share of attention on each frame (uniform: 1/T).
"""

import argparse
from pathlib import Path

import torch

from effvid.data import open_video
from effvid.engine import recipe_data
from effvid.engine.predictor import Predictor
from effvid.engine.training_checkpoint import read_training_checkpoint
from effvid.explain import token_attention
from effvid.explain.diversity import token_diversity


def centre_clips(checkpoint: Path, predictor: Predictor, videos: int) -> torch.Tensor:
    """The centre clips of the first `videos` test videos of the run's demo data:
    (N, 3, T, S, S)."""
    config = read_training_checkpoint(checkpoint).config
    test = recipe_data.read_split(recipe_data.demo_data_section(config["data"]), "test")
    clips = []
    for record in test.records[:videos]:
        with open_video(record.path, short_side=predictor.preprocessing.short_side) as reader:
            clips.append(predictor.clips.clip(reader))
    return torch.stack(clips)


def report(checkpoint: Path, videos: int) -> str:
    predictor = Predictor(None, checkpoint)
    clips = centre_clips(checkpoint, predictor, videos)
    diversity = token_diversity(predictor.network, clips)
    _, bridges = token_attention(predictor.network, clips)
    frames = bridges[0].weights.shape[2]
    lines = [
        f"{checkpoint} ({predictor.network.model_name}), {len(clips)} test videos",
        "",
        "| module | token cosine | attention correlation | "
        + " | ".join(f"t={t}" for t in range(frames))
        + " |",
        "|---|---|---|" + "---|" * frames,
    ]
    mass = {b.name: b.weights.sum(dim=(3, 4)).mean(dim=(0, 1)).tolist() for b in bridges}
    for name, cosine in diversity.token_cosine.items():
        correlation = diversity.attention_correlation.get(name)
        cells = [f"{cosine:.2f}", "-" if correlation is None else f"{correlation:.2f}"]
        shares = mass.get(name)
        cells += [f"{share:.2f}" for share in shares] if shares else [""] * frames
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--videos", type=int, default=60)
    args = parser.parse_args()
    for checkpoint in args.checkpoints:
        print(report(checkpoint, args.videos) + "\n")


if __name__ == "__main__":
    main()
