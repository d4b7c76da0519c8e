"""One inference interface whatever runs the model.

A `ClipModel` maps preprocessed clips to logits; a `StreamModel` maps a chunk of frames and a
state to per-frame logits and the next state. Both say what they are (`info`: model card, class
names, preprocessing). `Predictor`, collections and live streams use only this interface, so a
runtime is added by adding its two classes here, not a code path in each of them.

    clips   (B, 3, T, H, W)                             -> logits (B, classes)
    frames  (B, 3, chunk, S, S), state                  -> logits (B, chunk, classes), state

An image model (its card not `is_video`: input (B, 3, H, W)) is refused when it is opened
(`effvid.models.registry.ImageModelError`), before any video is read.

Runtimes (`RUNTIMES`): `eager` (a checkpoint in PyTorch, BatchNorms folded as for any
deployment), `onnxruntime` and `openvino` (a file of `effvid export`, on the CPU). Logits come
back as float32 tensors on the CPU.
"""

from abc import ABC, abstractmethod
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from effvid.data.preprocessing import Preprocessing
from effvid.errors import EffvidError, InputError
from effvid.inference.exported_files import (
    ExportedStep,
    file_runner,
    read_exported_model,
    runtime_for,
)
from effvid.inference.metadata import ModelInfo, check_against_graph
from effvid.models import get_model_card
from effvid.models.fusion import fold_batchnorm
from effvid.models.registry import require_video_model
from effvid.models.weights import load_video_model


def inference_autocast(device: torch.device):
    """bf16 autocast for inference on a GPU; nothing on the CPU, where it does not pay off."""
    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return nullcontext()


class ClipModel(ABC):
    """Preprocessed clips -> logits, in some runtime."""

    runtime: str
    info: ModelInfo

    @abstractmethod
    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        """clips (B, 3, T, H, W) -> logits (B, classes), float32 on the CPU."""


class StreamModel(ABC):
    """A causal model's streaming step, in some runtime; the state is the runtime's own."""

    runtime: str
    info: ModelInfo

    @abstractmethod
    def init_state(self, batch_size: int = 1) -> Any:
        """The state of `batch_size` new streams (no history)."""

    @abstractmethod
    def step(self, frames: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """frames (B, 3, chunk, S, S) and a state -> logits (B, chunk, classes), next state."""


def _eager_network(
    checkpoint: str | Path, model: str | None, frames: int | None
) -> tuple[torch.nn.Module, ModelInfo]:
    """The checkpoint's network with its BatchNorms folded, and what it says about itself;
    `frames` is the clip length to fold on (default: the preprocessing's); an image model is
    refused (`ImageModelError`)."""
    network, report = load_video_model(model, checkpoint)
    card = get_model_card(network.model_name)
    preprocessing = Preprocessing.resolve(report.preprocessing, card)
    info = ModelInfo(card, list(report.class_names or []), preprocessing)
    example = torch.zeros(
        card.batch_shape(1, frames or preprocessing.num_frames, preprocessing.crop_size)
    )
    return fold_batchnorm(network, example), info


class EagerClipModel(ClipModel):
    """A trained checkpoint in eager PyTorch, on `device` (bf16 autocast on a GPU)."""

    runtime = "eager"

    def __init__(
        self, checkpoint: str | Path, *, model: str | None = None, device: str = "cpu"
    ) -> None:
        self.device = torch.device(device)
        network, self.info = _eager_network(checkpoint, model, None)
        self.network = network.to(self.device)

    @torch.no_grad()
    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        with inference_autocast(self.device):
            return self.network(clips.to(self.device)).float().cpu()


class ExportedClipModel(ClipModel):
    """An exported file (`.onnx`, `.xml`, `.pte`) run by `runtime` (default: the file's own)."""

    def __init__(
        self, path: str | Path, *, runtime: str | None = None, threads: int | None = None
    ) -> None:
        self.runtime = runtime_for(path, runtime)
        self.info = read_exported_model(path)
        require_video_model(self.info.card, path, weights="CHECKPOINT_IT_WAS_EXPORTED_FROM")
        self.runner = file_runner(self.runtime)(path, threads=threads)
        check_against_graph(self.info, self.runner, path)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.runner(clips))


class NotStreamableError(EffvidError, ValueError):
    """A model that cannot stream was given where a streaming step is needed."""


class EagerStreamModel(StreamModel):
    """A causal VMF checkpoint's `stream_step` in eager PyTorch on the CPU."""

    runtime = "eager"

    def __init__(self, checkpoint: str | Path, *, model: str | None = None) -> None:
        self.network, self.info = _eager_network(checkpoint, model, 1)
        if not getattr(self.network, "causal", False):
            raise NotStreamableError(
                f"{checkpoint} holds a model that is not causal: streaming needs one trained "
                "with model.args.causal=true"
            )

    def init_state(self, batch_size: int = 1) -> Any:
        return self.network.init_stream(batch_size)

    @torch.no_grad()
    def step(self, frames: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        return self.network.stream_step(frames, state)


class ExportedStreamModel(StreamModel):
    """A streaming step exported with `effvid export --stream`, run by `runtime` (default: the
    file's own)."""

    def __init__(
        self, path: str | Path, *, runtime: str | None = None, threads: int | None = None
    ) -> None:
        self.runtime = runtime_for(path, runtime)
        self.stream = ExportedStep(path, runtime=self.runtime, threads=threads)
        if self.stream.info is None:
            raise NotStreamableError(
                f"{path} carries no preprocessing (export it with `effvid export --stream`)"
            )
        self.info = self.stream.info

    def init_state(self, batch_size: int = 1) -> Any:
        return self.stream.init_state(batch_size)

    def step(self, frames: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits, state = self.stream(frames, state)
        return torch.from_numpy(logits), state


def open_clip_model(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    onnx: str | Path | None = None,
    runtime: str | None = None,
    device: str = "cpu",
) -> ClipModel:
    """The clip model of a checkpoint (eager, with its registered `model` name if the checkpoint
    does not name it) or of an exported file (`onnx`, run by `runtime`, default ONNX Runtime)."""
    if onnx is not None:
        return ExportedClipModel(onnx, runtime=runtime)
    _refuse_runtime_for_checkpoint(runtime)
    if checkpoint is None:
        raise EffvidError("give a checkpoint (and its model name), or an exported ONNX file")
    return EagerClipModel(checkpoint, model=model, device=device)


def open_stream_model(
    checkpoint: str | Path | None = None,
    *,
    model: str | None = None,
    onnx: str | Path | None = None,
    runtime: str | None = None,
) -> StreamModel:
    """The streaming step of a causal checkpoint (eager) or of an exported step (`onnx`, run by
    `runtime`, default ONNX Runtime)."""
    if onnx is not None:
        return ExportedStreamModel(onnx, runtime=runtime)
    _refuse_runtime_for_checkpoint(runtime)
    if checkpoint is None:
        raise EffvidError("give a causal checkpoint or a streaming ONNX file")
    return EagerStreamModel(checkpoint, model=model)


def _refuse_runtime_for_checkpoint(runtime: str | None) -> None:
    if runtime not in (None, "eager"):
        raise InputError(
            f"a checkpoint runs in eager PyTorch; export it (`effvid export`) to run {runtime}"
        )
