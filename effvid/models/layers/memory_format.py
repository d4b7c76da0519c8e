"""Keep a model's convolutions in a channels-last layout while saving plain state dicts."""

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
