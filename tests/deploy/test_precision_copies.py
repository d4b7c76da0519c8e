"""int8 and bf16 copies of an exported file: calibrated on real clips, checked against the fp32
file on labelled videos, kept only within the limits, carrying the same metadata."""

import subprocess
import sys

import pytest
import torch

from effvid.cli import main
from effvid.deploy.export import export_registered_model
from effvid.deploy.onnx_export import OnnxExportError
from effvid.deploy.precision_check import PrecisionCheck, enforce
from effvid.inference.exported_files import read_exported_model
from effvid.inference.runtime import open_clip_model
from tests.conftest import write_checkpoint

pytest.importorskip("onnxruntime")
ANY_AGREEMENT = {"min_agreement": 0.0, "max_accuracy_drop": 100.0}


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory, tiny_videos):
    classes = (tiny_videos / "classes.txt").read_text().split()
    return write_checkpoint(tmp_path_factory.mktemp("clip") / "clip.pth", classes, causal=False)


def _check(agreement: float, fp32: float | None, accuracy: float | None) -> PrecisionCheck:
    return PrecisionCheck("m.int8.onnx", "int8", 100, "test", agreement, 0.1, fp32, accuracy)


@pytest.mark.parametrize(
    ("agreement", "fp32", "accuracy", "kept"),
    [
        (1.0, 0.9, 0.9, True),
        (0.99, 0.9, 0.89, True),  # exactly at both limits
        (0.989, 0.9, 0.9, False),
        (1.0, 0.9, 0.889, False),  # 1.1 points lost
        (0.995, None, None, True),  # unlabelled: agreement only
    ],
)
def test_a_copy_is_kept_only_within_the_limits(agreement, fp32, accuracy, kept):
    check = _check(agreement, fp32, accuracy)
    if kept:
        assert enforce(check) is check
    else:
        with pytest.raises(OnnxExportError, match="too far from fp32 and was not kept"):
            enforce(check)


def _videos(tiny_videos, split: str, count: int) -> list:
    return sorted((tiny_videos / "videos" / split).glob("*.mp4"))[:count]


def test_onnx_int8_copy_is_written_checked_and_carries_the_metadata(
    clip_checkpoint, tiny_videos, tmp_path
):
    export = export_registered_model(
        None, tmp_path / "model.onnx", checkpoint=clip_checkpoint, int8=True,
        calibration=_videos(tiny_videos, "train", 8), check_data=tiny_videos / "test.txt",
        limits=ANY_AGREEMENT,
    )  # fmt: skip
    (copy,) = export.copies
    assert copy.precision == "int8" and copy.clips == 4 and copy.accuracy is not None
    fp32 = read_exported_model(export.path)
    assert read_exported_model(copy.path) == fp32  # card, class names, preprocessing
    assert open_clip_model(onnx=copy.path).info.class_names == fp32.class_names


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.timeout(600)
def test_openvino_copies_are_written_checked_and_carry_the_metadata(
    clip_checkpoint, tiny_videos, tmp_path
):
    """As a user runs it: `effvid export` in a process of its own (NNCF, loaded by the int8
    copy, is not loaded into the test process, whose later forks it upset)."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    from effvid.inference.exported_files import read_file_metadata
    from effvid.inference.openvino_runtime import supports_bf16

    precisions = ["int8", "bf16"] if supports_bf16() else ["int8"]
    output = tmp_path / "model.xml"
    command = [
        sys.executable, "-m", "effvid.cli", "export", "--checkpoint", str(clip_checkpoint),
        "--runtime", "openvino", "--output", str(output), "--int8",
        *(["--bf16"] if "bf16" in precisions else []),
        "--calibration", *map(str, _videos(tiny_videos, "train", 8)),
        "--check-data", str(tiny_videos / "test.txt"),
        "--min-agreement", "1e-9", "--max-accuracy-drop", "100",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=560)
    assert done.returncode == 0, done.stderr
    for precision in precisions:
        assert f"({precision}): top-1 agreement with fp32" in done.stdout
        assert "on 4 labelled videos" in done.stdout
    fp32 = read_exported_model(output)
    for precision in precisions:
        copy = output.with_suffix(f".{precision}.xml")
        assert read_exported_model(copy) == fp32  # card, class names, preprocessing
        assert read_file_metadata(copy)["effvid.precision"] == precision
    quantised = _quantised_inputs(output.with_suffix(".int8.xml"))
    assert quantised["GroupConvolution with a channel multiplier"] == 0  # kept in fp32
    assert quantised["MatMul of the global branch"] == 0
    assert quantised["GroupConvolution"] > 0 and quantised["Convolution"] > 0


def _quantised_inputs(path) -> dict[str, int]:
    """How many convolutions and matrix products of each kind an OpenVINO file computes on
    quantised inputs."""
    import openvino as ov

    counts = dict.fromkeys(
        ["GroupConvolution with a channel multiplier", "GroupConvolution", "Convolution", "MatMul"],
        0,
    )
    counts["MatMul of the global branch"] = 0
    for op in ov.Core().read_model(str(path)).get_ops():
        kind = op.get_type_name()
        if kind not in counts:
            continue
        source = op.input_value(0).get_node()
        if kind == "GroupConvolution" and op.input_value(1).get_partial_shape()[1].get_length() > 1:
            kind = "GroupConvolution with a channel multiplier"
        if kind == "MatMul" and "/global_block/" in op.get_friendly_name():
            kind = "MatMul of the global branch"
        counts[kind] += source.get_type_name() == "FakeQuantize"
    return counts


@pytest.mark.edge
@pytest.mark.timeout(900)
def test_executorch_int8_program_loads_and_follows_the_fp32_model(tmp_path):
    """A temporally padded convolution in int8: XNNPACK must initialise the program and run it
    (the pad operator it got before could not be initialised in int8)."""
    pytest.importorskip("executorch")
    from torch import nn

    from effvid.deploy.executorch_export import write_executorch
    from effvid.deploy.frame_conv import FrameConv
    from effvid.inference.executorch_runtime import ExecuTorchRunner

    class TwoConvs(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.full = FrameConv(nn.Conv3d(3, 8, (3, 3, 3), padding=(1, 1, 1)))
            self.depthwise = FrameConv(nn.Conv3d(8, 8, (3, 1, 1), padding=(1, 0, 0), groups=8))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.depthwise(torch.relu(self.full(x))).mean((2, 3, 4))

    torch.manual_seed(0)
    model, clip = TwoConvs().eval(), torch.randn(1, 3, 4, 16, 16)
    path = write_executorch(
        model,
        tmp_path / "m.pte",
        (clip,),
        {},
        calibration=[torch.randn_like(clip) for _ in range(4)],
    )
    runner = ExecuTorchRunner(path)
    expected = model(clip)
    tolerance = 0.05 * float(expected.abs().max())
    assert torch.allclose(torch.as_tensor(runner(clip)), expected, atol=tolerance)


@pytest.mark.edge
@pytest.mark.timeout(1800)
def test_executorch_int8_copy_is_written_checked_and_carries_the_metadata(
    clip_checkpoint, tiny_videos, tmp_path
):
    pytest.importorskip("executorch")
    export = export_registered_model(
        None, tmp_path / "model.pte", checkpoint=clip_checkpoint, format="executorch", int8=True,
        calibration=_videos(tiny_videos, "train", 8), check_data=tiny_videos / "test.txt",
        limits=ANY_AGREEMENT,
    )  # fmt: skip
    (copy,) = export.copies
    assert copy.path.name == "model.int8.pte" and copy.clips == 4
    assert read_exported_model(copy.path) == read_exported_model(export.path)
    labels = open_clip_model(onnx=copy.path).info.class_names
    assert labels == (tiny_videos / "classes.txt").read_text().split()


def test_a_copy_too_far_from_fp32_is_not_kept(clip_checkpoint, tiny_videos, tmp_path):
    output = tmp_path / "model.onnx"
    with pytest.raises(OnnxExportError, match="int8 copy is too far from fp32 and was not kept"):
        export_registered_model(
            None, output, checkpoint=clip_checkpoint, int8=True,
            calibration=_videos(tiny_videos, "train", 4), check_data=tiny_videos / "test.txt",
            limits={"min_agreement": 1.01},  # more than any copy can reach
        )  # fmt: skip
    assert output.exists()  # the fp32 file passed its own check
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_agreement_limits_are_fractions(capsys):
    with pytest.raises(SystemExit) as exit_status:
        main(["export", "--model", "x3d_xs", "--min-agreement", "1.5"])
    assert exit_status.value.code == 2
    assert "must be a number in (0, 1]" in capsys.readouterr().err


def test_bf16_is_refused_where_the_runtime_has_no_bf16_copy(clip_checkpoint, tmp_path, capsys):
    command = ["export", "--checkpoint", str(clip_checkpoint), "--bf16"]
    assert main([*command, "--output", str(tmp_path / "model.onnx")]) == 2
    assert "bf16 copies are for OpenVINO" in capsys.readouterr().err
