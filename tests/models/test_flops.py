"""count_flops: the fvcore convention, attention counted however it is computed."""

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import effvid
from effvid.models.flops import FLOP_TYPES

MF_VARIANTS = ("26m", "52m", "96m", "151m", "214m", "294m", "508m")
FVCORE_NAMES = {"conv": ["conv"], "linear": ["linear"], "matmul": ["matmul"],
                "norm": ["batch_norm", "layer_norm"], "pool": ["adaptive_avg_pool2d"]}  # fmt: skip


@pytest.mark.parametrize("variant", MF_VARIANTS)
def test_mobile_former_flops_match_fvcore_on_the_authors_code(reference_dir, variant):
    manifest = json.loads((reference_dir / "mobileformer" / f"manifest_{variant}.json").read_text())
    model = effvid.create_model(f"mobileformer_{variant}")
    flops = effvid.count_flops(model, manifest["input_shape"])
    assert flops.total == pytest.approx(manifest["fvcore_flops"], rel=0.02)
    fvcore = manifest["fvcore_by_operator"]
    for kind, names in FVCORE_NAMES.items():
        expected = sum(fvcore.get(name, 0) for name in names)
        assert flops.by_type[kind] == pytest.approx(expected, rel=0.02), kind


class _Attention(nn.Module):
    def __init__(self, fused: bool):
        super().__init__()
        self.fused = fused
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):  # x: (B, N, 16), 4 heads of 4
        q, k, v = self.qkv(x).view(x.shape[0], x.shape[1], 3, 4, 4).permute(2, 0, 3, 1, 4)
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        return (q @ k.transpose(-2, -1) / 2.0).softmax(-1) @ v


@pytest.mark.parametrize("fused", [True, False], ids=["sdpa", "matmul"])
def test_attention_is_counted_on_cpu(fused):
    """The fused CPU kernel counts the same as explicit matmuls: 2 * B * heads * N * N * E."""
    flops = effvid.count_flops(_Attention(fused), (2, 50, 16))
    assert flops.by_type["matmul"] == 2 * 2 * 4 * 50 * 50 * 4
    assert flops.by_type["linear"] == 2 * 50 * 16 * 48
    assert flops.total == flops.by_type["matmul"] + flops.by_type["linear"]


def test_conv_norm_pool_formulas_and_mode_restored():
    model = nn.Sequential(
        nn.Conv3d(3, 8, (3, 3, 3), padding=1, groups=1), nn.BatchNorm3d(8), nn.Flatten(2)
    )
    model.train()
    flops = effvid.count_flops(model, (1, 3, 4, 8, 8))
    assert flops.by_type["conv"] == 8 * 4 * 8 * 8 * 3 * 27
    assert flops.by_type["norm"] == 2 * 8 * 4 * 8 * 8  # inference BN: scale and shift
    assert model.training
    assert set(flops.by_type) == set(FLOP_TYPES)
    assert "GMACs" in str(flops)


def test_meta_device_counts_like_cpu():
    on_cpu = effvid.count_flops(effvid.create_model("vmf_xxs"), (1, 3, 4, 64, 64))
    with torch.device("meta"):
        on_meta = effvid.count_flops(effvid.create_model("vmf_xxs"), (1, 3, 4, 64, 64))
    assert on_meta.by_type == on_cpu.by_type
