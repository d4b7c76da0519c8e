"""int8 copies of exported ONNX files for ONNX Runtime, calibrated on real clips (how far they
are from their fp32 file: `effvid.deploy.precision_check`)."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from effvid.deploy.onnx_export import INPUT_NAME
from effvid.extras import require
from effvid.files import atomic_write
from effvid.inference.onnx_runtime import read_onnx_metadata

QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]  # what a static int8 export quantises


def quantize_int8(
    path: str | Path,
    output: str | Path | None = None,
    *,
    calibration: Sequence[torch.Tensor] = (),
) -> Path:
    """An int8 copy of an exported file for ONNX Runtime, keeping its metadata; returns it
    (`*.int8.onnx`). With `calibration` clips (real ones, preprocessed as for prediction):
    static QDQ quantisation, weights per channel and activations with ranges measured on those
    clips; without: dynamic quantisation (weights int8, activations quantised on the fly)."""
    onnx = require("onnx", "onnx")
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Clips(CalibrationDataReader):
        def __init__(self) -> None:
            self.clips = iter(calibration)

        def get_next(self) -> dict | None:
            clip = next(self.clips, None)
            return None if clip is None else {INPUT_NAME: clip.numpy().astype(np.float32)}

    path = Path(path)
    output = Path(output) if output else path.with_suffix(".int8.onnx")
    kind = "int8 static QDQ" if calibration else "int8 dynamic"
    with atomic_write(output) as temporary:
        if calibration:
            prepared = temporary.with_name(f"{temporary.stem}.prepared.onnx")
            try:
                quant_pre_process(str(path), str(prepared), skip_symbolic_shape=True)
                # Only the products are quantised: norms' 1-D weights have no channel axis
                # and elementwise int8 ops would only add (de)quantisation around them.
                quantize_static(
                    str(prepared), str(temporary), Clips(), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, op_types_to_quantize=QUANTIZED_OPS,
                    nodes_to_exclude=slow_int8_convs(onnx.load(str(prepared)).graph),
                )  # fmt: skip
            finally:
                prepared.unlink(missing_ok=True)
        else:
            quantize_dynamic(path, temporary, weight_type=QuantType.QInt8)
        proto = onnx.load(str(temporary))
        properties = {**read_onnx_metadata(path), "effvid.quantization": kind}
        onnx.helper.set_model_props(proto, properties)
        onnx.save(proto, str(temporary))
    return output


def slow_int8_convs(graph) -> list[str]:
    """The Conv nodes of an ONNX graph that ONNX Runtime's CPU int8 kernels run slower than
    float: grouped convs with a channel multiplier (Mobile-Former's depthwise-expand) and dense
    3-D kernels with a temporal extent (the VMF stem). Its int8 kernels are fast for pointwise,
    depthwise and 2-D convs; quantising all, vmf_xxs ran 4x slower than fp32 (a 3-D
    depthwise-expand conv of 8 -> 24 channels took 64 ms of 169)."""
    weights = {weight.name: weight.dims for weight in graph.initializer}
    slow = []
    for node in graph.node:
        if node.op_type != "Conv" or node.input[1] not in weights:
            continue
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        out_channels, _, *kernel = weights[node.input[1]]
        temporal = len(kernel) == 3 and kernel[0] > 1
        if (group > 1 and out_channels != group) or (group == 1 and temporal):
            slow.append(node.name)
    return slow
