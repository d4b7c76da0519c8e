"""DualFormer against the official code: manifests, FLOPs, parity, checkpoints, input sizes.

Reference data: `../shared/reference/dualformer/` (see its README and tiny_config.json).
"""

import json

import pytest
import torch
from safetensors.torch import load_file

import effvid
from effvid.models.dualformer import DualFormer

VARIANTS = {"t": "tiny", "s": "small", "b": "base"}


def _manifest(reference_dir, variant):
    path = reference_dir / "dualformer" / f"manifest_{VARIANTS[variant]}.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_and_flops_equal_the_official_manifest(reference_dir, variant):
    manifest = _manifest(reference_dir, variant)
    with torch.device("meta"):
        model = effvid.create_model(f"dualformer_{variant}")
    shapes = {key: list(tensor.shape) for key, tensor in model.state_dict().items()}
    assert list(shapes) == list(manifest["keys"])
    assert shapes == manifest["keys"]
    assert effvid.count_params(model) == manifest["params"]
    flops = effvid.count_flops(model, manifest["input_shape"]).total
    assert flops == pytest.approx(manifest["fvcore_flops"], rel=0.01)


def test_official_constructor_arguments_carry_over(reference_dir):
    official = dict(_manifest(reference_dir, "t")["backbone_constructor_args"])
    official.pop("num_classes")  # the official backbone ignores it; the head has its own
    with torch.device("meta"):
        model = effvid.create_model("dualformer_t", **official)
    assert effvid.count_params(model) == _manifest(reference_dir, "t")["params"]


@pytest.fixture(scope="module")
def tiny_reference(reference_dir):
    """The reduced official configuration, its weights file and its captured tensors."""
    folder = reference_dir / "dualformer"
    config = json.loads((folder / "tiny_config.json").read_text())
    return config, folder / "tiny_state_dict.safetensors", load_file(folder / "tiny_io.safetensors")


@pytest.fixture
def tiny(tiny_reference):
    """A fresh model of the reduced configuration, its weights file and its captured tensors."""
    config, weights, reference = tiny_reference
    args = {k: v for k, v in config["backbone_args"].items() if k != "num_classes"}
    return DualFormer(num_classes=config["head_args"]["num_classes"], **args), weights, reference


def _capture(model):
    captured = {}
    backbone = model.backbone

    def store(key, select):
        def hook(module, args, output=None):
            captured[key] = select(args, output)

        return hook

    backbone.patch_embeds[0].register_forward_hook(store("patch_embed0_out", lambda a, o: o))
    backbone.blocks[0][0].register_forward_hook(store("stage0_block0_tokens", lambda a, o: o))
    backbone.pos_block[0].register_forward_hook(store("stage0_peg_out", lambda a, o: o))
    for stage in range(1, 4):
        backbone.patch_embeds[stage].register_forward_pre_hook(
            store(f"stage{stage - 1}_out", lambda a, o: a[0])
        )
    backbone.norm.register_forward_pre_hook(store("stage3_tokens", lambda a, o: a[0]))
    return captured


def test_outputs_match_the_official_model(tiny):
    model, weights, reference = tiny
    report = effvid.load_checkpoint(model, weights)
    assert len(report.loaded) == len(model.state_dict())
    model.eval()
    captured = _capture(model)
    with torch.no_grad():
        features = model.forward_features(reference["input"])
        logits = model.forward_head(features)
    assert (logits - reference["logits"]).abs().max() <= 5e-5
    captured["features"] = features.feature_map
    captured["stage0_block0_out"] = (
        captured.pop("stage0_block0_tokens")
        .transpose(1, 2)
        .reshape(reference["stage0_block0_out"].shape)
    )
    captured["stage3_out"] = (
        captured.pop("stage3_tokens").transpose(1, 2).reshape(reference["stage3_out"].shape)
    )
    intermediates = [
        k for k in reference if k not in ("input", "logits", "logits_float64", "probs")
    ]
    assert len(intermediates) == 8
    for key in intermediates:
        torch.testing.assert_close(captured[key], reference[key], rtol=1e-5, atol=1e-4, msg=key)
    torch.testing.assert_close(logits.softmax(-1), reference["probs"], rtol=1e-5, atol=1e-5)


def test_mmaction_checkpoint_with_token_labelling_head(tiny, tmp_path):
    model, weights, reference = tiny
    state = load_file(weights)
    state["cls_head.token_linear.0.weight"] = torch.zeros(256, 128)
    state["cls_head.token_linear.0.bias"] = torch.zeros(256)
    path = tmp_path / "dualformer_tiny_official.pth"
    torch.save({"meta": {"epoch": 30, "mmcv_version": "1.3.8"}, "state_dict": state}, path)
    report = effvid.load_checkpoint(model, path)
    assert report.notes == [
        "ignored 2 keys cls_head.token_linear.* (the token-labelling training head)"
    ]
    assert not report.unexpected and not report.missing
    with torch.no_grad():
        logits = model.eval()(reference["input"])
    assert (logits - reference["logits"]).abs().max() <= 5e-5


def test_other_unknown_keys_are_not_ignored_silently(tiny):
    model, weights, _ = tiny
    state = load_file(weights)
    state["cls_head.something_else.weight"] = torch.zeros(3)
    with pytest.raises(effvid.CheckpointError, match=r"cls_head\.something_else\.weight"):
        effvid.load_checkpoint(model, state)


def test_2d_imagenet_backbone_inflates_by_the_official_rules(tiny):
    model, weights, _ = tiny
    generator = torch.Generator().manual_seed(0)
    image_state = {}
    for key, tensor in load_file(weights).items():
        if key.startswith("cls_head.") or ".lr.3." in key:
            continue  # an image backbone has no video head and no temporal coarse conv
        key = key.removeprefix("backbone.")
        shape = tensor.shape[:2] + tensor.shape[3:] if tensor.ndim == 5 else tensor.shape
        image_state[key] = torch.randn(shape, generator=generator)
    report = effvid.load_checkpoint(model, image_state)
    loaded = model.backbone
    stem = loaded.patch_embeds[0].proj.weight
    assert stem.shape[2] == 2
    torch.testing.assert_close(stem[:, :, 0], image_state["patch_embeds.0.proj.weight"] / 2)
    torch.testing.assert_close(stem[:, :, 1], stem[:, :, 0])
    peg = loaded.pos_block[1].proj[0].weight
    torch.testing.assert_close(peg.sum(2), image_state["pos_block.1.proj.0.weight"])
    coarse = loaded.blocks[0][1].attn.lr
    assert torch.equal(coarse[0].weight[:, :, 0], image_state["blocks.0.1.attn.lr.0.weight"])
    assert torch.all(coarse[3].weight == 1 / 8) and not coarse[3].bias.any()  # kernel (2, 2, 2)
    assert torch.all(loaded.blocks[1][1].attn.lr[3].weight == 1 / 2)  # kernel (2, 1, 1)
    assert report.new_classifier.startswith("new classifier: the checkpoint has none")
    assert any("backbone-only" in note for note in report.notes)
    assert any("2 coarse pyramid convs" in note for note in report.notes)


def test_input_sizes_run_exactly_or_are_refused():
    with torch.device("meta"):
        model = effvid.create_model("dualformer_t")
    for size in [(32, 224, 224), (16, 224, 224), (8, 224, 224), (32, 448, 448)]:
        model.check_input_size(size)
    for size, reason in [
        ((32, 256, 256), "local window"),
        ((30, 224, 224), "local window"),
        ((24, 224, 224), "local window"),
        ((32, 224, 230), "patch embedding stride"),
        ((4, 224, 224), "pyramid pooling kernel"),
    ]:
        with pytest.raises(ValueError, match=f"without cropping.*{reason}"):
            model.check_input_size(size)
    with pytest.raises(ValueError, match="without cropping"):
        model(torch.zeros(1, 3, 32, 256, 256, device="meta"))
    with pytest.raises(ValueError, match="expects clips of shape"):
        model(torch.zeros(1, 3, 224, 224, device="meta"))


def test_too_small_video_size_for_the_coarse_pyramid_is_refused():
    with pytest.raises(ValueError, match="coarse pyramid"):
        effvid.create_model("dualformer_t", video_size=(32, 112, 112))
