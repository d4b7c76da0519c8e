"""Exported models run with OpenVINO on the CPU: its own files (`.xml` + `.bin`, written by
`effvid export --runtime openvino`) or the ONNX exports, which it reads unchanged; the same
inputs and outputs as `effvid.inference.onnx_runtime`, another engine.

An OpenVINO file keeps the `effvid.*` metadata as one JSON string in its runtime information
(`effvid_metadata`), and may ask for a precision (`effvid.precision`: `bf16` for a copy checked
in bf16; int8 copies carry their quantisation in the graph). OpenVINO's CPU plugin would pick
bf16 by itself on a CPU with AMX or AVX512-BF16; here the precision is asked for explicitly
(`fp32` unless the file or the caller says otherwise), and the threads are the caller's.
"""

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from effvid.errors import InputError, ModelFileError
from effvid.extras import require
from effvid.inference.onnx_runtime import float_arrays

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
METADATA_KEY = "effvid_metadata"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


def _read_model(path: str | Path):
    ov = require("openvino", "openvino")
    if not Path(path).is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist or is not a file")
    try:
        return ov.Core().read_model(str(path))
    except Exception as error:  # OpenVINO's own error types
        raise ModelFileError(f"OpenVINO cannot read {path}: {_first_line(error)}") from None


def read_openvino_metadata(path: str | Path) -> dict[str, str]:
    """The `effvid.*` metadata of an OpenVINO file as a dict of strings (empty if none)."""
    return model_metadata(_read_model(path), path)


def model_metadata(model, source: str | Path) -> dict[str, str]:
    """The `effvid.*` metadata of a read OpenVINO model (`openvino.Model`) from `source`."""
    if not model.has_rt_info([METADATA_KEY]):
        return {}
    try:
        metadata = json.loads(model.get_rt_info([METADATA_KEY]).astype(str))
    except ValueError:
        raise ModelFileError(f"{source} carries malformed effvid metadata (not JSON)") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{source} carries malformed effvid metadata (not an object)")
    return {str(key): str(value) for key, value in metadata.items()}


def supports_bf16() -> bool:
    """Whether OpenVINO's CPU plugin runs bf16 natively here (AVX512-BF16 or AMX)."""
    ov = require("openvino", "openvino")
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class OpenVinoRunner:
    """Run an exported model with OpenVINO on the CPU: clips (B, 3, [T,] H, W) -> logits, or
    every output for named inputs (`run`), in the graph's output order. `precision` None: the
    file's own (`effvid.precision` of an OpenVINO file), else fp32."""

    def __init__(
        self, path: str | Path, *, threads: int | None = None, precision: str | None = None
    ) -> None:
        model = _read_model(path)
        if precision is None:
            stored = model_metadata(model, path) if Path(path).suffix == ".xml" else {}
            precision = stored.get("effvid.precision", "fp32")
            precision = precision if precision in PRECISIONS else "fp32"  # int8: in the graph
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if precision == "bf16" and not supports_bf16():
            raise InputError(
                f"{path} runs in bf16, which this CPU does not support (it needs AVX512-BF16 or "
                "AMX): run its fp32 file"
            )
        config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        ov = require("openvino", "openvino")
        try:
            self.compiled = ov.Core().compile_model(model, "CPU", config)
        except Exception as error:  # OpenVINO's own error types
            raise ModelFileError(f"OpenVINO cannot load {path}: {_first_line(error)}") from None
        self.precision = precision
        self.request = self.compiled.create_infer_request()
        self.input_name = self.compiled.inputs[0].get_any_name()
        self.input_shapes = [_dimensions(port) for port in self.compiled.inputs]
        self.output_shapes = [_dimensions(port) for port in self.compiled.outputs]

    def __call__(self, clips: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.run({self.input_name: clips})[0]

    def run(self, inputs: Mapping[str, torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """Every output, for named float inputs."""
        results = self.request.infer(float_arrays(inputs))
        return [np.array(results[output]) for output in self.compiled.outputs]


def _dimensions(port) -> list[int | None]:
    """A port's shape, None for a dynamic axis."""
    return [None if d.is_dynamic else d.get_length() for d in port.get_partial_shape()]
