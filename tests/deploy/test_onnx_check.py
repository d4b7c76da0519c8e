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


def test_an_input_the_runtime_cannot_run_fails_the_check_in_one_line(exported):
    _, path = exported
    clips = {"four channels": torch.randn(1, 4, *SHAPE[2:])}
    with pytest.raises(OnnxExportError, match="fails in onnxruntime on four channels: ") as raised:
        check_onnx(path, nn.Identity(), clips)
    assert "\n" not in str(raised.value)


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


def _off_by(model, amount, logit=4):
    """A copy of `model` whose `logit` is `amount` off (a power of two: exact in float32)."""
    changed = _Tiny().eval()
    changed.load_state_dict(model.state_dict())
    with torch.no_grad():
        changed.linear.bias.zero_()
        changed.linear.bias[logit] += amount
    return changed


@pytest.fixture(scope="module")
def zero_bias(tmp_path_factory):
    """A file whose bias is zero, so that a moved bias moves its logit by exactly that much."""
    model = _Tiny().eval()
    with torch.no_grad():
        model.linear.bias.zero_()
        model.linear.weight.zero_()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / "zero.onnx", SHAPE)
    return model, path


def test_only_the_last_logit_moved_fails_the_check_and_names_the_file_and_the_difference(
    zero_bias,
):
    model, path = zero_bias
    changed = _off_by(model, 0.5, logit=4)
    with pytest.raises(OnnxExportError) as raised:
        check_onnx(path, changed, {"clip": torch.randn(SHAPE)}, tolerance=0.25)
    message = str(raised.value)
    assert message.startswith(f"{path} does not reproduce the eager model: ")
    assert "clip 5.00e-01" in message and "(tolerance 2e-01)" in message


def test_the_tolerance_is_inclusive(zero_bias):
    model, path = zero_bias
    changed = _off_by(model, 0.5)
    check = check_onnx(path, changed, {"clip": torch.randn(SHAPE)}, tolerance=0.5)
    assert check.differences == {"clip": 0.5} and check.worst == 0.5 and check.tolerance == 0.5
    with pytest.raises(OnnxExportError):
        check_onnx(path, changed, {"clip": torch.randn(SHAPE)}, tolerance=0.4999)


def test_the_default_tolerance_is_1e_4(zero_bias):
    model, path = zero_bias
    assert check_onnx(path, _off_by(model, 2.0**-14), {"clip": torch.randn(SHAPE)}).worst == (
        2.0**-14
    )
    with pytest.raises(OnnxExportError, match=r"tolerance 1e-04"):
        check_onnx(path, _off_by(model, 2.0**-13), {"clip": torch.randn(SHAPE)})


def test_every_input_is_checked_and_reported_by_name_in_order(zero_bias):
    model, path = zero_bias
    changed = _off_by(model, 0.5)
    inputs = {"first": torch.randn(SHAPE), "second": torch.randn(1, *SHAPE[1:])}
    check = check_onnx(path, changed, inputs, tolerance=1.0)
    assert check.differences == {"first": 0.5, "second": 0.5}
    assert str(check) == (
        "max |onnxruntime - eager| on logits: first 5.00e-01, second 5.00e-01 (tolerance 1e+00)"
    )


def test_the_worst_is_the_largest_difference_of_any_input(exported):
    from effvid.deploy.onnx_export import OnnxCheck

    check = OnnxCheck({"a": 0.1, "b": 0.3, "c": 0.2}, 1.0)
    assert check.worst == 0.3
    assert str(check) == (
        "max |onnxruntime - eager| on logits: a 1.00e-01, b 3.00e-01, c 2.00e-01 (tolerance 1e+00)"
    )


def test_the_model_is_run_in_eval_mode(exported):
    model, path = exported
    dropping = nn.Sequential(model, nn.Dropout(p=0.9)).train()
    check = check_onnx(path, dropping, {"clip": torch.randn(SHAPE)}, tolerance=1e-4)
    assert check.worst < 1e-5 and not dropping.training


# The export itself, on the same tiny model: what a check cannot see.


def test_the_file_records_the_opset_and_the_metadata_given(tmp_path):
    from effvid.inference.onnx_runtime import read_onnx_metadata

    path = export_onnx(
        _Tiny().eval(), tmp_path / "a" / "b" / "tiny.onnx", SHAPE, metadata={"effvid.x": "1"}
    )
    assert read_onnx_metadata(path) == {"effvid.x": "1", "effvid.opset": "17"}
    onnx = pytest.importorskip("onnx")
    assert {entry.version for entry in onnx.load(str(path)).opset_import if not entry.domain} == {
        17
    }
    other = export_onnx(_Tiny().eval(), tmp_path / "16.onnx", SHAPE, opset=16)
    assert read_onnx_metadata(other) == {"effvid.opset": "16"}
    assert {entry.version for entry in onnx.load(str(other)).opset_import if not entry.domain} == {
        16
    }


def test_the_batch_axis_is_free_by_default_and_fixed_on_request(tmp_path):
    torch.manual_seed(0)
    model = _Tiny().eval()
    one = {"batch 1": torch.randn(1, *SHAPE[1:])}
    free = export_onnx(model, tmp_path / "free.onnx", SHAPE)
    assert check_onnx(free, model, one).worst < 1e-5
    fixed = export_onnx(model, tmp_path / "fixed.onnx", SHAPE, dynamic_batch=False)
    assert check_onnx(fixed, model, {"batch 2": torch.randn(SHAPE)}).worst < 1e-5
    with pytest.raises(Exception, match=r"(?i)dimension|shape|index"):
        check_onnx(fixed, model, one)


class _Anonymous(nn.Module):
    def forward(self, clips):
        raise ValueError("no graph here\nsecond line")


def test_a_model_that_cannot_be_exported_is_named_in_the_error(tmp_path):
    with pytest.raises(OnnxExportError, match=r"^cannot export _Anonymous to ONNX: no graph here$"):
        export_onnx(_Anonymous(), tmp_path / "x.onnx", SHAPE)
    named = _Anonymous()
    named.model_name = "named_model"
    with pytest.raises(OnnxExportError, match=r"^cannot export named_model to ONNX: "):
        export_onnx(named, tmp_path / "x.onnx", SHAPE)


def test_a_trace_names_its_inputs_and_outputs_with_a_free_batch_axis_by_default(tmp_path):
    from effvid.deploy.onnx_export import trace_to_onnx

    onnx = pytest.importorskip("onnx")
    path = trace_to_onnx(
        _Tiny().eval(), (torch.randn(SHAPE),), tmp_path / "t.onnx", input_names=["in"],
        output_names=["out"],
    )  # fmt: skip
    graph = onnx.load(str(path)).graph
    assert [value.name for value in graph.input] == ["in"]
    assert [value.name for value in graph.output] == ["out"]
    assert [value.type.tensor_type.shape.dim[0].dim_param for value in graph.input] == ["batch"]
    assert [value.type.tensor_type.shape.dim[0].dim_param for value in graph.output] == ["batch"]


def test_the_exported_model_is_a_copy_the_model_given_is_left_as_it_was(tmp_path):
    model = nn.Sequential(_Tiny(), nn.Dropout(p=0.5)).train()
    export_onnx(model, tmp_path / "x.onnx", SHAPE)
    assert model.training and model[0].training and model[1].training


def test_a_long_reason_is_cut_to_300_characters(tmp_path):
    class _Long(nn.Module):
        def forward(self, clips):
            raise ValueError("x" * 400)

    with pytest.raises(OnnxExportError) as raised:
        export_onnx(_Long(), tmp_path / "x.onnx", SHAPE)
    assert str(raised.value) == f"cannot export _Long to ONNX: {'x' * 300}"
