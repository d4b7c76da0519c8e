"""int8 copies of exported ONNX files for ONNX Runtime, calibrated on real clips, and how far
they are from the fp32 file they come from."""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from effvid.data.preprocessing import Preprocessing
from effvid.deploy.onnx_export import INPUT_NAME, centre_clip
from effvid.extras import require
from effvid.files import atomic_write
from effvid.inference.onnx_runtime import OnnxRunner, read_onnx_metadata

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


def calibration_clips(
    videos: Sequence[str | Path], preprocessing: Preprocessing, input_shape: Sequence[int]
) -> list[torch.Tensor]:
    """The centre clip of each video, made as for prediction, to calibrate a static int8
    export: (1, 3, T, S, S) each."""
    return [centre_clip(video, preprocessing, input_shape) for video in videos]


def compare_runners(
    reference: str | Path, candidate: str | Path, clips: Sequence[torch.Tensor]
) -> dict[str, float]:
    """How far `candidate`'s logits are from `reference`'s (e.g. int8 against fp32): the largest
    absolute difference and the fraction of clips whose top-1 class agrees."""
    first, second = OnnxRunner(reference), OnnxRunner(candidate)
    differences, agree = [], 0
    for clip in clips:
        a, b = first(clip), second(clip)
        differences.append(float(np.abs(a - b).max()))
        agree += int((a.argmax(-1) == b.argmax(-1)).all())
    return {"max_abs_difference": max(differences), "top1_agreement": agree / len(clips)}


@dataclass(frozen=True)
class Int8Export:
    """An int8 copy of an exported file and how far its logits are from the fp32 file's."""

    path: Path
    calibrated: bool  # static (calibrated on real clips) or dynamic
    clips: int  # how many clips calibrated it, or compared it when dynamic
    max_abs_difference: float
    top1_agreement: float

    def __str__(self) -> str:
        kind = "static, calibrated on" if self.calibrated else "dynamic; compared on"
        return (
            f"wrote {self.path} ({self.path.stat().st_size / 2**20:.1f} MB, int8 {kind} "
            f"{self.clips} clips): max |int8 - fp32| logit {self.max_abs_difference:.3g}, "
            f"top-1 agreement {100 * self.top1_agreement:.0f}%"
        )


def quantize_export(
    path: str | Path, input_shape: Sequence[int], videos: Sequence[str | Path] = ()
) -> Int8Export:
    """`effvid export --int8`: an int8 copy of the exported file at `path`, static and calibrated
    on the centre clip of each of `videos` (preprocessed as the file says), or dynamic without
    videos; compared with the fp32 file on the same clips (8 random ones when dynamic)."""
    from effvid.inference.onnx_runtime import read_exported_model

    preprocessing = read_exported_model(path).preprocessing
    clips = calibration_clips(videos, preprocessing, input_shape)
    quantized = quantize_int8(path, calibration=clips)
    compared = clips or [
        torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(seed))
        for seed in range(8)
    ]
    change = compare_runners(path, quantized, compared)
    return Int8Export(
        quantized,
        bool(clips),
        len(compared),
        change["max_abs_difference"],
        change["top1_agreement"],
    )
