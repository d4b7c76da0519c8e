"""`effvid explain`: what a trained model looks at in one video, as pictures.

The clip is the one `effvid predict` would read in the middle of the video (the checkpoint's
preprocessing, centre crop). Two methods:

- `tokens` (Video Mobile-Former, Mobile-Former): for each global token, its Mobile->Former
  attention over the clip's T x H x W positions, from one bridge or averaged over all of them.
- `grad-cam` (any model, e.g. DualFormer, X3D, or a VMF without tokens): the Grad-CAM of the last
  stage for the predicted (or a chosen) class.

`Explanation.save` writes an animation (the frames and one heat-map panel per map, side by side,
one animation frame per clip frame) and a PNG grid (one row per map, one column per frame).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effvid.data import open_video
from effvid.errors import InputError
from effvid.explain.maps import bridge_names, grad_cam, to_clip_size, token_attention
from effvid.explain.render import overlay, panels_side_by_side, write_animation, write_grid
from effvid.inference.predictor import Predictor
from effvid.models.mobile_former import MobileFormer

METHODS = ("auto", "tokens", "grad-cam")


@dataclass
class Explanation:
    """Maps over one clip. `frames`: (T, H, W, 3) uint8, what the model saw (before
    normalisation); `maps`: title -> (T, H, W) map summing to 1 over the clip."""

    video: str
    method: str
    source: str  # which bridge(s) or layer the maps come from
    label: str
    score: float
    frames: np.ndarray
    maps: dict[str, torch.Tensor]

    @property
    def title(self) -> str:
        name = Path(self.video).name
        return f"{name}: {self.label} ({self.score:.2f}); {self.method}, {self.source}"

    def save(self, out: str | Path, animation: str = "gif", fps: float = 4.0) -> list[Path]:
        """Write `<video>_<method>.<gif|mp4>` and `<video>_<method>.png` into folder `out`."""
        out = Path(out)
        stem = f"{Path(self.video).stem}_{self.method}"
        panels = [self.frames, *(overlay(self.frames, heat) for heat in self.maps.values())]
        titles = ["frames", *self.maps]
        return [
            write_animation(panels_side_by_side(panels, titles), out / f"{stem}.{animation}", fps),
            write_grid(panels, titles, out / f"{stem}.png", self.title),
        ]


def _display_frames(clip: torch.Tensor, mean, std) -> np.ndarray:
    """Normalised (3, T, H, W) -> (T, H, W, 3) uint8."""
    mean = torch.tensor(mean).view(3, 1, 1, 1)
    std = torch.tensor(std).view(3, 1, 1, 1)
    pixels = (clip * std + mean).clamp(0.0, 1.0) * 255.0
    return pixels.round().byte().permute(1, 2, 3, 0).numpy()


def _class_index(target: str | int | None, class_names: list[str], num_classes: int) -> int | None:
    """The index of `target` (a class name or index), checked; None stays None."""
    if target is None:
        return None
    if isinstance(target, str) and target in class_names:
        return class_names.index(target)
    is_index = isinstance(target, int) or target.isdigit()
    if is_index and 0 <= int(target) < num_classes:
        return int(target)
    known = ", ".join(class_names) if class_names else f"indices 0..{num_classes - 1}"
    raise InputError(f"unknown class {target!r}; the checkpoint's classes: {known}")


def _token_maps(
    network: MobileFormer, clip: torch.Tensor, bridge: str | int
) -> tuple[torch.Tensor, dict[str, torch.Tensor], str]:
    logits, bridges = token_attention(network, clip[None])
    size = tuple(clip.shape[1:])
    if bridge == "mean":
        per_bridge = torch.stack([to_clip_size(b.weights[0], size) for b in bridges])
        maps, source = per_bridge.mean(dim=0), f"mean of {len(bridges)} bridges"
    else:
        try:
            chosen = bridges[int(bridge)]
        except (IndexError, ValueError):
            raise InputError(
                f"bridge must be 'mean' or an index from {-len(bridges)} to {len(bridges) - 1} "
                f"(the model's bridges: {', '.join(b.name for b in bridges)}), got {bridge!r}"
            ) from None
        grid = "x".join(map(str, chosen.weights.shape[2:]))
        maps, source = to_clip_size(chosen.weights[0], size), f"bridge {chosen.name} ({grid})"
    return logits, {f"token {m}": maps[m] for m in range(maps.shape[0])}, source


def explain_video(
    video: str | Path,
    model: str | None,
    checkpoint: str | Path,
    *,
    method: str = "auto",
    bridge: str | int = "mean",
    target: str | int | None = None,
) -> Explanation:
    """Explain the trained `model` (registered name; None: the one the checkpoint names) from
    `checkpoint` on the centre clip of `video`. `method`: 'auto' (tokens when the model has
    global tokens, else Grad-CAM), 'tokens' or 'grad-cam'; `bridge`: 'mean' or a bridge index
    (tokens); `target`: the class (name or index) Grad-CAM explains and the pictures are
    titled with, default the predicted one (token attention does not depend on a class)."""
    if method not in METHODS:
        raise InputError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    predictor = Predictor(model, checkpoint)
    network = predictor.model.network  # eager: explanations need the PyTorch model
    with open_video(video, short_side=predictor.preprocessing.short_side) as reader:
        clip = predictor.clips.clip(reader)
    has_tokens = bool(bridge_names(network))
    if method == "auto":
        method = "tokens" if has_tokens else "grad-cam"
    target_index = _class_index(target, predictor.class_names, network.num_classes)
    if method == "tokens":
        if not has_tokens:
            name = network.model_name
            raise InputError(f"{name} has no global tokens to show: use method 'grad-cam'")
        logits, maps, source = _token_maps(network, clip, bridge)
    else:
        logits, cam = grad_cam(network, clip[None], target_index)
        maps = {"Grad-CAM": to_clip_size(cam[0], tuple(clip.shape[1:]))}
        source = "last stage"
    probabilities = logits[0].softmax(dim=0)
    shown = int(probabilities.argmax()) if target_index is None else target_index
    prep = predictor.preprocessing
    return Explanation(
        video=str(video),
        method=method,
        source=source,
        label=predictor.info.class_name(shown),
        score=float(probabilities[shown]),
        frames=_display_frames(clip, prep.mean, prep.std),
        maps=maps,
    )
