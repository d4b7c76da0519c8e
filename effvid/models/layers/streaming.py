"""Streaming: run a causal video model over an endless stream chunk by chunk, each layer that
looks back in time carrying what it needs from the past (its state), so that the outputs of a
chunk equal those the whole stream would give at once (MoViNet's stream buffers, Kondratyuk et
al., CVPR 2021, here also for a Transformer's tokens).

A `StreamState` holds, per streaming layer (by its path in the model), one tensor: a causal
convolution the last kt-1 frames of its input, a causal Former the tokens it produced for the
last frame. Its size does not grow with the stream. While a state is active (`with
state.active():`) the streaming layers read and update it; without one, a clip is the start of a
stream (zero history), which is how a causal model trains on whole clips.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import nn

from effvid.errors import InputError


class StreamState:
    """What a model's streaming layers carry from one chunk to the next, for `batch_size`
    streams; empty at the start of a stream (every layer then starts from zero history)."""

    def __init__(
        self, tensors: dict[str, torch.Tensor] | None = None, *, batch_size: int = 1
    ) -> None:
        self.tensors: dict[str, torch.Tensor] = dict(tensors or {})
        self.batch_size = batch_size

    @contextmanager
    def active(self) -> Iterator["StreamState"]:
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def numel(self) -> int:
        return sum(tensor.numel() for tensor in self.tensors.values())


_ACTIVE: ContextVar[StreamState | None] = ContextVar("effvid_stream_state", default=None)


class StreamingLayer:
    """Mixin of a layer that carries a tensor across chunks. `stream_key` (its path in the
    model) is set by the model that owns it (`name_streaming_layers`)."""

    stream_key = ""

    def past(self) -> torch.Tensor | None:
        """This layer's tensor from the previous chunk; None at the start of a stream."""
        state = _ACTIVE.get()
        return None if state is None else state.tensors.get(self.stream_key)

    def keep(self, tensor: torch.Tensor) -> None:
        """Hand `tensor` to this layer's next chunk (when streaming)."""
        state = _ACTIVE.get()
        if state is not None:
            state.tensors[self.stream_key] = tensor


def name_streaming_layers(model: nn.Module) -> None:
    for name, module in model.named_modules():
        if isinstance(module, StreamingLayer):
            module.stream_key = name


class CausalConv3d(StreamingLayer, nn.Conv3d):
    """A 3-D convolution that sees no future frame: its kt-1 frames of temporal padding are all
    on the past side (zeros at the start of a stream, the previous chunk's last input frames
    when streaming); spatial padding as given. Stride 1 in time. The same parameters as
    `nn.Conv3d`, so a checkpoint of the non-causal model loads.

    x: (B, C, T, H, W) -> (B, C', T, H', W').
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.stride[0] != 1 or self.padding[0] != 0:
            raise InputError("a causal conv has temporal stride 1 and no symmetric time padding")
        self.history = self.kernel_size[0] - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        past = self.past()
        if past is None:  # the start of a stream: zero history
            past = x.new_zeros(*x.shape[:2], self.history, *x.shape[3:])
        x = torch.cat([past, x], dim=2)
        self.keep(x[:, :, x.shape[2] - self.history :].contiguous())
        return super().forward(x)
