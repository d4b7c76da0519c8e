"""load_checkpoint: safe reading, container unwrapping, clear errors, reports."""

import argparse
import pickle

import pytest
import torch
from safetensors.torch import save_file

import effvid
from effvid import CheckpointError


@pytest.fixture(scope="module")
def trained_weights():
    """The state dict of a mobileformer_26m with non-default weights."""
    torch.manual_seed(1)
    return effvid.create_model("mobileformer_26m", num_classes=10).state_dict()


def _fresh(num_classes=10):
    return effvid.create_model("mobileformer_26m", num_classes=num_classes)


def _assert_same_weights(model, state):
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[key]), key


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: sd,
        lambda sd: {"state_dict": sd, "epoch": 3, "args": argparse.Namespace(lr=8e-4, model="m")},
        lambda sd: {"model": sd, "optimizer": {}},
        lambda sd: {"state_dict_ema": sd},
        lambda sd: {f"module.{k}": v for k, v in sd.items()},
        lambda sd: {"state_dict": {f"_orig_mod.{k}": v for k, v in sd.items()}},
    ],
    ids=["bare", "timm", "model", "ema", "ddp_prefix", "compiled_prefix"],
)
def test_containers_and_prefixes_are_unwrapped(tmp_path, trained_weights, wrap):
    path = tmp_path / "weights.pth"
    torch.save(wrap(trained_weights), path)
    model = _fresh()
    report = effvid.load_checkpoint(model, path)
    _assert_same_weights(model, trained_weights)
    assert len(report.loaded) == len(trained_weights) and not report.missing


def test_safetensors_file_and_in_memory_state_dict(tmp_path, trained_weights):
    path = tmp_path / "weights.safetensors"
    save_file(trained_weights, path)
    for source in (path, str(path), trained_weights):
        model = _fresh()
        effvid.load_checkpoint(model, source)
        _assert_same_weights(model, trained_weights)


class _Payload:
    def __reduce__(self):
        return (print, ("this would run arbitrary code",))


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload()}, handle, protocol=2)
    with pytest.raises(CheckpointError, match="never unpickles"):
        effvid.load_checkpoint(_fresh(), path)


def test_unreadable_files_are_clear_errors(tmp_path, trained_weights):
    with pytest.raises(CheckpointError, match="does not exist"):
        effvid.load_checkpoint(_fresh(), tmp_path / "missing.pth")
    path = tmp_path / "truncated.pth"
    torch.save(trained_weights, path)
    path.write_bytes(path.read_bytes()[:1000])
    model = _fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="is corrupted or truncated"):
        effvid.load_checkpoint(model, path)
    _assert_same_weights(model, before)
    with pytest.raises(CheckpointError, match="not a tensor"):
        effvid.load_checkpoint(_fresh(), {"weights": [1, 2, 3]})


def test_mismatches_name_the_keys_and_load_nothing(trained_weights):
    broken = dict(trained_weights)
    del broken["features.1.conv1.0.weight"]
    broken["extra.weight"] = torch.zeros(1)
    broken["stem.0.weight"] = torch.zeros(1, 2, 3, 3)
    model = _fresh()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as error:
        effvid.load_checkpoint(model, broken)
    message = str(error.value)
    assert "missing from the checkpoint: 1 keys (features.1.conv1.0.weight)" in message
    assert "not in the model: 1 keys (extra.weight)" in message
    assert "stem.0.weight (checkpoint (1, 2, 3, 3), model (8, 3, 3, 3))" in message
    _assert_same_weights(model, before)


def test_non_strict_reports_missing_and_unexpected(trained_weights):
    partial = {k: v for k, v in trained_weights.items() if not k.startswith("classifier.fc")}
    partial["extra.weight"] = torch.zeros(1)
    report = effvid.load_checkpoint(_fresh(), partial, strict=False)
    assert report.unexpected == ["extra.weight"]
    assert report.missing and all(k.startswith("classifier.fc") for k in report.missing)
    assert "ignored (not in the model): 1 keys (extra.weight)" in str(report)


def test_another_class_count_gets_a_new_classifier(trained_weights, caplog):
    model = _fresh(num_classes=3)
    fresh_head = model.get_classifier().weight.clone()
    report = effvid.load_checkpoint(model, trained_weights)
    assert "the checkpoint has 10 classes and the model 3" in report.new_classifier
    assert torch.equal(model.get_classifier().weight, fresh_head)
    assert torch.equal(model.stem[0].weight, trained_weights["stem.0.weight"])
    assert "new classifier" in caplog.text


def test_image_weights_inflate_into_the_matching_video_model(trained_weights):
    model = effvid.create_model("vmf_xxs", num_classes=10, pointwise_groups=4)
    report = effvid.load_checkpoint(model, trained_weights, inflation="replicate")
    stem_2d = trained_weights["stem.0.weight"]
    stem_3d = model.stem[0].weight
    assert stem_3d.shape == (8, 3, 3, 3, 3) and "stem.0.weight" in report.inflated
    torch.testing.assert_close(stem_3d.sum(dim=2), stem_2d)
    centre = effvid.create_model("vmf_xxs", num_classes=10, pointwise_groups=4)
    effvid.load_checkpoint(centre, trained_weights)
    assert torch.equal(centre.stem[0].weight[:, :, 1], stem_2d)
    assert not centre.stem[0].weight[:, :, [0, 2]].any()
    with pytest.raises(ValueError, match="'centre' or 'replicate'"):
        effvid.load_checkpoint(centre, trained_weights, inflation="center")


def test_another_variant_is_refused_with_a_hint(trained_weights):
    with pytest.raises(CheckpointError, match="another architecture or variant"):
        effvid.load_checkpoint(effvid.create_model("vmf_xs", num_classes=10), trained_weights)
