"""The check that an exported file reproduces the eager model: any logit of any clip of any
input that moves past the tolerance fails it, however small the rest of the difference."""

import pytest
import torch
from torch import nn

from effvid.deploy.onnx_export import OnnxExportError, check_onnx, export_onnx

pytest.importorskip("onnxruntime")

SHAPE = (2, 3, 2, 8, 8)


class _Tiny(nn.Module):
    """A clip (B, 3, T, H, W) -> 5 logits, small enough to export in a moment."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 5)

    def forward(self, clips):
        return self.linear(clips.mean(dim=(2, 3, 4)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = _Tiny().eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", SHAPE)
    return model, path


def _moved(model, logit=None):
    """A copy of `model` whose `logit` (every one but the first when None) is 0.1 off."""
    changed = _Tiny().eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.linear.bias[slice(1, None) if logit is None else logit] += 0.1
    return changed


def test_the_file_matches_its_own_model(exported):
    model, path = exported
    clips = {"batch 2": torch.randn(SHAPE), "batch 1": torch.randn(1, *SHAPE[1:])}
    check = check_onnx(path, model, clips, tolerance=1e-4)
    assert set(check.differences) == {"batch 2", "batch 1"} and check.worst < 1e-5


@pytest.mark.parametrize("logit", [None, 1, 4])
def test_a_difference_in_any_logit_but_the_first_fails_the_check(exported, logit):
    model, path = exported
    changed = _moved(model, logit)
    with pytest.raises(OnnxExportError, match="does not reproduce the eager model"):
        check_onnx(path, changed, {"clip": torch.randn(SHAPE)}, tolerance=0.05)


def test_a_difference_in_one_clip_of_the_batch_or_in_one_input_fails_the_check(exported):
    model, path = exported
    changed = _Tiny().eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.linear.weight[3] += 1.0  # moves logit 3 of every clip but the all-zero one
    quiet = torch.zeros(1, *SHAPE[1:])
    loud = torch.ones(1, *SHAPE[1:])
    with pytest.raises(OnnxExportError, match=r"loud \d"):
        check_onnx(path, changed, {"quiet": quiet, "loud": loud}, tolerance=0.05)
    failing = {"zeros": torch.zeros(SHAPE), "ones first": torch.stack([loud[0], quiet[0]])}
    with pytest.raises(OnnxExportError):
        check_onnx(path, changed, failing, tolerance=0.05)
    failing = {"ones last": torch.stack([quiet[0], loud[0]])}
    with pytest.raises(OnnxExportError):
        check_onnx(path, changed, failing, tolerance=0.05)
