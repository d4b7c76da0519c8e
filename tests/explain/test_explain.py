"""effvid explain: token attention maps, Grad-CAM, and the pictures written from a real video."""

from pathlib import Path

import av
import pytest
import torch
from PIL import Image

from effvid import create_model
from effvid.cli import main
from effvid.explain import bridge_names, explain_video, grad_cam, to_clip_size, token_attention
from effvid.models.layers import channel_split_attention, channel_split_attention_weights

FRAMES, SIZE = 4, 32
# A DualFormer that takes the tiny videos' 4x32x32 clips: 2x4x4 patches, then 2x8x8 ... 2x1x1
# tokens; every second block attends to all tokens of its stage.
TINY_DUALFORMER = dict(
    video_size=(FRAMES, SIZE, SIZE),
    embed_dims=(16, 32, 64, 128),
    num_heads=(1, 1, 2, 4),
    depths=(2, 2, 2, 2),
    local_sizes=((2, 4, 4),) * 4,
    fine_pysizes=((2, 8, 8), (2, 4, 4), (2, 2, 2), (2, 1, 1)),
)


def _clip(batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, FRAMES, SIZE, SIZE, generator=torch.Generator().manual_seed(0))


def test_attention_weights_are_those_the_attention_applies():
    generator = torch.Generator().manual_seed(0)
    query, key, value = (torch.randn(2, n, 8, generator=generator) for n in (3, 20, 20))
    weights = channel_split_attention_weights(query, key, num_heads=2)
    assert weights.shape == (2, 2, 3, 20)
    heads = [weights[:, h] @ value[..., 4 * h : 4 * h + 4] for h in range(2)]
    expected = channel_split_attention(query, key, value, num_heads=2)
    torch.testing.assert_close(torch.cat(heads, dim=-1), expected)


@pytest.mark.parametrize("num_tokens, per_frame", [(1, False), (6, False), (3, True)])
def test_token_attention_is_a_distribution_over_positions_per_token(num_tokens, per_frame):
    torch.manual_seed(0)
    model = create_model(
        "vmf_xxs", num_classes=5, num_tokens=num_tokens, tokens_per_frame=per_frame
    ).eval()
    clip = _clip()
    logits, bridges = token_attention(model, clip)
    torch.testing.assert_close(logits, model(clip))  # recording changes nothing
    assert [b.name for b in bridges] == bridge_names(model)
    assert bridges[-1].name == "local_global" and len(bridges) == 9  # 8 blocks + the final one
    for bridge in bridges:
        assert bridge.weights.shape[:3] == (2, num_tokens, FRAMES)
        sums = bridge.weights.flatten(2).sum(dim=-1)
        torch.testing.assert_close(sums, torch.ones_like(sums))
        assert (bridge.weights >= 0).all()
    resized = to_clip_size(bridges[-1].weights, (FRAMES, SIZE, SIZE))
    assert resized.shape == (2, num_tokens, FRAMES, SIZE, SIZE)
    torch.testing.assert_close(resized.flatten(2).sum(-1), torch.ones(2, num_tokens))


def test_token_attention_needs_tokens():
    model = create_model("vmf_xxs", num_classes=5, global_branch=False).eval()
    with pytest.raises(ValueError, match="no Mobile->Former bridge"):
        token_attention(model, _clip())


def test_grad_cam_of_dualformer_last_stage():
    torch.manual_seed(0)
    model = create_model("dualformer_t", num_classes=5, **TINY_DUALFORMER)
    logits, cam = grad_cam(model, _clip(), target=3)
    assert logits.shape == (2, 5) and model.training  # the mode is restored
    assert cam.shape == (2, FRAMES // 2, 1, 1)
    assert (cam >= 0).all()
    torch.testing.assert_close(cam.flatten(1).sum(-1), torch.ones(2))
    assert all(p.grad is None for p in model.parameters())


def _checkpoint(path: Path, model_name: str, args: dict, videos: Path) -> Path:
    """A training-style checkpoint of an untrained model, as `effvid train` writes them."""
    torch.manual_seed(0)
    classes = (videos / "classes.txt").read_text().split()
    model = create_model(model_name, num_classes=len(classes), **args)
    preprocessing = dict(
        num_frames=FRAMES, sampling_rate=2, crop_size=SIZE, short_side=SIZE, mean=[0.5] * 3,
        std=[0.25] * 3, sampling="dense",
    )  # fmt: skip
    content = {
        "model": model.state_dict(),
        "class_names": classes,
        "preprocessing": preprocessing,
        "config": {"model": {"name": model_name, "args": args}},
    }
    torch.save(content, path)
    return path


def _gif_frames(path: Path) -> int:
    with Image.open(path) as image:
        return image.n_frames


@pytest.mark.parametrize(
    "model_name, args, method, panels",
    [
        ("vmf_xxs", {}, "tokens", 1 + 3),  # frames + one panel per token
        ("dualformer_t", TINY_DUALFORMER, "grad-cam", 1 + 1),
    ],
)
def test_explain_command_writes_pictures_of_every_frame(
    tiny_videos, tmp_path, capsys, model_name, args, method, panels
):
    checkpoint = _checkpoint(tmp_path / "model.pth", model_name, args, tiny_videos)
    video = tiny_videos / "videos" / "test" / "00000.mp4"
    out = tmp_path / "pictures"
    command = ["explain", str(video), "--model", model_name, "--checkpoint", str(checkpoint)]
    assert main([*command, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{method}" in printed
    gif, png = out / f"00000_{method}.gif", out / f"00000_{method}.png"
    assert _gif_frames(gif) == FRAMES
    with Image.open(gif) as image:
        assert image.width > panels * 2 * SIZE  # panels side by side, upscaled
    with Image.open(png) as image:
        assert image.width > 100 and image.height > 100

    assert main([*command, "--out", str(out), "--format", "mp4"]) == 0
    with av.open(str(out / f"00000_{method}.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == FRAMES


def test_explain_api_per_bridge_and_errors(tiny_videos, tmp_path, capsys):
    checkpoint = _checkpoint(tmp_path / "vmf.pth", "vmf_xxs", {"num_tokens": 2}, tiny_videos)
    video = tiny_videos / "videos" / "test" / "00001.mp4"
    last = explain_video(video, "vmf_xxs", checkpoint, bridge=-1)
    assert last.source.startswith("bridge local_global") and list(last.maps) == [
        "token 0",
        "token 1",
    ]
    for heat in last.maps.values():
        assert heat.shape == (FRAMES, SIZE, SIZE)
        torch.testing.assert_close(heat.sum(), torch.tensor(1.0))
    assert last.frames.shape == (FRAMES, SIZE, SIZE, 3)
    cam = explain_video(video, "vmf_xxs", checkpoint, method="grad-cam", target=last.label)
    assert cam.label == last.label and list(cam.maps) == ["Grad-CAM"]

    with pytest.raises(ValueError, match="bridge must be 'mean' or an index from -9 to 8"):
        explain_video(video, "vmf_xxs", checkpoint, bridge=9)
    with pytest.raises(ValueError, match="unknown class 'juggling'"):
        explain_video(video, "vmf_xxs", checkpoint, method="grad-cam", target="juggling")
    dualformer = _checkpoint(tmp_path / "df.pth", "dualformer_t", TINY_DUALFORMER, tiny_videos)
    command = ["explain", str(video), "--model", "dualformer_t", "--checkpoint", str(dualformer)]
    assert main([*command, "--method", "tokens", "--out", str(tmp_path)]) == 2
    assert "has no global tokens" in capsys.readouterr().err
