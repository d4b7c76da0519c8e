"""Transforms: one draw of random parameters per clip, uint8 until the end, label-aware flips."""

import pytest
import torch

from effvid.data import (
    ColorJitter,
    EvalTransform,
    MixupCutmix,
    RandAugment,
    TrainTransform,
    crop_view,
    soft_target_cross_entropy,
    video_ops,
)
from effvid.data.randaugment import OPERATIONS
from effvid.data.transforms import normalize


def _still_clip(frames: int = 4, height: int = 60, width: int = 80) -> torch.Tensor:
    """uint8 (T, H, W, 3): the same random picture in every frame."""
    picture = torch.randint(
        0, 256, (1, height, width, 3), generator=torch.Generator().manual_seed(0)
    )
    return picture.to(torch.uint8).expand(frames, -1, -1, -1).contiguous()


def _all_frames_equal(clip: torch.Tensor, time_dim: int) -> bool:
    frames = clip.unbind(time_dim)
    return all(torch.equal(frames[0], frame) for frame in frames[1:])


@pytest.mark.parametrize("scale_jitter", [None, (64, 96)])
def test_train_transform_applies_the_same_parameters_to_every_frame(scale_jitter):
    transform = TrainTransform(
        crop_size=48,
        scale_jitter=scale_jitter,
        color_jitter=ColorJitter(p=1.0),
        randaugment=RandAugment(num_ops=3, magnitude=15),
    )
    for seed in range(10):
        torch.manual_seed(seed)
        clip, _ = transform(_still_clip(), 0)
        assert clip.shape == (3, 4, 48, 48) and clip.dtype == torch.float32
        assert _all_frames_equal(clip, 1)


def test_horizontal_flip_maps_labels_or_is_off():
    frames = _still_clip()
    generator = torch.Generator().manual_seed(0)
    transform = TrainTransform(
        crop_size=60,
        area=(1.0, 1.0),
        aspect_ratio=(4 / 3, 4 / 3),
        flip_label_map={3: 4, 4: 3},
        generator=generator,
    )
    labels = {transform(frames, 3)[1] for _ in range(20)}
    assert labels == {3, 4}
    transform = TrainTransform(
        crop_size=60, area=(1.0, 1.0), aspect_ratio=(4 / 3, 4 / 3), flip=False
    )
    unflipped = {transform(frames, 3)[0].sum().item() for _ in range(10)}
    assert len(unflipped) == 1  # no randomness left: full-frame crop, no flip


def test_flipped_clip_is_the_mirror_image():
    frames = torch.arange(5, dtype=torch.uint8).view(1, 1, 5, 1).expand(2, 4, 5, 3).contiguous()
    transform = TrainTransform(
        crop_size=4,
        area=(1, 1),
        aspect_ratio=(1, 1),
        flip_label_map={0: 1},
        mean=(0,) * 3,
        std=(1 / 255,) * 3,
    )
    for _ in range(10):
        clip, label = transform(frames, 0)
        row = clip[0, 0, 0].tolist()
        assert row in ([0, 1, 2, 3], [1, 2, 3, 4], [3, 2, 1, 0], [4, 3, 2, 1])
        assert (row[0] > row[-1]) == (label == 1)


def test_eval_transform_and_normalisation():
    clip, label = EvalTransform(short_side=30, mean=(0.5,) * 3, std=(0.25,) * 3)(_still_clip(), 7)
    assert clip.shape == (3, 4, 30, 40) and label == 7
    frames = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    assert torch.allclose(
        normalize(frames, (0.5, 0.5, 0.5), (0.25, 0.5, 1.0))[:, 0, 0, 0],
        torch.tensor([2.0, 1.0, 0.5]),
    )


def test_crop_views():
    clip = torch.arange(60 * 80, dtype=torch.float32).view(1, 1, 60, 80)
    left, centre, right = (crop_view(clip, 60, view, 3) for view in range(3))
    assert left[..., 0, 0].item() == 0 and centre[..., 0, 0].item() == 10
    assert right[..., 0, -1].item() == 79
    tall = clip.transpose(-1, -2)
    assert crop_view(tall, 60, 2, 3)[..., -1, 0].item() == tall[..., -1, 0].item()
    ten = [crop_view(clip, 40, view, 10) for view in range(10)]
    assert len({tuple(view.flatten().tolist()) for view in ten}) == 10
    assert torch.equal(ten[6], ten[1].flip(-1))
    with pytest.raises(ValueError, match="1, 3 or 10"):
        crop_view(clip, 40, 0, 5)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_every_randaugment_operation_keeps_uint8_and_frame_consistency(name):
    frames = video_ops.frames_first(_still_clip())
    operation, top, _ = OPERATIONS[name]
    out = operation(frames, top * 0.5)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert _all_frames_equal(out, 0)
    if name not in ("identity", "equalize", "autocontrast"):
        assert not torch.equal(out, frames), name


def test_rotation_turns_counter_clockwise():
    frames = torch.zeros(1, 1, 21, 21, dtype=torch.uint8)
    frames[..., 10, 15:] = 255  # a bar to the right of the centre
    turned = video_ops.affine(frames, angle=90)
    assert turned[0, 0, :6, 10].float().mean() > 100  # now above the centre
    assert turned[0, 0, 10, 15:].float().mean() < 50


def test_colour_statistics_are_clip_wide():
    frames = torch.stack([torch.full((3, 8, 8), 40), torch.full((3, 8, 8), 200)]).to(torch.uint8)
    stretched = video_ops.autocontrast(frames)
    assert stretched[0].max() == 0 and stretched[1].min() == 255
    contrasted = video_ops.adjust_contrast(frames, 0.0)
    assert torch.equal(contrasted[0], contrasted[1])  # both pulled to the clip's mean


def test_mixup_cutmix_soft_targets():
    torch.manual_seed(0)
    clips = torch.stack([torch.zeros(3, 4, 16, 16), torch.ones(3, 4, 16, 16)])
    labels = torch.tensor([0, 2])
    cutmix = MixupCutmix(num_classes=3, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    for _ in range(5):
        mixed, targets = cutmix(clips, labels)
        assert torch.allclose(targets.sum(1), torch.ones(2))
        pasted = mixed[0, 0]  # ones pasted into the zero clip: the same box in every frame
        assert _all_frames_equal(pasted, 0)
        assert targets[0, 2].item() == pytest.approx(pasted[0].mean().item())
    mixup = MixupCutmix(num_classes=3, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1)
    mixed, targets = mixup(clips, labels)
    weight = 1 - mixed[0].mean().item()
    expected = [0.9 * weight + 0.1 / 3, 0.1 / 3, 0.9 * (1 - weight) + 0.1 / 3]
    assert targets[0].tolist() == pytest.approx(expected, abs=1e-5)
    loss = soft_target_cross_entropy(torch.zeros(2, 3), targets)
    assert loss.item() == pytest.approx(torch.log(torch.tensor(3.0)).item())
