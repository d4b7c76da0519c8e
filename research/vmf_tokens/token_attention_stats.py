"""How distinct a trained VMF's global tokens are, module by module, and where they look in
time, over many test videos.

    python research/vmf_tokens/token_attention_stats.py CHECKPOINT [CHECKPOINT ...] [--videos 60]

Each CHECKPOINT is an effvid run's checkpoint of a VMF trained on demo data (e.g.
`runs/study/global/vmf_xxs/lr0.0004_seed0/last.pth`); its recipe's demo dataset is read. On the
centre clip of each of the first `--videos` test videos (as `effvid predict` and `effvid
explain` read them), prints the measures of `effvid.explain.diversity`:
- after every module that updates the tokens, the mean pairwise cosine similarity of the tokens
  (1: one token repeated);
- per Mobile->Former bridge, the mean pairwise correlation of the tokens' attention maps (1: all
  tokens look at the same places), and the share of attention on each frame (uniform: 1/T);
- per Former, how it mixes the tokens (`former_mixing`): the weight each token gives itself, how
  often every token's attention favours the same token (per clip and head), how far apart the
  attended vectors are against the tokens it was given (mean distance to their mean), and how
  large its attention update is against the tokens.
"""

import argparse
from pathlib import Path

import register  # noqa: F401  (the study's tasks, arms and remedies)
import torch
from remedies import former_reading

from effvid.data import open_video
from effvid.explain import token_attention
from effvid.explain.diversity import token_diversity
from effvid.inference.predictor import Predictor
from effvid.models.layers.attention import channel_split_attention, channel_split_attention_weights
from effvid.models.layers.tokens import is_per_frame, mean_pairwise_cosine
from effvid.models.mobile_former import Former
from effvid.train import recipe_data
from effvid.train.training_checkpoint import read_training_checkpoint


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


def _spread(tokens: torch.Tensor) -> float:
    """(B, M, D) -> the mean distance of a token to its set's mean token, over the mean token
    norm; 0 under 1e-5 (tokens equal but for rounding)."""
    distance = (tokens - tokens.mean(dim=1, keepdim=True)).norm(dim=-1).mean()
    relative = float(distance / tokens.norm(dim=-1).mean().clamp_min(1e-12))
    return relative if relative > 1e-5 else 0.0


@torch.no_grad()
def former_mixing(network: torch.nn.Module, clips: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per Former of a model with one token set per clip: the mean weight of a token on itself,
    the share of (clip, head) whose every token favours the same token, the spread of the
    attended vectors over the spread of the tokens, the size of the attention's update against
    the tokens', and the token cosine before and after."""
    measures: dict[str, dict[str, float]] = {}

    def measure(name: str):
        def hook(module: Former, args: tuple, output: torch.Tensor) -> None:
            (tokens,) = args
            if is_per_frame(tokens):
                return
            read, keys = former_reading(module, tokens)
            queries = module.q(keys)
            weights = channel_split_attention_weights(queries, keys, module.num_heads)
            favoured = weights.argmax(dim=-1)  # (B, heads, M)
            attended = channel_split_attention(queries, keys, read, module.num_heads)
            measures[name] = {
                "self weight": float(weights.diagonal(dim1=-2, dim2=-1).mean()),
                "one favoured": float((favoured == favoured[..., :1]).all(-1).float().mean()),
                "attended spread / token spread": _spread(attended) / (_spread(read) or 1.0),
                "update / token norm": float(
                    module.channel_mlp(attended).norm(dim=-1).mean() / tokens.norm(dim=-1).mean()
                ),
                "cosine in": float(mean_pairwise_cosine(tokens)),
                "cosine out": float(mean_pairwise_cosine(output)),
            }

        return hook

    formers = [(n, m) for n, m in network.named_modules() if isinstance(m, Former)]
    handles = [module.register_forward_hook(measure(name)) for name, module in formers]
    try:
        network.eval()(clips)
    finally:
        for handle in handles:
            handle.remove()
    return measures


def report(checkpoint: Path, videos: int) -> str:
    predictor = Predictor(None, checkpoint)
    clips = centre_clips(checkpoint, predictor, videos)
    diversity = token_diversity(predictor.model.network, clips)
    _, bridges = token_attention(predictor.model.network, clips)
    frames = bridges[0].weights.shape[2]
    lines = [
        f"{checkpoint} ({predictor.model.network.model_name}), {len(clips)} test videos",
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
    mixing = former_mixing(predictor.model.network, clips)
    if mixing:
        columns = list(next(iter(mixing.values())))
        lines += ["", "| Former | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for name, values in mixing.items():
            lines.append(f"| {name} | " + " | ".join(f"{values[c]:.2f}" for c in columns) + " |")
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
