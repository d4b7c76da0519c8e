"""The deployable streaming step of a causal Video Mobile-Former: what an app exports to run the
model live, a chunk of frames at a time, with the state as explicit tensors, every state and
every intermediate tensor at most 4-D (some mobile GPU delegates refuse 5-D tensors), every
operation one that ExecuTorch's XNNPACK delegate takes.

    step = deployable_stream_step(model, chunk=1)      # model: a causal VMF (causal=True)
    states = step.init_states(batch=1)                 # zeros: the start of a stream
    logits, *states = step(frames, *states)            # frames (B, 3, chunk, S, S)
    torch.export.export(step, (frames, *states))       # states in and out of the program

The step is built from the model's weights like `effvid.deploy.deployable` (BatchNorms folded,
the frames layout of `effvid.deploy.deployable_vmf`) and checked, when built, to reproduce the
eager `model.stream_step` over a 32-frame stream (every step's logits within `tolerance`).

Its states, in `step.state_names` order (the eager model's stream-state keys), batch-major:
for a causal temporal convolution (`stem.0`, `features.3.conv2.0`, ...) its last kt - 1 input
frames as images, (B * (kt - 1), C, H, W); for a Former layer (`features.3.global_block`, ...)
its tokens of the last frame, (B, M, D). The frames are the only 5-D tensor: the step's first
operation views them as 4-D.
"""

import torch
from torch import nn

from effvid.deploy.deployable import DEFAULT_TOLERANCE, DeployableError, deployable
from effvid.deploy.deployable_vmf import DeployableVMF
from effvid.models.layers.streaming import StreamState

CHECK_FRAMES = 32


class DeployableStreamStep(nn.Module):
    """(frames (B, 3, chunk, S, S), *states) -> (logits (B, chunk, K), *next_states), the
    states as `state_names` lists them, of `state_shapes(B)`."""

    def __init__(
        self, network: DeployableVMF, chunk: int, frame_size: int, shapes: dict[str, tuple]
    ) -> None:
        super().__init__()
        self.network = network
        self.chunk, self.frame_size = chunk, frame_size
        self.state_names = list(shapes)
        self._shapes = shapes  # for one stream

    def forward(self, frames: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        current = dict(zip(self.state_names, states, strict=True))
        state = StreamState(current, batch_size=frames.shape[0])
        with state.active():
            logits = self.network.forward_steps(frames)
        return (logits, *(state.tensors[name] for name in self.state_names))

    def state_shapes(self, batch: int = 1) -> dict[str, tuple[int, ...]]:
        """The shape of every state tensor for `batch` streams (dim 0 is batch-major)."""
        return {name: (batch * shape[0], *shape[1:]) for name, shape in self._shapes.items()}

    def init_states(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """The states at the start of `batch` streams: zeros (no history)."""
        return tuple(torch.zeros(shape) for shape in self.state_shapes(batch).values())

    def example_inputs(self, batch: int = 1) -> tuple[torch.Tensor, ...]:
        """Zero frames and zero states, to trace or export the step with."""
        frames = torch.zeros(batch, 3, self.chunk, self.frame_size, self.frame_size)
        return (frames, *self.init_states(batch))


def _state_shapes(network: DeployableVMF, chunk: int, frame_size: int) -> dict[str, tuple]:
    """The shapes of the state a step keeps, read off one step from the start of a stream."""
    probe = StreamState(batch_size=1)
    with torch.no_grad(), probe.active():
        network.forward_steps(torch.zeros(1, 3, chunk, frame_size, frame_size))
    return {name: tuple(tensor.shape) for name, tensor in probe.tensors.items()}


def _model_frame_size(model: nn.Module) -> int:
    from effvid.models import get_model_card

    name = getattr(model, "model_name", None)
    if name is None:
        raise DeployableError("pass frame_size: the model has no model card to read it from")
    return get_model_card(name).input_size


def stream_difference(step: DeployableStreamStep, model: nn.Module, frames: int) -> float:
    """The largest |step - model.stream_step| logit over a random stream of `frames` frames
    (a multiple of the chunk), both fed chunk by chunk from the start of the stream."""
    size, chunk = step.frame_size, step.chunk
    clip = torch.randn(1, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    states, eager_state, worst = step.init_states(1), model.init_stream(1), 0.0
    with torch.no_grad():
        for start in range(0, frames, chunk):
            frame = clip[:, :, start : start + chunk]
            expected, eager_state = model.stream_step(frame, eager_state)
            logits, *states = step(frame, *states)
            worst = max(worst, float((logits - expected).abs().max()))
    return worst


def deployable_stream_step(
    model: nn.Module,
    chunk: int = 1,
    *,
    frame_size: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> DeployableStreamStep:
    """The deployable streaming step of causal VMF `model` (see the module docstring), for
    chunks of `chunk` frames of `frame_size` px (default: the model card's input size),
    checked against `model.stream_step` over a 32-frame stream; DeployableError if it differs
    by more than `tolerance` or the model does not stream."""
    if not getattr(model, "causal", False):
        raise DeployableError(
            f"{type(model).__name__} has no streaming step: build it with causal=True"
        )
    if chunk < 1:
        raise DeployableError(f"chunk must be at least 1 frame, got {chunk}")
    frame_size = frame_size or _model_frame_size(model)
    example = torch.randn(1, 3, 2 * chunk, frame_size, frame_size)
    network = deployable(model.eval(), example, tolerance=tolerance)
    shapes = _state_shapes(network, chunk, frame_size)
    step = DeployableStreamStep(network, chunk, frame_size, shapes).eval()
    worst = stream_difference(step, model, CHECK_FRAMES - CHECK_FRAMES % chunk)
    if not worst <= tolerance:
        raise DeployableError(
            f"the deployable streaming step differs from the eager stream by {worst:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    return step
