"""Keep a model's convolutions in a channels-last layout while saving plain state dicts, and
leave layouts (and eager fast paths) out of exported graphs."""

import torch
from torch import nn


def _contiguous_state_dict(module: nn.Module, state: dict, prefix: str, metadata: dict) -> None:
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            state[key] = value.contiguous()


def use_channels_last(model: nn.Module, memory_format: torch.memory_format) -> None:
    """Store the conv weights of `model` in `memory_format` (channels-last runs convs through
    oneDNN on CPU) while `model.state_dict()` still returns contiguous tensors, as users expect
    (safetensors, for one, refuses non-contiguous tensors)."""
    model.to(memory_format=memory_format)
    model.register_state_dict_post_hook(_contiguous_state_dict)


def is_exporting() -> bool:
    """Whether the model is being traced for export (the ONNX exporter or `torch.export`, which
    ExecuTorch starts from): an exported graph gets the plain operations, not the eager CPU fast
    paths or memory layouts, which export formats do not have."""
    return torch.onnx.is_in_onnx_export() or torch.compiler.is_exporting()
