"""ExecuTorch programs (`.pte`, written by `effvid export --runtime executorch`) run on the CPU
with the XNNPACK delegate, as on a phone: the same inputs and outputs as the ONNX files
(`effvid.inference.onnx_runtime`), another engine.

A program holds the method `forward` (clips -> logits, or a streaming step: frames and states
-> logits and next states, in the order of the metadata's `effvid.stream`) and the constant
method `effvid_metadata`, which returns the `effvid.*` metadata as one JSON string. Its input
shapes are fixed when it is exported (batch 1): a larger batch runs one clip at a time.
"""

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from effvid.errors import InputError, ModelFileError
from effvid.extras import require
from effvid.inference.onnx_runtime import float_arrays

METADATA_METHOD = "effvid_metadata"


@contextmanager
def _native_logs_silenced() -> Iterator[None]:
    """ExecuTorch's C++ core prints CPU probing notes on stderr when a program loads; they say
    nothing to a user. The file descriptor is redirected, so Python's own stderr is unaffected."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _load_program(path: str | Path):
    runtime = require("executorch.runtime", "executorch")
    if not Path(path).is_file():
        raise ModelFileError(f"ExecuTorch program {str(path)!r} does not exist or is not a file")
    try:
        with _native_logs_silenced():
            return runtime.Runtime.get().load_program(Path(path))
    except Exception as error:  # ExecuTorch's own error types
        first = str(error).strip().splitlines()[0][:200] if str(error) else type(error).__name__
        raise ModelFileError(f"ExecuTorch cannot load {path}: {first}") from None


def read_executorch_metadata(path: str | Path) -> dict[str, str]:
    """The `effvid.*` metadata of a program as a dict of strings (empty if it carries none)."""
    program = _load_program(path)
    if METADATA_METHOD not in program.method_names:
        return {}
    (text,) = program.load_method(METADATA_METHOD).execute([])
    try:
        metadata = json.loads(text)
    except ValueError:
        raise ModelFileError(f"{path} carries malformed effvid metadata (not JSON)") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path} carries malformed effvid metadata (not an object)")
    return {str(key): str(value) for key, value in metadata.items()}


class ExecuTorchRunner:
    """Run an ExecuTorch program on the CPU: clips (B, 3, [T,] H, W) -> logits, or every output
    for named inputs (`run`, taken in the program's input order). `threads` sets the size of
    ExecuTorch's thread pool, which is shared by every program of the process."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        program = _load_program(path)
        if "forward" not in program.method_names:
            raise ModelFileError(f"{path} has no `forward` method: not an effvid export")
        if threads:
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(threads)
        try:
            with _native_logs_silenced():
                self.method = program.load_method("forward")
        except Exception as error:  # a delegate that cannot initialise on this CPU
            first = str(error).strip().splitlines()[0][:200] if str(error) else "no detail"
            raise ModelFileError(f"ExecuTorch cannot prepare {path}: {first}") from None
        meta = self.method.metadata
        inputs, outputs = range(meta.num_inputs()), range(meta.num_outputs())
        self.input_shapes = [list(meta.input_tensor_meta(i).sizes()) for i in inputs]
        self.output_shapes = [list(meta.output_tensor_meta(i).sizes()) for i in outputs]
        self.path = Path(path)

    def __call__(self, clips: torch.Tensor | np.ndarray) -> np.ndarray:
        return self.run({"video": clips})[0]

    def run(self, inputs: Mapping[str, torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """Every output, for float inputs in the program's order (their names are not stored in
        a program); a batch larger than the exported one runs one item at a time."""
        arrays = list(float_arrays(inputs).values())
        if len(arrays) != len(self.input_shapes):
            raise InputError(
                f"{self.path} takes {len(self.input_shapes)} inputs, got {len(arrays)}"
            )
        for array, shape in zip(arrays, self.input_shapes, strict=True):
            if list(array.shape[1:]) != shape[1:]:
                raise InputError(
                    f"{self.path} takes inputs of shape {shape[1:]} after the batch axis, "
                    f"got {list(array.shape[1:])}"
                )
        exported_batch = self.input_shapes[0][0]
        if len(arrays[0]) == exported_batch:
            return self._execute(arrays)
        if exported_batch != 1:
            raise InputError(f"{self.path} takes a batch of {exported_batch}")
        items = range(len(arrays[0]))
        rows = [self._execute([array[i : i + 1] for array in arrays]) for i in items]
        return [np.concatenate(outputs) for outputs in zip(*rows, strict=True)]

    def _execute(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        outputs = self.method.execute([torch.from_numpy(array) for array in arrays])
        return [output.numpy().copy() for output in outputs]
