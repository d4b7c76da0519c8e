"""`effvid export`: a registered model or a trained checkpoint as a file for a runtime, checked
against the eager model before it is kept, with int8 and bf16 copies checked against it.

    format       file              runs in                     int8 copy                bf16 copy
    onnx         <name>.onnx       ONNX Runtime, OpenVINO      ONNX Runtime's (QDQ)     -
    openvino     <name>.xml+.bin   OpenVINO                    NNCF                     yes
    executorch   <name>.pte        ExecuTorch (XNNPACK)        XNNPACK's quantiser      -

Every file carries the model card, the class names and the preprocessing of its input (the
exported clip length and crop size: a file made for other clips than the checkpoint's says so).
The fp32 file must give the eager model's logits within `tolerance` on random clips and on a
clip of each `check_videos`; a copy must agree with the fp32 file on the top-1 class of at
least 99% of the `check_data` clips and lose at most 1 point of accuracy
(`effvid.deploy.precision_check`), or it is not kept.
"""

import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch
from torch import nn

from effvid.data.preprocessing import Preprocessing
from effvid.deploy.onnx_export import (
    DEFAULT_OPSET,
    DEFAULT_TOLERANCE,
    OnnxCheck,
    OnnxExportError,
    centre_clip,
    check_onnx,
    export_onnx,
)
from effvid.deploy.openvino_export import onnx_to_openvino
from effvid.deploy.precision_check import (
    LabelledClips,
    PrecisionCheck,
    compare_precision,
    enforce,
    labelled_clips,
)
from effvid.errors import InputError
from effvid.files import atomic_write
from effvid.inference.exported_files import read_file_metadata
from effvid.inference.metadata import card_metadata
from effvid.models import ModelCard

FORMATS = {"onnx": ".onnx", "openvino": ".xml", "executorch": ".pte"}
RUNTIME_OF_FORMAT = {"onnx": "onnxruntime", "openvino": "openvino", "executorch": "executorch"}
CHECK_CLIPS = 200  # videos of --check-data compared at most


@dataclass(frozen=True)
class ExportPlan:
    """What an export is made of: the model, its card, the input it is exported for and the
    metadata its file carries."""

    model: nn.Module
    card: ModelCard
    preprocessing: Preprocessing
    input_shape: tuple[int, ...]
    metadata: dict[str, str]


def plan_export(
    name: str | None,
    checkpoint: str | Path | None,
    *,
    batch: int = 1,
    frames: int | None = None,
    size: int | None = None,
) -> ExportPlan:
    """The model to export (registered `name`, with a checkpoint's weights, class names and
    preprocessing if given; `name` None: the model the checkpoint names) at its clip length and
    crop size, or at `frames` and `size`, which the preprocessing in the metadata then says (the
    short side scaled with the crop)."""
    from effvid.models import create_model, get_model_card
    from effvid.models.weights import load_model

    class_names: list[str] = []
    stored = None
    if checkpoint is None:
        if name is None:
            raise OnnxExportError("give a registered model name or a checkpoint to export")
        model = create_model(name)
    else:
        model, report = load_model(name, checkpoint)
        class_names, stored = report.class_names or [], report.preprocessing
    card = get_model_card(model.model_name)
    preprocessing = Preprocessing.resolve(stored, card)
    crop = size or preprocessing.crop_size
    preprocessing = replace(
        preprocessing,
        num_frames=frames or preprocessing.num_frames,
        crop_size=crop,
        short_side=max(crop, round(preprocessing.short_side * crop / preprocessing.crop_size)),
    )
    input_shape = card.batch_shape(batch, preprocessing.num_frames, crop)
    _refuse_too_small(model.eval(), input_shape, card.name)
    metadata = card_metadata(card, input_shape, class_names, preprocessing)
    return ExportPlan(model.eval(), card, preprocessing, tuple(input_shape), metadata)


def _refuse_too_small(model: nn.Module, input_shape: Sequence[int], name: str) -> None:
    """InputError when the model cannot take clips of `input_shape` (a crop smaller than its
    downsampling, a clip shorter than its temporal kernels)."""
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape[1:]))
    except RuntimeError as error:
        reason = str(error).splitlines()[0][:160]
        raise InputError(
            f"{name} cannot take clips of {list(input_shape[1:])} ({reason}): export it at a "
            "larger --size or more --frames"
        ) from None


@dataclass(frozen=True)
class Export:
    """An exported file, how it was checked, and its reduced-precision copies."""

    path: Path
    format: str
    input_shape: tuple[int, ...]
    dynamic_batch: bool
    check: OnnxCheck
    copies: list[PrecisionCheck] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, str]:
        return read_file_metadata(self.path)

    def __str__(self) -> str:
        size_mb = _file_size(self.path) / 2**20
        batch = "dynamic batch" if self.dynamic_batch else f"batch {self.input_shape[0]}"
        kind = f"onnx opset {DEFAULT_OPSET}" if self.format == "onnx" else self.format
        lines = [
            f"wrote {self.path} ({kind}, {size_mb:.1f} MB, input "
            f"{self.input_shape[1:]} with {batch})",
            str(self.check),
            *map(str, self.copies),
            *self.notes,
        ]
        return "\n".join(lines)


def _file_size(path: Path) -> int:
    weights = path.with_suffix(".bin")
    return path.stat().st_size + (weights.stat().st_size if path.suffix == ".xml" else 0)


def output_path(output: str | Path | None, model_name: str, format: str) -> Path:
    """`output`, which must end as the format's files do, or `<model name><suffix>`."""
    suffix = FORMATS[format]
    if output is None:
        return Path(f"{model_name}{suffix}")
    if Path(output).suffix.lower() != suffix:
        raise InputError(f"an {format} file ends in {suffix}: {output} does not")
    return Path(output)


def copy_path(path: Path, precision: str) -> Path:
    """Where the `precision` copy of `path` goes: `x3d_xs.onnx` -> `x3d_xs.int8.onnx`."""
    return path.with_suffix(f".{precision}{path.suffix}")


def export_registered_model(
    name: str | None,
    output: str | Path | None = None,
    *,
    format: str = "onnx",
    checkpoint: str | Path | None = None,
    batch: int = 1,
    dynamic_batch: bool = True,
    frames: int | None = None,
    size: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    check_videos: Sequence[str | Path] = (),
    int8: bool = False,
    bf16: bool = False,
    calibration: Sequence[str | Path] = (),
    check_data: str | Path | None = None,
    check_clips: int = CHECK_CLIPS,
    limits: Mapping[str, float] | None = None,
) -> Export:
    """Export a model for `format` (see the module docstring) and check it; with `int8` /
    `bf16`, also its copies, calibrated on the centre clips of `calibration` videos and checked
    on the labelled `check_data` (on the calibration clips, without labels, when not given) and
    kept within `limits` (`min_agreement`, `max_accuracy_drop`: `precision_check.enforce`).
    ExecuTorch programs take a fixed batch of 1."""
    if format not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if bf16 and format != "openvino":
        raise InputError("bf16 copies are for OpenVINO (--runtime openvino)")
    if int8 and format != "onnx" and not calibration:
        raise InputError(f"an int8 {format} file is calibrated: give --calibration videos")
    if format == "executorch":
        batch, dynamic_batch = 1, False
    plan = plan_export(name, checkpoint, batch=batch, frames=frames, size=size)
    output = output_path(output, plan.model.model_name, format)
    inputs = _check_inputs(plan, dynamic_batch, check_videos)
    runtime = RUNTIME_OF_FORMAT[format]
    with staged(output) as staging:
        if format == "executorch":
            _write_executorch(plan, staging)
        else:
            onnx = staging if format == "onnx" else staging.with_suffix(".onnx")
            export_onnx(plan.model, onnx, plan.input_shape, dynamic_batch=dynamic_batch,
                        metadata=plan.metadata)  # fmt: skip
            if format == "openvino":
                onnx_to_openvino(onnx, staging, plan.metadata)
        check = check_onnx(staging, plan.model, inputs, tolerance=tolerance, runtime=runtime)
    export = Export(output, format, plan.input_shape, dynamic_batch, check)
    if int8 or bf16:
        clips = [centre_clip(v, plan.preprocessing, plan.input_shape) for v in calibration]
        data = (
            labelled_clips(check_data, output, plan.input_shape, check_clips)
            if check_data is not None
            else LabelledClips(clips, None, f"{len(clips)} calibration clips (unlabelled)")
        )
        if not data.clips:
            raise InputError("give --check-data (labelled videos) to check a reduced copy on")
        for precision in ("int8",) * int8 + ("bf16",) * bf16:
            target = copy_path(output, precision)
            with staged(target) as staging:
                _write_copy(format, plan, output, staging, precision, clips)
                check = compare_precision(output, staging, precision, data, runtime=runtime)
                enforce(check, **(limits or {}))
            export.copies.append(replace(check, path=target))
    return export


@contextmanager
def staged(path: Path) -> Iterator[Path]:
    """A path to write `path`'s new file to (an OpenVINO .xml with its .bin beside it) in a
    private folder beside it; moved into place when the block ends without an error (the .bin
    first), dropped otherwise."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.partial-") as folder:
        staging = Path(folder) / f"model{path.suffix}"
        yield staging
        parts = [".bin", ".xml"] if path.suffix == ".xml" else [path.suffix]
        for suffix in parts:
            with atomic_write(path.with_suffix(suffix)) as temporary:
                os.replace(staging.with_suffix(suffix), temporary)


def _write_executorch(plan: ExportPlan, path: Path, calibration: Sequence[torch.Tensor] = ()):
    from effvid.deploy.deployable import deployable
    from effvid.deploy.executorch_export import write_executorch

    example = torch.randn(plan.input_shape, generator=torch.Generator().manual_seed(0))
    network = deployable(plan.model, example)
    write_executorch(network, path, (example,), plan.metadata, calibration=calibration)


def _write_copy(
    format: str,
    plan: ExportPlan,
    fp32: Path,
    path: Path,
    precision: str,
    calibration: Sequence[torch.Tensor],
) -> None:
    """Write the `precision` copy of the fp32 file `fp32` to `path`."""
    if format == "executorch":
        _write_executorch(plan, path, calibration)
    elif format == "openvino":
        from effvid.deploy.openvino_export import bf16_copy, quantize_openvino

        if precision == "bf16":
            bf16_copy(fp32, path)
        else:
            quantize_openvino(fp32, path, calibration)
    else:
        from effvid.deploy.quantize import quantize_int8

        quantize_int8(fp32, path, calibration=calibration)


def _check_inputs(
    plan: ExportPlan, dynamic_batch: bool, check_videos: Sequence[str | Path]
) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    batch = plan.input_shape[0]
    inputs = {f"random batch {batch}": torch.randn(plan.input_shape, generator=generator)}
    if dynamic_batch:
        inputs["random batch 3"] = torch.randn((3, *plan.input_shape[1:]), generator=generator)
    for video in check_videos:
        inputs[f"video {Path(video).name}"] = centre_clip(
            video, plan.preprocessing, plan.input_shape
        )
    return inputs
