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
from effvid.files import atomic_write
from effvid.inference.metadata import card_metadata
from effvid.inference.onnx_runtime import OnnxRunner, read_onnx_metadata

INPUT_NAME = "video"
OUTPUT_NAME = "logits"
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 17


class OnnxExportError(ModelFileError):
    """Export failed, or the exported file does not reproduce the eager model."""


@dataclass(frozen=True)
class OnnxCheck:
    """Largest |ONNX Runtime - eager PyTorch| over the logits of each checked input."""

    differences: Mapping[str, float]
    tolerance: float

    @property
    def worst(self) -> float:
        return max(self.differences.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{name} {value:.2e}" for name, value in self.differences.items())
        return f"max |onnxruntime - eager| on logits: {parts} (tolerance {self.tolerance:.0e})"


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
) -> OnnxCheck:
    """Compare ONNX Runtime with eager PyTorch on named inputs; raise if any logit differs more
    than `tolerance`."""
    runner = OnnxRunner(path)
    differences = {}
    with torch.no_grad():
        for name, clips in inputs.items():
            expected = model.eval()(clips).numpy()
            differences[name] = float(np.abs(runner(clips) - expected).max())
    check = OnnxCheck(differences, tolerance)
    if check.worst > tolerance:
        raise OnnxExportError(f"{path} does not reproduce the eager model: {check}")
    return check


@dataclass(frozen=True)
class ExportResult:
    path: Path
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    metadata: Mapping[str, str]
    check: OnnxCheck

    def __str__(self) -> str:
        size_mb = self.path.stat().st_size / 2**20
        batch = "dynamic batch" if self.dynamic_batch else f"batch {self.input_shape[0]}"
        return (
            f"wrote {self.path} ({size_mb:.1f} MB, opset {self.metadata['effvid.opset']}, "
            f"input {self.input_shape[1:]} with {batch})\n{self.check}"
        )


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


def export_registered_model(
    name: str | None,
    output: str | Path | None = None,
    *,
    checkpoint: str | Path | None = None,
    batch: int = 1,
    dynamic_batch: bool = True,
    frames: int | None = None,
    size: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    check_videos: Sequence[str | Path] = (),
) -> ExportResult:
    """Export a registered model (with a checkpoint's weights, class names and preprocessing,
    if given; its clip size by default; `name` None: the model the checkpoint names) and check
    it with ONNX Runtime on random clips and on a clip of each of `check_videos` (real footage,
    preprocessed as for prediction); raise if the outputs differ by more than `tolerance`.
    `output` (default `<model name>.onnx`) is replaced only by a file that passed the checks."""
    from effvid.models import create_model, get_model_card
    from effvid.models.weights import load_model

    class_names: list[str] = []
    stored_preprocessing = None
    if checkpoint is None:
        if name is None:
            raise OnnxExportError("give a registered model name or a checkpoint to export")
        model = create_model(name)
    else:
        model, report = load_model(name, checkpoint)
        class_names = report.class_names or []
        stored_preprocessing = report.preprocessing
    card = get_model_card(model.model_name)
    preprocessing = Preprocessing.resolve(stored_preprocessing, card)
    input_shape = card.batch_shape(
        batch, frames or preprocessing.num_frames, size or preprocessing.crop_size
    )
    generator = torch.Generator().manual_seed(0)
    inputs = {f"random batch {batch}": torch.randn(input_shape, generator=generator)}
    if dynamic_batch:
        inputs["random batch 3"] = torch.randn((3, *input_shape[1:]), generator=generator)
    for video in check_videos:
        inputs[f"video {Path(video).name}"] = centre_clip(video, preprocessing, input_shape)
    metadata = card_metadata(card, input_shape, class_names, preprocessing)
    output = Path(output or f"{model.model_name}.onnx")
    with atomic_write(output) as temporary:
        export_onnx(model, temporary, input_shape, dynamic_batch=dynamic_batch, metadata=metadata)
        check = check_onnx(temporary, model, inputs, tolerance=tolerance)
    return ExportResult(output, input_shape, dynamic_batch, read_onnx_metadata(output), check)
