"""Exported ONNX files run with ONNX Runtime on the CPU (`OnnxRunner`), and their metadata.

An effvid ONNX file takes `video` (B, 3, [T,] H, W) and gives `logits` (B, classes); a streaming
step takes `frames` (B, 3, chunk, S, S) and `state.<layer>` tensors and gives `logits`
(B, chunk, classes) and `next_state.<layer>` (`effvid.deploy.stream_export` writes both).
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from effvid.errors import ModelFileError
from effvid.extras import require


def float_arrays(inputs: Mapping[str, torch.Tensor | np.ndarray]) -> dict[str, np.ndarray]:
    """Named inputs as the contiguous float32 arrays the runtimes take."""
    return {
        name: np.ascontiguousarray(
            value.numpy() if isinstance(value, torch.Tensor) else value, np.float32
        )
        for name, value in inputs.items()
    }


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an ONNX file as a dict of strings."""
    onnx = require("onnx", "onnx")
    if not Path(path).is_file():
        raise ModelFileError(f"ONNX file {str(path)!r} does not exist or is not a file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise ModelFileError(
            f"{path} is not a readable ONNX file ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})"
        ) from None
    return {prop.key: prop.value for prop in proto.metadata_props}


class OnnxRunner:
    """Run an exported model with ONNX Runtime on CPU: clips (B, 3, [T,] H, W) -> logits."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        ort = require("onnxruntime", "onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        # ORT's idle threads spin by default, taking the cores from what runs next in this
        # process (decoding, preprocessing, an eager model): an eager call after them took 2.2x
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # ONNX Runtime's own error types
            first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
            raise ModelFileError(f"ONNX Runtime cannot load {path}: {first}") from None
        self.input_name = self.session.get_inputs()[0].name
        self.input_shapes = [_dimensions(port.shape) for port in self.session.get_inputs()]
        self.output_shapes = [_dimensions(port.shape) for port in self.session.get_outputs()]

    def __call__(self, clips: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.run({self.input_name: clips})[0]

    def run(self, inputs: Mapping[str, torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """Every output, for named float inputs."""
        return self.session.run(None, float_arrays(inputs))


def _dimensions(shape: list) -> list[int | None]:
    """An ONNX Runtime port's shape, None for a named (dynamic) axis."""
    return [d if isinstance(d, int) else None for d in shape]
