"""Latency and throughput of a model: warm-up, then the median and spread of repeated runs,
with a fingerprint of the machine and software, appendable to a CSV file.

Runtimes: 'eager' PyTorch, 'compile' (`torch.compile`, its compile time reported apart),
'onnxruntime' and 'openvino' (the model exported to a temporary ONNX file); for the first two
the BatchNorms are folded into the convolutions first, as the exported runtimes fold them. CPU
timings use a monotonic clock; on a GPU, CUDA events.
"""

import contextlib
import csv
import importlib
import importlib.metadata
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import torch
from torch import nn

from effvid.distributed import wants_cuda
from effvid.errors import InputError
from effvid.models.fusion import fold_batchnorm
from effvid.version import __version__

RUNTIMES = ("eager", "compile", "onnxruntime", "openvino", "executorch")
# run from a file exported for the benchmark: ONNX, or an ExecuTorch program of the deployable form
EXPORTED = {"onnxruntime": "fp32", "openvino": "fp32 or bf16", "executorch": "fp32"}
DTYPES = ("fp32", "bf16")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fingerprint(device: str, threads: int) -> dict[str, str]:
    """What the timing depends on besides the model: machine, threads, software versions."""
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{_cpu_name()} ({os.cpu_count()} logical CPUs)",
        "threads": str(threads),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "effvid": __version__,
    }
    if device == "cuda":
        info["machine"] = torch.cuda.get_device_name()
    for package in ("onnxruntime", "openvino", "executorch", "nncf"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = ""
    return info


@dataclass(frozen=True)
class BenchResult:
    model: str
    runtime: str
    dtype: str
    device: str
    input_shape: tuple[int, ...]
    runs: int
    median_ms: float
    min_ms: float
    max_ms: float
    iqr_ms: float
    clips_per_s: float
    peak_memory_mb: float | None
    compile_s: float | None = None
    environment: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        memory = "" if self.peak_memory_mb is None else f", peak +{self.peak_memory_mb:.0f} MB"
        compiled = "" if self.compile_s is None else f", compile {self.compile_s:.1f} s"
        return (
            f"{self.model} [{self.runtime}, {self.dtype}, {self.device}, "
            f"{self.environment.get('threads')} threads] input {self.input_shape}: "
            f"median {self.median_ms:.2f} ms (min {self.min_ms:.2f}, max {self.max_ms:.2f}, "
            f"IQR {self.iqr_ms:.2f}) over {self.runs} runs, {self.clips_per_s:.1f} clips/s"
            f"{memory}{compiled}"
        )

    def row(self) -> dict[str, str]:
        """A flat CSV row: the result's fields, then the environment's."""
        fields = {k: v for k, v in asdict(self).items() if k != "environment"}
        fields["input_shape"] = "x".join(map(str, self.input_shape))
        return {k: "" if v is None else str(v) for k, v in {**fields, **self.environment}.items()}


class PeakMemory:
    """Peak memory above the level at `start()` (before the first call, so activations and
    runtime workspaces count): Linux VmHWM (CPU) or CUDA's allocator peak; None where neither is
    available."""

    def __init__(self, device: str) -> None:
        self.device = device

    @staticmethod
    def _status_kb(field_name: str) -> int | None:
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith(field_name):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def start(self) -> None:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        self.base = self._status_kb("VmRSS:")

    def peak_mb(self) -> float | None:
        if self.device == "cuda":
            return (torch.cuda.max_memory_allocated() - self.base) / 2**20
        peak = self._status_kb("VmHWM:")
        return None if peak is None or self.base is None else (peak - self.base) / 1024


def time_calls(run: Callable[[], object], runs: int, device: str = "cpu") -> list[float]:
    """Wall time of each of `runs` calls of `run`, in milliseconds (on a GPU: CUDA events)."""
    times = []
    for _ in range(runs):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            run()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            begin = time.perf_counter()
            run()
            times.append((time.perf_counter() - begin) * 1000)
    return times


def interleaved_times(
    calls: Mapping[Hashable, Callable[[], object]],
    rounds: int,
    *,
    warmup: int = 1,
    device: str = "cpu",
) -> dict[Hashable, list[float]]:
    """Milliseconds of each candidate call, `rounds` rounds in which every candidate runs once
    in turn (after `warmup` untimed calls each), so that a disturbance of the machine hits all
    candidates alike: {key: [ms per round]}."""
    for call in calls.values():
        for _ in range(warmup):
            call()
    times: dict[Hashable, list[float]] = {key: [] for key in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            times[key] += time_calls(call, 1, device)
    return times


def _export_for(runtime: str, model: nn.Module, clips: torch.Tensor, folder: Path) -> Path:
    """The file `runtime` runs, with the fixed shape of `clips`, in `folder`."""
    if runtime == "executorch":
        from effvid.deploy.deployable import deployable
        from effvid.deploy.executorch_export import write_executorch

        network = deployable(model, clips)
        return write_executorch(network, folder / "model.pte", (clips,), {})
    from effvid.deploy.onnx_export import export_onnx

    return export_onnx(model, folder / "model.onnx", tuple(clips.shape))


def _runner(model, clips, runtime, dtype, device, threads) -> tuple[Callable[[], object], float]:
    """The call to time, and the seconds spent preparing it (compiling, exporting)."""
    if runtime in EXPORTED:
        if device != "cpu" or (runtime != "openvino" and dtype != "fp32"):
            raise InputError(f"the {runtime} runtime runs {EXPORTED[runtime]} on the CPU here")
        from effvid.inference.exported_files import file_runner

        precision = {"precision": dtype} if runtime == "openvino" else {}
        begin = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            path = _export_for(runtime, model, clips, Path(folder))
            runner = file_runner(runtime)(path, threads=threads, **precision)
        array = clips.numpy()
        return (lambda: runner(array)), time.perf_counter() - begin
    autocast = (
        torch.autocast(device_type=device, dtype=torch.bfloat16)
        if dtype == "bf16"
        else nullcontext()
    )
    forward = torch.compile(model) if runtime == "compile" else model

    def run():
        with torch.inference_mode(), autocast:
            return forward(clips)

    if runtime != "compile":
        return run, 0.0
    begin = time.perf_counter()
    run()
    if device == "cuda":
        torch.cuda.synchronize()
    return run, time.perf_counter() - begin


def benchmark_model(
    model: nn.Module,
    input_shape: Sequence[int],
    *,
    name: str = "",
    runtime: str = "eager",
    dtype: str = "fp32",
    device: str = "cpu",
    threads: int | None = None,
    warmup: int = 3,
    runs: int = 10,
) -> BenchResult:
    """Time `model` on random clips of `input_shape`: `warmup` calls, then `runs` timed calls."""
    if runtime not in RUNTIMES or dtype not in DTYPES:
        raise InputError(f"runtime must be one of {RUNTIMES} and dtype one of {DTYPES}")
    wants_cuda(device)
    previous_threads = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _benchmark(model, input_shape, name, runtime, dtype, device, warmup, runs)
    finally:
        torch.set_num_threads(previous_threads)


def _benchmark(model, input_shape, name, runtime, dtype, device, warmup, runs) -> BenchResult:
    threads = torch.get_num_threads()
    model = model.eval().to(device)
    if runtime not in EXPORTED:  # as deployed (the exported runtimes fold them themselves)
        model = fold_batchnorm(model, torch.zeros(*input_shape, device=device))
    clips = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0)).to(device)
    memory = PeakMemory(device)
    memory.start()
    run, prepare_s = _runner(model, clips, runtime, dtype, device, threads)
    time_calls(run, warmup, device)
    times = time_calls(run, runs, device)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    median = statistics.median(times)
    return BenchResult(
        model=name or getattr(model, "model_name", type(model).__name__),
        runtime=runtime,
        dtype=dtype,
        device=device,
        input_shape=tuple(input_shape),
        runs=runs,
        median_ms=round(median, 3),
        min_ms=round(min(times), 3),
        max_ms=round(max(times), 3),
        iqr_ms=round(quartiles[2] - quartiles[0], 3),
        clips_per_s=round(input_shape[0] * 1000 / median, 2),
        peak_memory_mb=memory.peak_mb(),
        compile_s=round(prepare_s, 2) if runtime == "compile" else None,
        environment=fingerprint(device, threads),
    )


def append_csv(result: BenchResult, path: str | Path) -> Path:
    """Append one result to a CSV file, writing the header when the file is new; a file with
    other columns (another version's, or not a results file) is refused, never mixed."""
    path = Path(path)
    row = result.row()
    new = not path.exists() or path.stat().st_size == 0
    if not new:
        with path.open(newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != list(row):
            raise InputError(
                f"{path} has other columns than a result of this effvid ({len(header)} vs "
                f"{len(row)}): give another --csv file"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
    return path
