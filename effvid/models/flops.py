"""Count the multiply-adds of a forward pass, by op type, and the parameters of a model.

Convention (that of the Mobile-Former, X3D and DualFormer papers, and of fvcore): one
multiply-add counts as one FLOP; convolutions, linear layers and matrix products (attention
included, however it is computed) are counted exactly; BatchNorm counts 2 per element in
inference (1 without affine), LayerNorm and GroupNorm 5 (4 without affine), global average
pooling 1 per input element; element-wise ops, activations and softmax are not counted.

The count works at the level of ATen ops, so fused kernels are counted too: PyTorch's own
`FlopCounterMode` sees `scaled_dot_product_attention` on CPU as zero FLOPs; here it counts
Lq * Lk * (E + Ev) per head and sample, the two products the fused kernel computes.
"""

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from effvid.models.layers.convolution import PointwiseConv3d

FLOP_TYPES = ("conv", "linear", "matmul", "norm", "pool")

aten = torch.ops.aten


def _conv(args: Sequence, out: torch.Tensor) -> int:
    x, weight, transposed = args[0], args[1], args[6]
    # Each output (input, if transposed) element takes C_in/groups * kernel volume products.
    return (x if transposed else out).numel() * math.prod(weight.shape[1:])


def _matmul(args: Sequence, out: torch.Tensor) -> int:
    # mm(a, b), addmm(bias, a, b), bmm(a, b), baddbmm(bias, a, b): a (..., n, k) @ b (..., k, m).
    a, b = args[-2], args[-1]
    return a.numel() * b.shape[-1]


def _attention(args: Sequence, out: torch.Tensor) -> int:
    query, key, value = args[:3]  # (B, heads, Lq, E), (B, heads, Lk, E), (B, heads, Lk, Ev)
    rows = query.numel() // query.shape[-1]
    return rows * key.shape[-2] * (query.shape[-1] + value.shape[-1])


def _batch_norm(args: Sequence, out: torch.Tensor) -> int:
    return args[0].numel() * (2 if args[1] is not None else 1)


def _layer_norm(args: Sequence, out: torch.Tensor) -> int:
    return args[0].numel() * (5 if args[2] is not None else 4)


def _group_norm(args: Sequence, out: torch.Tensor) -> int:
    return args[0].numel() * (5 if args[1] is not None else 4)


def _pool(args: Sequence, out: torch.Tensor) -> int:
    return args[0].numel()


_Formula = Callable[[Sequence, torch.Tensor], int]
_RULES: dict[object, tuple[str, _Formula]] = {
    aten.convolution: ("conv", _conv),
    aten._convolution: ("conv", _conv),
    aten.mm: ("matmul", _matmul),
    aten.addmm: ("matmul", _matmul),
    aten.bmm: ("matmul", _matmul),
    aten.baddbmm: ("matmul", _matmul),
    aten._scaled_dot_product_flash_attention_for_cpu: ("matmul", _attention),
    aten._scaled_dot_product_flash_attention: ("matmul", _attention),
    aten._scaled_dot_product_efficient_attention: ("matmul", _attention),
    aten._scaled_dot_product_cudnn_attention: ("matmul", _attention),
    aten.native_batch_norm: ("norm", _batch_norm),
    aten._native_batch_norm_legit_no_training: ("norm", _batch_norm),
    aten._native_batch_norm_legit: ("norm", _batch_norm),
    aten.native_layer_norm: ("norm", _layer_norm),
    aten.native_group_norm: ("norm", _group_norm),
    aten.mean: ("pool", _pool),
    aten._adaptive_avg_pool2d: ("pool", _pool),
    aten._adaptive_avg_pool3d: ("pool", _pool),
}


@dataclass(frozen=True)
class FlopCount:
    """Multiply-adds of one forward pass at `input_shape`, by op type (see `FLOP_TYPES`)."""

    input_shape: tuple[int, ...]
    by_type: Mapping[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_type.values())

    def __str__(self) -> str:
        parts = ", ".join(f"{kind} {self.by_type[kind] / 1e9:.4f}" for kind in FLOP_TYPES)
        return f"{self.total / 1e9:.4f} GMACs at {self.input_shape} ({parts})"


class _MultiplyAddCounter(TorchDispatchMode):
    """Sums the multiply-adds of the ATen ops it sees; matrix products inside an nn.Linear are
    'linear', inside a 1x1x1 conv computed as a product (`PointwiseConv3d`) 'conv'."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.module_kinds: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        rule = _RULES.get(func.overloadpacket)
        if rule is not None:
            kind, formula = rule
            if kind == "matmul" and self.module_kinds:
                kind = self.module_kinds[-1]
            self.counts[kind] += formula(args, out[0] if isinstance(out, tuple) else out)
        return out


def count_flops(
    model: nn.Module, input_shape: Sequence[int], *, device: torch.device | str | None = None
) -> FlopCount:
    """Multiply-adds of `model` on one zero input of `input_shape`, in inference (eval) mode.

    Runs the real forward pass, on `device` (default: where the model's parameters are). A model
    built under `torch.device("meta")` is counted without any arithmetic, which is fast.
    The model's train/eval mode is restored afterwards.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else "cpu"
    counter = _MultiplyAddCounter()

    def enter(kind: str):
        def hook(module: nn.Module, args: tuple) -> None:
            counter.module_kinds.append(kind)

        return hook

    def leave(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        counter.module_kinds.pop()

    hooks = []
    for module in model.modules():
        kind = "linear" if isinstance(module, nn.Linear) else "conv"
        if isinstance(module, nn.Linear | PointwiseConv3d):
            hooks.append(module.register_forward_pre_hook(enter(kind)))
            hooks.append(module.register_forward_hook(leave))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(tuple(input_shape), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    by_type = {kind: counter.counts.get(kind, 0) for kind in FLOP_TYPES}
    return FlopCount(tuple(input_shape), by_type)


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BatchNorm statistics excluded)."""
    return sum(parameter.numel() for parameter in model.parameters())
