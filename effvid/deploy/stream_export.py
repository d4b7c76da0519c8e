"""The streaming step of a causal Video Mobile-Former as an exported file: what an app on a device
ships to recognise actions live, frame by frame, with ONNX Runtime, OpenVINO or ExecuTorch and no
Python model.

The file computes one step, a chunk of frames and the state in, their logits and the next state
out, the state as explicit tensors:

    inputs   frames                      (B, 3, chunk, S, S), normalised as the metadata says
             state.<layer>               one per streaming layer of the model
    outputs  logits                      (B, chunk, num_classes), one row per frame
             next_state.<layer>          the same shapes as state.<layer>

`<layer>` is the layer's path in the model: for a causal temporal conv (`stem.0`,
`features.3.conv1.0`, ...) its last kt - 1 input frames (B, C, kt - 1, H, W); for a Former layer
(`features.3.global_block`, ...) its tokens of the last frame (B, M, D). A stream starts from all
zeros (`effvid.stream` in the metadata lists the names and shapes) and feeds each step the
`next_state` of the previous one. The metadata also carries the model card, the class names and
the preprocessing, as for `effvid export`. An ExecuTorch program holds the deployable step
(`effvid.deploy.deployable_stream`: the same function, its states at most 4-D, a convolution's
(B * (kt - 1), C, H, W)), with the inputs and outputs in the same order, unnamed.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effvid.data.preprocessing import Preprocessing
from effvid.deploy.onnx_export import DEFAULT_TOLERANCE, OnnxExportError, trace_to_onnx
from effvid.inference.exported_files import FRAMES_NAME, ExportedStep
from effvid.inference.metadata import card_metadata
from effvid.models.layers.streaming import StreamState

LOGITS_NAME = "logits"
CHECK_FRAMES = 32


def zero_state(model: nn.Module, frame_size: int, batch_size: int = 1) -> StreamState:
    """The start of `batch_size` streams with every state tensor present (zeros), as a runtime
    that needs fixed inputs wants it: the shapes come from one step on a blank frame."""
    probe = model.init_stream(batch_size)
    with torch.no_grad():
        model.stream_step(torch.zeros(batch_size, 3, 1, frame_size, frame_size), probe)
    return StreamState(
        {name: torch.zeros_like(tensor) for name, tensor in probe.tensors.items()},
        batch_size=batch_size,
    )


class StreamStep(nn.Module):
    """`model.stream_step` with the state as a flat list of tensors in `names` order."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, frames: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        current = StreamState(dict(zip(self.names, state, strict=True)), batch_size=len(frames))
        logits, following = self.model.stream_step(frames, current)
        return (logits, *(following.tensors[name] for name in self.names))


@dataclass(frozen=True)
class StreamExport:
    path: Path
    chunk: int
    frame_size: int
    state_shapes: dict[str, list[int]]
    worst_difference: float
    runtime: str = "onnxruntime"

    def __str__(self) -> str:
        size_mb = self.path.stat().st_size / 2**20
        return (
            f"wrote {self.path} ({size_mb:.1f} MB): the streaming step, {self.chunk} frame(s) of "
            f"{self.frame_size} px and {len(self.state_shapes)} state tensors in and out\n"
            f"max |{self.runtime} - eager| over a {CHECK_FRAMES}-frame stream: "
            f"{self.worst_difference:.2e}"
        )


def export_stream_step(
    model: nn.Module,
    output: str | Path,
    *,
    frame_size: int,
    chunk: int = 1,
    metadata: dict[str, str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    format: str = "onnx",
) -> StreamExport:
    """Export the streaming step of causal `model` (chunks of `chunk` frames of `frame_size`
    px; dynamic batch but for ExecuTorch, batch 1) for `format` (onnx, openvino: the step as
    it is; executorch: its deployable form, `effvid.deploy.deployable_stream`, 4-D states) and
    check it in that runtime against the eager model on a 32-frame stream; `output` is
    replaced only by a file that passed."""
    from effvid.deploy.export import RUNTIME_OF_FORMAT, staged

    model = model.eval()
    if format == "executorch":
        step, names, example = _deployable_step(model, frame_size, chunk)
    else:
        state = zero_state(model, frame_size)
        names = list(state.tensors)
        step = StreamStep(model, names)
        example = (torch.zeros(1, 3, chunk, frame_size, frame_size), *state.tensors.values())
    shapes = {name: list(tensor.shape) for name, tensor in zip(names, example[1:], strict=True)}
    stream_info = {"chunk": chunk, "frame_size": frame_size, "state_shapes": shapes}
    properties = {**(metadata or {}), "effvid.stream": json.dumps(stream_info)}
    output = Path(output)
    with staged(output) as staging:
        if format == "executorch":
            from effvid.deploy.executorch_export import write_executorch

            write_executorch(step, staging, example, properties)
        else:
            onnx = staging.with_suffix(".onnx")
            trace_to_onnx(
                step,
                example,
                onnx,
                input_names=[FRAMES_NAME, *(f"state.{name}" for name in names)],
                output_names=[LOGITS_NAME, *(f"next_state.{name}" for name in names)],
                metadata=properties,
            )
            if format == "openvino":
                from effvid.deploy.openvino_export import onnx_to_openvino

                onnx_to_openvino(onnx, staging, properties)
        runtime = RUNTIME_OF_FORMAT[format]
        worst = check_stream(staging, model, frame_size, chunk, runtime)
        if worst > tolerance:
            raise OnnxExportError(
                f"the exported streaming step differs from the eager model by {worst:.2e} "
                f"(tolerance {tolerance:.0e})"
            )
    return StreamExport(output, chunk, frame_size, shapes, worst, runtime)


def _deployable_step(
    model: nn.Module, frame_size: int, chunk: int
) -> tuple[nn.Module, list[str], tuple[torch.Tensor, ...]]:
    """The deployable step of `model`, its state names and example inputs (batch 1)."""
    from effvid.deploy.deployable_stream import deployable_stream_step

    step = deployable_stream_step(model, chunk, frame_size=frame_size)
    return step, list(step.state_names), step.example_inputs(1)


def check_stream(
    path: str | Path, model: nn.Module, frame_size: int, chunk: int, runtime: str | None = None
) -> float:
    """The largest |runtime - eager| logit over a random stream of CHECK_FRAMES frames, the
    exported step (run by `runtime`, default the file's own) fed chunk by chunk, eager on the
    whole stream at once."""
    generator = torch.Generator().manual_seed(0)
    frames = CHECK_FRAMES - CHECK_FRAMES % chunk
    clip = torch.randn(1, 3, frames, frame_size, frame_size, generator=generator)
    with torch.no_grad():
        expected = model.forward_steps(clip).numpy()
    stream = ExportedStep(path, runtime=runtime)
    state, outputs = stream.init_state(), []
    for start in range(0, frames, chunk):
        logits, state = stream(clip[:, :, start : start + chunk], state)
        outputs.append(logits)
    return float(np.abs(np.concatenate(outputs, axis=1) - expected).max())


def export_registered_stream(
    name: str | None,
    output: str | Path | None,
    *,
    checkpoint: str | Path,
    chunk: int = 1,
    tolerance: float = DEFAULT_TOLERANCE,
    format: str = "onnx",
) -> StreamExport:
    """`effvid export --stream`: the streaming step of a causal VMF checkpoint (`model.args`
    with `causal: true`) for `format`, with its class names and preprocessing in the
    metadata."""
    from effvid.deploy.export import FORMATS, output_path
    from effvid.models import get_model_card
    from effvid.models.weights import load_model

    model, report = load_model(name, checkpoint)
    if not getattr(model, "causal", False):
        raise OnnxExportError(
            f"{checkpoint} is not a causal model: train one with model.args.causal=true to stream"
        )
    card = get_model_card(model.model_name)
    preprocessing = Preprocessing.resolve(report.preprocessing, card)
    shape = card.batch_shape(1, chunk, preprocessing.crop_size)
    metadata = card_metadata(card, shape, report.class_names or [], preprocessing)
    target = output_path(output or f"{model.model_name}_stream{FORMATS[format]}", "", format)
    return export_stream_step(
        model,
        target,
        frame_size=preprocessing.crop_size,
        chunk=chunk,
        metadata=metadata,
        tolerance=tolerance,
        format=format,
    )
