"""Export a model to ONNX and check it with ONNX Runtime before it is kept.

The file is self-contained (weights inside, no `.onnx.data` beside it), opset 17, with a fixed
or dynamic batch axis. It is made by PyTorch's TorchScript-based exporter: on our pinned torch it
exports every registered model in 1-3 s (the newer torch.export-based one takes 7-30 s per
model here), its opset 17 is read by more edge runtimes and converters than the newer
exporter's opset 20, and ONNX Runtime's int8 quantiser takes its output directly.

Its metadata carries the model card (input shape, frames, size, mean/std, sampling) and the
class names, as JSON strings under the `effvid.*` keys (`effvid.inference.metadata`), so that a
runtime needs nothing else to preprocess and label (`effvid.inference.onnx_runtime` reads it).
Quantisation: `effvid.deploy.quantize`.
"""

import copy
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effvid.data.preprocessing import EvalClips, Preprocessing
from effvid.errors import ModelFileError
from effvid.extras import require
from effvid.inference.exported_files import file_runner

INPUT_NAME = "video"
OUTPUT_NAME = "logits"
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 17


class OnnxExportError(ModelFileError):
    """Export failed, or the exported file does not reproduce the eager model."""


@dataclass(frozen=True)
class OnnxCheck:
    """Largest |runtime - eager PyTorch| over the logits of each checked input."""

    differences: Mapping[str, float]
    tolerance: float
    runtime: str = "onnxruntime"

    @property
    def worst(self) -> float:
        return max(self.differences.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {value:.2e}" for name, value in self.differences.items())
        return f"max |{self.runtime} - eager| on logits: {parts} (tolerance {self.tolerance:.0e})"


def export_onnx(
    model: nn.Module,
    path: str | Path,
    input_shape: Sequence[int],
    *,
    dynamic_batch: bool = True,
    metadata: Mapping[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write `model` (in eval mode) to one ONNX file taking `input_shape` (B, 3, [T,] H, W).

    With `dynamic_batch` the batch axis is free; otherwise it is `input_shape[0]`. The opset is
    recorded in the file's metadata (`effvid.opset`) besides `metadata`.
    """
    return trace_to_onnx(
        model,
        (torch.randn(*input_shape),),
        path,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_batch=dynamic_batch,
        metadata=metadata,
        opset=opset,
    )


def trace_to_onnx(
    model: nn.Module,
    example: tuple[torch.Tensor, ...],
    path: str | Path,
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_batch: bool = True,
    metadata: Mapping[str, str] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Trace `model(*example)` into one self-contained ONNX file with named inputs and outputs
    (axis 0 of each a free batch axis with `dynamic_batch`) and `metadata`."""
    onnx = require("onnx", "onnx")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ONNX has no memory layouts, and the tracer refuses channels-last parameters: trace a copy
    # whose weights are in the plain layout.
    model = copy.deepcopy(model).eval().to(memory_format=torch.contiguous_format)
    names = [*input_names, *output_names]
    dynamic_axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The exporter's deprecation notice, and tracer notes on shape checks done in Python
            # (the traced graph has the fixed T, H, W it was given, as intended).
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                example,
                str(path),
                dynamo=False,
                opset_version=opset,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes=dynamic_axes,
            )
    except Exception as error:
        name = getattr(model, "model_name", type(model).__name__)
        reason = str(error).splitlines()[0][:300]
        raise OnnxExportError(f"cannot export {name} to ONNX: {reason}") from error
    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {**(metadata or {}), "effvid.opset": str(opset)})
    onnx.save(proto, str(path))
    return path


def check_onnx(
    path: str | Path,
    model: nn.Module,
    inputs: Mapping[str, torch.Tensor],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    runtime: str = "onnxruntime",
) -> OnnxCheck:
    """Compare an exported file run by `runtime` with eager PyTorch on named inputs; raise if
    any logit differs more than `tolerance`, or if the runtime cannot run one of the inputs."""
    runner = file_runner(runtime)(path)
    differences = {}
    with torch.no_grad():
        for name, clips in inputs.items():
            expected = model.eval()(clips).numpy()
            try:
                got = runner(clips)
            except Exception as error:  # each runtime raises its own kinds
                reason = str(error).strip().splitlines()[0][:300]
                raise OnnxExportError(f"{path} fails in {runtime} on {name}: {reason}") from error
            differences[name] = float(np.abs(got - expected).max())
    check = OnnxCheck(differences, tolerance, runtime)
    if check.worst > tolerance:
        raise OnnxExportError(f"{path} does not reproduce the eager model: {check}")
    return check


def centre_clip(
    video: str | Path, preprocessing: Preprocessing, input_shape: Sequence[int]
) -> torch.Tensor:
    """The centre clip of a real video, made as `effvid predict` makes it (`EvalClips`) at the
    exported clip length: (1, 3, T, H, W); for an image model (input (B, 3, H, W)) one frame."""
    from effvid.data import open_video

    is_video = len(input_shape) == 5
    frames, size = (input_shape[2] if is_video else 1), input_shape[-1]
    clips = EvalClips(replace(preprocessing, num_frames=frames, crop_size=size))
    with open_video(video, short_side=preprocessing.short_side) as reader:
        clip = clips.clip(reader)  # (3, T, H, W)
    return (clip if is_video else clip[:, 0]).unsqueeze(0)
