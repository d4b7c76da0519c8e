"""ONNX export: every registered model exports to one file that ONNX Runtime runs like eager."""

import json

import pytest
import torch

import effvid
from effvid.cli import main
from effvid.deploy.onnx_export import check_onnx, export_onnx
from effvid.inference.metadata import card_metadata
from effvid.inference.onnx_runtime import OnnxRunner, read_onnx_metadata
from tests.conftest import small_input

pytest.importorskip("onnxruntime")


@pytest.mark.parametrize("name", effvid.list_models())
@pytest.mark.slow
def test_every_model_exports_and_matches_eager(tmp_path, name):
    card = effvid.get_model_card(name)
    model = effvid.create_model(name).eval()
    clips = small_input(card, batch=1)
    path = export_onnx(
        model, tmp_path / f"{name}.onnx", clips.shape, metadata=card_metadata(card, clips.shape)
    )
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"]  # weights inside, no side file
    check = check_onnx(path, model, {"batch 1": clips, "batch 3": small_input(card, batch=3)})
    assert check.worst < 1e-4
    metadata = read_onnx_metadata(path)
    assert int(metadata["effvid.opset"]) >= 17
    assert json.loads(metadata["effvid.card"])["mean"] == list(card.mean)


def test_static_batch_and_parity_failure_is_loud(tmp_path):
    model = effvid.create_model("x3d_xs", num_classes=4).eval()
    path = export_onnx(model, tmp_path / "x3d.onnx", (2, 3, 4, 64, 64), dynamic_batch=False)
    runner = OnnxRunner(path)
    assert runner(torch.randn(2, 3, 4, 64, 64)).shape == (2, 4)
    with pytest.raises(Exception, match=r"dimensions|shape"):
        runner(torch.randn(3, 3, 4, 64, 64))
    with torch.no_grad():
        model.get_classifier().bias += 1.0  # the eager model no longer matches the file
    with pytest.raises(effvid.deploy.onnx_export.OnnxExportError, match="does not reproduce"):
        check_onnx(path, model, {"clip": torch.randn(2, 3, 4, 64, 64)})


def test_export_command_carries_checkpoint_classes(tmp_path, capsys):
    model = effvid.create_model("x3d_xs", num_classes=3)
    checkpoint = tmp_path / "trained.pth"
    torch.save({"model": model.state_dict(), "class_names": ["a", "b", "c"]}, checkpoint)
    output = tmp_path / "out.onnx"
    code = main(
        ["export", "--model", "x3d_xs", "--checkpoint", str(checkpoint), "--frames", "4",
         "--size", "64", "--output", str(output)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "opset" in printed and "max |onnxruntime - eager|" in printed
    metadata = read_onnx_metadata(output)
    assert json.loads(metadata["effvid.class_names"]) == ["a", "b", "c"]
    assert json.loads(metadata["effvid.card"])["input_shape"] == [1, 3, 4, 64, 64]
    assert OnnxRunner(output)(torch.randn(1, 3, 4, 64, 64)).shape == (1, 3)


@pytest.mark.parametrize("kind", ["dynamic", "static"])
@pytest.mark.slow
def test_int8_quantisation_keeps_metadata_and_stays_close(tmp_path, kind):
    from effvid.deploy.precision_check import LabelledClips, compare_precision
    from effvid.deploy.quantize import quantize_int8

    card = effvid.get_model_card("vmf_xxs")
    model = effvid.create_model("vmf_xxs", num_classes=10).eval()
    clips = small_input(card, batch=1)
    path = export_onnx(
        model, tmp_path / "fp32.onnx", clips.shape, metadata=card_metadata(card, clips.shape)
    )
    calibration = [small_input(card, batch=1) for _ in range(4)] if kind == "static" else []
    quantized = quantize_int8(path, calibration=calibration)
    assert quantized.name == "fp32.int8.onnx"
    assert quantized.stat().st_size < 0.5 * path.stat().st_size
    metadata = read_onnx_metadata(quantized)
    assert metadata["effvid.quantization"] == f"int8 {'static QDQ' if calibration else kind}"
    assert "effvid.card" in metadata
    assert OnnxRunner(quantized)(clips).shape == (1, 10)
    change = compare_precision(
        path, quantized, "int8", LabelledClips([small_input(card, batch=2)], None, "random")
    )
    assert change.accuracy is None and 0 <= change.top1_agreement <= 1
    assert change.max_abs_difference < 1.0  # int8 moves logits, it does not scramble them


def test_onnx_runtime_threads_do_not_spin_between_calls(tmp_path):
    """Idle ONNX Runtime threads that spin take the cores from whatever runs next in the process
    (decoding, an eager model): measured, an eager call after a spinning session took 2.2x."""
    model = effvid.create_model("x3d_xs", num_classes=4).eval()
    path = export_onnx(model, tmp_path / "x3d.onnx", (1, 3, 4, 64, 64))
    options = OnnxRunner(path, threads=2).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_static_int8_leaves_float_the_convs_onnx_runtime_runs_slowly_in_int8(tmp_path):
    """ORT's int8 convolutions are fast for pointwise, depthwise and 2-D kernels; a grouped conv
    with a channel multiplier (Mobile-Former's depthwise-expand) or a dense 3-D kernel (the
    VMF stem) goes through a slow generic path: quantised, vmf_xxs ran 4x slower than fp32."""
    import onnx

    from effvid.deploy.quantize import quantize_int8

    card = effvid.get_model_card("vmf_xxs")
    model = effvid.create_model("vmf_xxs", num_classes=10).eval()
    clips = small_input(card, batch=1)
    path = export_onnx(model, tmp_path / "fp32.onnx", clips.shape)
    graph = onnx.load(str(quantize_int8(path, calibration=[clips]))).graph
    made_by = {output: node.op_type for node in graph.node for output in node.output}
    weights = {w.name: w.dims for w in graph.initializer}
    quantised = {"depthwise": 0, "slow": 0}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        if node.input[1] in weights:  # a float weight
            dims = weights[node.input[1]]
        else:  # int8 weight -> DequantizeLinear -> Conv
            dims = next(weights[n.input[0]] for n in graph.node if n.output[0] == node.input[1])
        out_channels, kt = dims[0], dims[2]
        slow = (group > 1 and out_channels != group) or (group == 1 and kt > 1)
        kind = "slow" if slow else "depthwise" if group > 1 else None
        if kind and made_by.get(node.input[1]) == "DequantizeLinear":
            quantised[kind] += 1
    assert quantised == {"depthwise": 5, "slow": 0}
