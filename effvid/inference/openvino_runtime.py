"""Exported ONNX files run with OpenVINO on the CPU: the same files, inputs and outputs as
`effvid.inference.onnx_runtime`, another engine.

OpenVINO reads effvid's ONNX exports unchanged. Its CPU plugin would pick bf16 by itself on a
CPU with AMX or AVX512-BF16; here the precision is asked for explicitly (`f32` by default, so
that the outputs are the exported model's), and the threads are the caller's.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from effvid.errors import InputError, ModelFileError
from effvid.extras import require
from effvid.inference.onnx_runtime import float_arrays

PRECISIONS = {"fp32": "f32", "bf16": "bf16"}


class OpenVinoRunner:
    """Run an exported model with OpenVINO on the CPU: clips (B, 3, [T,] H, W) -> logits, or
    every output for named inputs (`run`), in the graph's output order."""

    def __init__(
        self, path: str | Path, *, threads: int | None = None, precision: str = "fp32"
    ) -> None:
        ov = require("openvino", "openvino")
        if precision not in PRECISIONS:
            raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        config = {"INFERENCE_PRECISION_HINT": PRECISIONS[precision], "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            core = ov.Core()
            self.compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        except Exception as error:  # OpenVINO's own error types
            first = str(error).strip().splitlines()[0][:200] if str(error) else type(error).__name__
            raise ModelFileError(f"OpenVINO cannot load {path}: {first}") from None
        self.request = self.compiled.create_infer_request()
        self.input_name = self.compiled.inputs[0].get_any_name()

    def __call__(self, clips: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.run({self.input_name: clips})[0]

    def run(self, inputs: Mapping[str, torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """Every output, for named float inputs."""
        results = self.request.infer(float_arrays(inputs))
        return [np.array(results[output]) for output in self.compiled.outputs]
