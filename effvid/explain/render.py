"""Heat maps over video frames: colour overlays, an animation (GIF or MP4) and a PNG grid.

Frames are (T, H, W, 3) uint8 RGB; maps are (T, H, W) non-negative floats of the same size.
Each map is shown relative to its own maximum over the whole clip, so that where a token looks
*over time* stays comparable from frame to frame.
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from effvid.errors import InputError

PANEL_SIDE = 160  # pixels: demo clips are 56 px, upscaled so that the pictures are readable


HEAT_COLOURS = "inferno"  # perceptually uniform, dark to bright yellow


def overlay(frames: np.ndarray, heat: torch.Tensor, strength: float = 0.9) -> np.ndarray:
    """Paint a heat map (T, H, W) over frames (T, H, W, 3) -> uint8 frames.

    The frames are shown in dimmed grey, so that the colour is the heat alone: each map relative
    to its maximum over the clip, coloured by `HEAT_COLOURS` and opaque in proportion to the
    square root of its value (low attention stays visible, none leaves the grey frame)."""
    import matplotlib

    scaled = (heat / heat.max().clamp_min(1e-12)).numpy()
    grey = frames.mean(axis=-1, keepdims=True) * 0.55
    colours = matplotlib.colormaps[HEAT_COLOURS](scaled)[..., :3] * 255.0
    weight = strength * scaled[..., None] ** 0.5
    return (grey * (1.0 - weight) + colours * weight).round().astype(np.uint8)


def panels_side_by_side(
    panels: Sequence[np.ndarray], titles: Sequence[str], gap: int = 4
) -> np.ndarray:
    """Panels (T, H, W, 3) each -> (T, header + H', n * W' + gaps, 3): upscaled to about
    `PANEL_SIDE`, side by side, each titled, with the frame number on the first panel."""
    from PIL import Image, ImageDraw

    frames, height, width, _ = panels[0].shape
    scale = max(1, round(PANEL_SIDE / max(height, width)))
    size = (width * scale, height * scale)
    header = 14
    canvas_size = (len(panels) * (size[0] + gap) - gap, header + size[1])
    animation = []
    for t in range(frames):
        canvas = Image.new("RGB", canvas_size, "white")
        draw = ImageDraw.Draw(canvas)
        for index, (panel, title) in enumerate(zip(panels, titles, strict=True)):
            left = index * (size[0] + gap)
            image = Image.fromarray(panel[t]).resize(size, Image.Resampling.NEAREST)
            canvas.paste(image, (left, header))
            label = f"{title}  t={t}" if index == 0 else title
            draw.text((left + 2, 1), label, fill="black")
        animation.append(np.asarray(canvas))
    return np.stack(animation)


def write_animation(frames: np.ndarray, path: str | Path, fps: float = 4.0) -> Path:
    """Write (T, H, W, 3) uint8 frames as an animated GIF (looping) or an H.264 MP4."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".gif":
        from PIL import Image

        images = [Image.fromarray(frame) for frame in frames]
        images[0].save(
            path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0
        )
    elif path.suffix.lower() == ".mp4":
        _write_mp4(frames, path, fps)
    else:
        raise InputError(f"animation format of {path.name!r} unknown: use .gif or .mp4")
    return path


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    from fractions import Fraction

    import av

    even = frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2]  # yuv420p
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.height, stream.width = even.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in even:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_grid(
    rows: Sequence[np.ndarray], row_titles: Sequence[str], path: str | Path, title: str = ""
) -> Path:
    """A PNG with one row per panel (T, H, W, 3) and one column per frame."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frames = rows[0].shape[0]
    figure, axes = plt.subplots(
        len(rows), frames, figsize=(1.9 * frames + 1.6, 1.9 * len(rows) + 0.8), squeeze=False
    )
    for r, (panel, name) in enumerate(zip(rows, row_titles, strict=True)):
        for t in range(frames):
            axes[r, t].imshow(panel[t], interpolation="nearest")
            axes[r, t].set_xticks([])
            axes[r, t].set_yticks([])
            if r == 0:
                axes[r, t].set_title(f"t={t}", fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=9, rotation=0, ha="right", va="center")
    if len(rows) > 1:  # heat rows: the colour scale, as a share of each map's clip maximum
        scale = matplotlib.cm.ScalarMappable(cmap=HEAT_COLOURS)
        bar = figure.colorbar(scale, ax=axes[1:, :].ravel().tolist(), fraction=0.015, pad=0.01)
        bar.set_label("share of the map's maximum", fontsize=8)
    figure.suptitle(title, fontsize=10)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path
