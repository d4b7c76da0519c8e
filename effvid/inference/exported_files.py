"""Exported model files, whatever their runtime: which runtimes run a file (by its suffix), the
`effvid.*` metadata it carries, the runner of each runtime, and a file's streaming step.

    .onnx   ONNX Runtime (default) or OpenVINO     metadata: the ONNX metadata properties
    .xml    OpenVINO (with its .bin beside it)     metadata: runtime information
    .pte    ExecuTorch (XNNPACK)                   metadata: a constant method

Every runner takes `(path, threads=...)`, maps clips to logits when called, runs named inputs
to every output with `run`, and knows its ports' shapes (`input_shapes`, `output_shapes`,
None for a dynamic axis).
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from effvid.errors import InputError, ModelFileError
from effvid.inference.metadata import ModelInfo, check_against_graph, parse_metadata

FRAMES_NAME = "frames"
FILE_RUNTIMES = {
    ".onnx": ("onnxruntime", "openvino"),
    ".xml": ("openvino",),
    ".pte": ("executorch",),
}


def file_runtimes(path: str | Path) -> tuple[str, ...]:
    """The runtimes that run `path`, the default first; InputError for an unknown kind."""
    suffix = Path(path).suffix.lower()
    if suffix not in FILE_RUNTIMES:
        kinds = ", ".join(FILE_RUNTIMES)
        raise InputError(f"{path} is not an exported model file ({kinds}): export one first")
    return FILE_RUNTIMES[suffix]


def runtime_for(path: str | Path, runtime: str | None = None) -> str:
    """`runtime` if it runs `path`, or the file's default runtime when None."""
    runtimes = file_runtimes(path)
    runtime = "onnxruntime" if runtime == "onnx" else runtime
    if runtime is None:
        return runtimes[0]
    if runtime == "eager":
        raise InputError(
            f"an exported file runs in {', '.join(runtimes)}, not eager PyTorch (give the "
            "checkpoint instead)"
        )
    if runtime not in runtimes:
        raise InputError(
            f"{Path(path).name} runs in {' or '.join(runtimes)}, not {runtime} "
            f"(export it with `effvid export --runtime {runtime}`)"
        )
    return runtime


def file_runner(runtime: str) -> Callable[..., Any]:
    """The class that runs an exported file in `runtime`: `runner(path, threads=...)`."""
    if runtime == "onnxruntime":
        from effvid.inference.onnx_runtime import OnnxRunner

        return OnnxRunner
    if runtime == "openvino":
        from effvid.inference.openvino_runtime import OpenVinoRunner

        return OpenVinoRunner
    if runtime == "executorch":
        from effvid.inference.executorch_runtime import ExecuTorchRunner

        return ExecuTorchRunner
    raise InputError(f"no runtime runs exported files as {runtime!r}")


def read_file_metadata(path: str | Path) -> dict[str, str]:
    """The `effvid.*` metadata of an exported file of any kind, as a dict of strings."""
    suffix = Path(path).suffix.lower()
    file_runtimes(path)
    if suffix == ".xml":
        from effvid.inference.openvino_runtime import read_openvino_metadata

        return read_openvino_metadata(path)
    if suffix == ".pte":
        from effvid.inference.executorch_runtime import read_executorch_metadata

        return read_executorch_metadata(path)
    from effvid.inference.onnx_runtime import read_onnx_metadata

    return read_onnx_metadata(path)


def read_exported_model(path: str | Path) -> ModelInfo:
    """What an exported file says about itself; ModelFileError, saying what is wrong, for a file
    that effvid did not export or whose metadata is malformed."""
    return parse_metadata(read_file_metadata(path), path)


def open_runner(path: str | Path, runtime: str | None = None, threads: int | None = None):
    """The runner of `path` in `runtime` (default: the file's own)."""
    return file_runner(runtime_for(path, runtime))(path, threads=threads)


class ExportedStep:
    """The streaming step of an exported file (`effvid export --stream`) in any runtime that
    runs it: `state = step.init_state()`, then `logits, state = step(frames, state)`; frames
    (B, 3, chunk, S, S) -> logits (B, chunk, classes), the state a list of arrays."""

    def __init__(
        self, path: str | Path, *, runtime: str | None = None, threads: int | None = None
    ) -> None:
        metadata = read_file_metadata(path)
        if "effvid.stream" not in metadata:
            raise ModelFileError(f"{path} is not a streaming step (`effvid export --stream`)")
        try:
            stream = json.loads(metadata["effvid.stream"])
            self.names, self.shapes = list(stream["state_shapes"]), stream["state_shapes"]
            self.chunk, self.frame_size = int(stream["chunk"]), int(stream["frame_size"])
        except (ValueError, TypeError, KeyError) as error:
            raise ModelFileError(f"{path} carries a malformed effvid.stream ({error})") from None
        self.runner = open_runner(path, runtime, threads)
        # card, class names, preprocessing (absent from a bare export_stream_step)
        self.info = parse_metadata(metadata, path) if "effvid.card" in metadata else None
        if self.info is not None:
            check_against_graph(self.info, self.runner, path, frames_axis=True)

    def init_state(self, batch_size: int = 1) -> list[np.ndarray]:
        """Zeros: the start of `batch_size` streams. The stored shapes are one stream's, batch
        first (B, ...) or batch-major (B * n, ...), so the first axis scales with the batch."""
        return [
            np.zeros([batch_size * self.shapes[n][0], *self.shapes[n][1:]], np.float32)
            for n in self.names
        ]

    def __call__(
        self, frames: torch.Tensor | np.ndarray, state: list[np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        named = zip(self.names, state, strict=True)
        inputs = {FRAMES_NAME: frames, **{f"state.{name}": tensor for name, tensor in named}}
        logits, *following = self.runner.run(inputs)
        return logits, following
