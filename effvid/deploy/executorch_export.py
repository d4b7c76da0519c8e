"""ExecuTorch programs (`.pte`) for phones and other edge devices: the deployable form of a model
(`effvid.deploy.deployable`), exported with `torch.export`, lowered to the XNNPACK delegate, with
the `effvid.*` metadata as the constant method `effvid_metadata` (one JSON string, read by
`effvid.inference.executorch_runtime`).

The input shapes are fixed (batch 1, the exported clip), as ExecuTorch plans its memory ahead.
int8: XNNPACK's quantiser (`torch.export` + PT2E: weights per channel, activations with ranges
measured on real clips), then the same lowering.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from effvid.extras import require
from effvid.files import atomic_write
from effvid.inference.executorch_runtime import METADATA_METHOD

ACTIVATION_EPS = 2**-12  # the smallest scale, as XNNPACK's own configuration sets it


def lower_to_executorch(
    module: nn.Module, example: tuple[torch.Tensor, ...], metadata: Mapping[str, str]
) -> bytes:
    """The ExecuTorch program of `module(*example)` (in eval mode, or a quantised graph) lowered
    to XNNPACK, with `metadata`."""
    require("executorch", "executorch")
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with torch.no_grad():
        exported = torch.export.export(module, example)
    edge = to_edge_transform_and_lower(
        exported,
        partitioner=[XnnpackPartitioner()],
        constant_methods={METADATA_METHOD: json.dumps(dict(metadata))},
    )
    return edge.to_executorch().buffer


def quantize_for_xnnpack(
    module: nn.Module, example: tuple[torch.Tensor, ...], calibration: Sequence[torch.Tensor]
) -> nn.Module:
    """`module` with int8 weights (per channel) and activations (ranges measured on
    `calibration`, each shaped as example[0]), as XNNPACK's quantiser places them.

    Activation ranges are the minimum and maximum seen (the quantiser's default, a histogram
    search per tensor, took more than half an hour for a VMF-XXS on 2 cores; the copy is
    checked against fp32 before it is kept either way)."""
    require("executorch", "executorch")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e import MinMaxObserver
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    config = get_symmetric_quantization_config(is_per_channel=True)
    activations = replace(
        config.input_activation,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=ACTIVATION_EPS),
    )
    config = replace(config, input_activation=activations, output_activation=activations)
    quantizer = XNNPACKQuantizer().set_global(config)
    with torch.no_grad():
        graph = torch.export.export(module.eval(), example).module()
        prepared = prepare_pt2e(graph, quantizer)
        for clip in calibration:
            prepared(clip, *example[1:])
        return convert_pt2e(prepared)


def write_executorch(
    module: nn.Module,
    path: str | Path,
    example: tuple[torch.Tensor, ...],
    metadata: Mapping[str, str],
    *,
    calibration: Sequence[torch.Tensor] = (),
) -> Path:
    """Write the program of `module` (already in its deployable form) to `path`; int8 when
    `calibration` clips are given. `path` is replaced only by a complete file."""
    module = module.eval()
    if calibration:
        module = quantize_for_xnnpack(module, example, calibration)
        metadata = {**metadata, "effvid.precision": "int8"}
    program = lower_to_executorch(module, example, metadata)
    with atomic_write(path) as temporary:
        temporary.write_bytes(program)
    return Path(path)
