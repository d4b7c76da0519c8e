"""Export a model to ONNX, check it with ONNX Runtime, and read back what it carries.

The file is self-contained (weights inside, no `.onnx.data` beside it), opset 17, with a fixed
or dynamic batch axis. It is made by PyTorch's TorchScript-based exporter: on our pinned torch it
exports every registered model in 1-3 s (the newer torch.export-based one takes 7-30 s per
model here), its opset 17 is read by more edge runtimes and converters than the newer
exporter's opset 20, and ONNX Runtime's int8 quantiser takes its output directly.

Its metadata carries the model card (input shape, frames, size, mean/std, sampling) and the
class names, as JSON strings under the `effvid.*` keys, so that a runtime needs nothing else to
preprocess and label.
"""

import copy
import json
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from effvid.data.preprocessing import EvalClips, Preprocessing
from effvid.errors import EffvidError
from effvid.models import ModelCard
from effvid.version import __version__

INPUT_NAME = "video"
OUTPUT_NAME = "logits"
DEFAULT_TOLERANCE = 1e-4
DEFAULT_OPSET = 17
QUANTIZED_OPS = ["Conv", "MatMul", "Gemm"]  # what a static int8 export quantises


class OnnxExportError(EffvidError, RuntimeError):
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


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise OnnxExportError(
            f"ONNX support needs the '{module}' package: pip install 'effvid[onnx]'"
        ) from None


def card_metadata(
    card: ModelCard,
    input_shape: Sequence[int],
    class_names: Sequence[str] = (),
    preprocessing: Preprocessing | None = None,
) -> dict[str, str]:
    """The metadata an exported file carries: JSON strings keyed `effvid.*`: the model card (with
    the exported `input_shape`), the class names and the preprocessing of its input."""
    card_fields = asdict(card) | {"input_shape": list(input_shape)}
    preprocessing = preprocessing or Preprocessing.from_card(card)
    return {
        "effvid.version": __version__,
        "effvid.card": json.dumps(card_fields),
        "effvid.class_names": json.dumps(list(class_names)),
        "effvid.preprocessing": json.dumps(preprocessing.as_dict()),
    }


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
    onnx = _require("onnx")
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


def read_onnx_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of an ONNX file as a dict of strings."""
    onnx = _require("onnx")
    if not Path(path).is_file():
        raise OnnxExportError(f"ONNX file {str(path)!r} does not exist or is not a file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as error:
        raise OnnxExportError(
            f"{path} is not a readable ONNX file ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})"
        ) from None
    return {prop.key: prop.value for prop in proto.metadata_props}


@dataclass(frozen=True)
class ExportedModel:
    """What an effvid ONNX file says about its model: card, class names, preprocessing."""

    card: ModelCard
    class_names: list[str]
    preprocessing: Preprocessing


def read_exported_model(path: str | Path) -> ExportedModel:
    """The effvid metadata of an exported file; OnnxExportError, saying what is wrong, for a file
    that is not ONNX, was not exported by effvid, or carries malformed metadata."""
    metadata = read_onnx_metadata(path)
    if "effvid.card" not in metadata:
        raise OnnxExportError(
            f"{path} carries no effvid metadata (effvid.card): export it with `effvid export`"
        )
    try:
        card_fields = json.loads(metadata["effvid.card"])
        card_fields.pop("input_shape", None)
        card_fields["mean"], card_fields["std"] = (
            tuple(card_fields["mean"]),
            tuple(card_fields["std"]),
        )
        card = ModelCard(**card_fields)
        class_names = [str(name) for name in json.loads(metadata.get("effvid.class_names", "[]"))]
        stored = metadata.get("effvid.preprocessing")
        preprocessing = Preprocessing.resolve(json.loads(stored) if stored else None, card)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise OnnxExportError(
            f"{path} carries malformed effvid metadata ({type(error).__name__}: {error})"
        ) from None
    return ExportedModel(card, class_names, preprocessing)


class OnnxRunner:
    """Run an exported model with ONNX Runtime on CPU: clips (B, 3, [T,] H, W) -> logits."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        ort = _require("onnxruntime")
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
            raise OnnxExportError(f"ONNX Runtime cannot load {path}: {first}") from None
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, clips: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.run({self.input_name: clips})[0]

    def run(self, inputs: Mapping[str, torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """Every output, for named float inputs."""
        arrays = {
            name: np.ascontiguousarray(
                value.numpy() if isinstance(value, torch.Tensor) else value, np.float32
            )
            for name, value in inputs.items()
        }
        return self.session.run(None, arrays)


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


def _video_clip(
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


@contextmanager
def written_in_place(path: Path) -> Iterator[Path]:
    """A temporary file beside `path` to write and check; it replaces `path` only when the block
    succeeds, so a failed export or check never destroys the file already there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}.onnx")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


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
        inputs[f"video {Path(video).name}"] = _video_clip(video, preprocessing, input_shape)
    metadata = card_metadata(card, input_shape, class_names, preprocessing)
    output = Path(output or f"{model.model_name}.onnx")
    with written_in_place(output) as temporary:
        export_onnx(model, temporary, input_shape, dynamic_batch=dynamic_batch, metadata=metadata)
        check = check_onnx(temporary, model, inputs, tolerance=tolerance)
    return ExportResult(output, input_shape, dynamic_batch, read_onnx_metadata(output), check)


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
    onnx = _require("onnx")
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
    with written_in_place(output) as temporary:
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
    return [_video_clip(video, preprocessing, input_shape) for video in videos]


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
