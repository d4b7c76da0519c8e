"""OpenVINO's own model files (`.xml` with its weights in a `.bin` beside it) from an exported
ONNX file, carrying the same `effvid.*` metadata (in the file's runtime information, see
`effvid.inference.openvino_runtime`); and their int8 and bf16 copies.

int8: NNCF's post-training quantisation (`nncf.quantize`), calibrated on real clips, the way
OpenVINO's documentation quantises a model for its CPU plugin. bf16: the same graph, marked to
run in bf16 (`effvid.precision`), which OpenVINO's CPU plugin does natively on CPUs with
AVX512-BF16 or AMX.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from effvid.extras import require
from effvid.inference.openvino_runtime import METADATA_KEY, model_metadata


def save_openvino(model, path: str | Path, metadata: Mapping[str, str]) -> Path:
    """Write an OpenVINO model (`openvino.Model`) with `metadata` to `path` (.xml) and its .bin
    (fp32 weights as they are)."""
    ov = require("openvino", "openvino")
    model.set_rt_info(json.dumps(dict(metadata)), [METADATA_KEY])
    ov.save_model(model, str(path), compress_to_fp16=False)
    return Path(path)


def onnx_to_openvino(onnx_path: str | Path, path: str | Path, metadata: Mapping[str, str]) -> Path:
    """OpenVINO's file of an exported ONNX file, with `metadata`."""
    ov = require("openvino", "openvino")
    return save_openvino(ov.Core().read_model(str(onnx_path)), path, metadata)


def quantize_openvino(
    path: str | Path, output: str | Path, calibration: Sequence[torch.Tensor]
) -> Path:
    """An int8 copy of OpenVINO file `path` at `output`, calibrated by NNCF on `calibration`
    clips (each (1, 3, [T,] H, W), preprocessed as for prediction)."""
    ov = require("openvino", "openvino")
    nncf = require("nncf", "openvino")
    model = ov.Core().read_model(str(path))
    metadata = model_metadata(model, path) | {"effvid.precision": "int8"}
    dataset = nncf.Dataset([clip.numpy() for clip in calibration])
    ignored = nncf.IgnoredScope(
        names=channel_multiplier_convolutions(model), patterns=[FLOAT_IN_INT8], validate=False
    )
    quantized = nncf.quantize(model, dataset, subset_size=len(calibration), ignored_scope=ignored)
    return save_openvino(quantized, output, metadata)


# The nodes an int8 copy keeps in float besides those convolutions, by the module names of the
# exported model: a Mobile-Former's or VMF's global branch (the Former `global_block`, the
# bridges `local_global` and `global_local`) and its dynamic ReLUs (`hyper1`-`hyper3`, whose
# coefficients come from the tokens). With them quantised the demo VMF-XXS agreed with fp32 on
# 98.9% of its test videos, 99.3% with them in float (benchmarks/RESULTS.md).
FLOAT_IN_INT8 = r".*/(global_block|global_local|local_global|hyper\d)/.*"


def channel_multiplier_convolutions(model) -> list[str]:
    """The grouped convolutions of an `openvino.Model` that make several output channels of
    each input channel (VMF's depthwise convolutions with a channel multiplier), by name.

    The int8 copy keeps them in fp32: quantised by NNCF and run by OpenVINO 2026.4's CPU
    plugin, they made the trained demo VMF-XXS agree with fp32 on 24% of the demo test videos
    (99.6% with them in fp32; benchmarks/RESULTS.md). Their weights are (groups, out / groups,
    in / groups, *kernel)."""
    return [
        op.get_friendly_name()
        for op in model.get_ops()
        if op.get_type_name() == "GroupConvolution"
        and op.input_value(1).get_partial_shape()[1].get_length() > 1
    ]


def bf16_copy(path: str | Path, output: str | Path) -> Path:
    """A copy of OpenVINO file `path` at `output` that runs in bf16."""
    ov = require("openvino", "openvino")
    model = ov.Core().read_model(str(path))
    return save_openvino(model, output, model_metadata(model, path) | {"effvid.precision": "bf16"})
