"""Inference copies of models with every BatchNorm folded into the convolution that feeds it:
one operation fewer per conv, the same function (up to float rounding).

In eval mode BatchNorm is a per-channel affine map, y = (x - mean) / sqrt(var + eps) * gamma +
beta, so after a convolution it can be folded into the convolution's weights and bias. Which
BatchNorm follows which convolution is read off a forward pass (the BatchNorm's input is the
convolution's output), so the same function serves every family; the folded copy is checked to
compute what the model computes.
"""

import copy

import torch
from torch import nn

CONVOLUTIONS = (nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm2d, nn.BatchNorm3d)


def _pairs(model: nn.Module, example: torch.Tensor) -> list[tuple[str, str]]:
    """(conv name, norm name) of every BatchNorm whose input is a convolution's output."""
    produced: dict[int, tuple[str, torch.Tensor]] = {}  # kept alive: ids are not reused
    found: list[tuple[str, str]] = []
    hooks = []
    for name, module in model.named_modules():
        if isinstance(module, CONVOLUTIONS):
            hooks.append(module.register_forward_hook(
                lambda m, args, out, name=name: produced.__setitem__(id(out), (name, out))
            ))  # fmt: skip
        if isinstance(module, NORMS):
            hooks.append(module.register_forward_pre_hook(
                lambda m, args, name=name: found.append((produced.get(id(args[0])), name))
            ))  # fmt: skip
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return [(source[0], norm) for source, norm in found if source is not None]


def _fold(conv: nn.Conv2d | nn.Conv3d, norm: nn.BatchNorm2d | nn.BatchNorm3d) -> None:
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * scale
    with torch.no_grad():
        conv.weight.mul_(scale.view(-1, *([1] * (conv.weight.ndim - 1))))
        bias = shift if conv.bias is None else conv.bias * scale + shift
        conv.bias = nn.Parameter(bias)


def fold_batchnorm(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """A copy of `model` in eval mode with every BatchNorm that directly follows a convolution
    folded into it (replaced by an identity), checked on `example` (an input of the model) to
    compute what `model` computes."""
    folded = copy.deepcopy(model).eval()
    for conv_name, norm_name in _pairs(folded, example):
        _fold(folded.get_submodule(conv_name), folded.get_submodule(norm_name))
        folded.set_submodule(norm_name, nn.Identity())
    with torch.no_grad():
        expected, got = model.eval()(example), folded(example)
    scale = expected.abs().max().clamp_min(1.0)
    if not torch.allclose(got, expected, rtol=1e-3, atol=1e-4 * float(scale)):
        raise RuntimeError(f"folding BatchNorms changed {type(model).__name__}'s outputs")
    return folded
