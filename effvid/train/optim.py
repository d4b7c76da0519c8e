"""Optimizer with recipe-driven weight decay, and the warm-up + cosine learning-rate schedule."""

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from effvid.errors import InputError

NO_DECAY_KINDS = ("norm", "bias", "listed")
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def parameter_groups(model: nn.Module, weight_decay: float, no_decay: Sequence[str]) -> list[dict]:
    """Two groups: decayed parameters, and those of the `no_decay` kinds: 'norm' (weights of
    norm layers), 'bias', 'listed' (what the model lists in `no_weight_decay()`: VMF's global
    tokens, DualFormer's positional convs)."""
    unknown = set(no_decay) - set(NO_DECAY_KINDS)
    if unknown:
        raise InputError(f"train.no_decay: unknown kinds {sorted(unknown)}; use {NO_DECAY_KINDS}")
    listed = model.no_weight_decay() if hasattr(model, "no_weight_decay") else set()
    norm_params = {
        id(p) for m in model.modules() if isinstance(m, _NORMS) for p in m.parameters(recurse=False)
    }
    decay, free = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        exempt = (
            ("norm" in no_decay and id(parameter) in norm_params)
            or ("bias" in no_decay and name.endswith(".bias"))
            or ("listed" in no_decay and name in listed)
        )
        (free if exempt else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": free, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, train: Mapping) -> torch.optim.Optimizer:
    """AdamW or SGD (Nesterov momentum) over `parameter_groups`, from the `train` section."""
    groups = parameter_groups(model, train["weight_decay"], train["no_decay"])
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=train["lr"], momentum=train["momentum"], nesterov=True)
    return torch.optim.AdamW(groups, lr=train["lr"], betas=tuple(train["betas"]))


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    warmup_steps: int,
    warmup_start: float = 0.01,
    min_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule: linear from `warmup_start` x lr to lr over `warmup_steps`, then a
    cosine down to `min_ratio` x lr at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return warmup_start + (1.0 - warmup_start) * step / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
