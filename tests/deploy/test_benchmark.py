"""effvid bench: every runtime runs, results carry a fingerprint, CSV rows accumulate."""

import csv

import pytest
import torch
from torch import nn

from effvid.cli import main
from effvid.deploy.benchmark import append_csv, benchmark_model


def _tiny_video_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


@pytest.mark.parametrize(
    "runtime", ["eager", pytest.param("compile", marks=pytest.mark.slow), "onnxruntime"]
)
def test_runtimes_measure_and_fingerprint(runtime):
    result = benchmark_model(_tiny_video_net(), (2, 3, 4, 16, 16), name="tiny", runtime=runtime,
                             threads=1, warmup=1, runs=3)  # fmt: skip
    assert result.runs == 3 and 0 < result.min_ms <= result.median_ms <= result.max_ms
    assert result.clips_per_s == pytest.approx(2 * 1000 / result.median_ms, rel=0.01)
    assert result.environment["threads"] == "1"
    assert result.environment["torch"] == torch.__version__
    assert (result.compile_s is not None) == (runtime == "compile")


def test_bf16_and_refusals():
    result = benchmark_model(_tiny_video_net(), (1, 3, 4, 16, 16), dtype="bf16", warmup=1, runs=2)
    assert result.dtype == "bf16"
    with pytest.raises(ValueError, match="fp32 on the CPU"):
        benchmark_model(_tiny_video_net(), (1, 3, 4, 16, 16), runtime="onnxruntime", dtype="bf16")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            benchmark_model(_tiny_video_net(), (1, 3, 4, 16, 16), device="cuda")


def test_bench_command_appends_rows(tmp_path, capsys):
    results = tmp_path / "bench.csv"
    for _ in range(2):
        code = main(["bench", "--model", "x3d_xs", "--frames", "4", "--size", "64", "--runs", "2",
                     "--warmup", "1", "--threads", "1", "--csv", str(results)])  # fmt: skip
        assert code == 0
    assert "median" in capsys.readouterr().out
    rows = list(csv.DictReader(results.open()))
    assert (
        len(rows) == 2 and rows[0]["model"] == "x3d_xs" and rows[0]["input_shape"] == "1x3x4x64x64"
    )
    assert {"machine", "threads", "torch", "onnxruntime", "median_ms"} <= set(rows[0])


def test_append_csv_writes_the_header_once(tmp_path):
    result = benchmark_model(_tiny_video_net(), (1, 3, 4, 16, 16), warmup=0, runs=2)
    path = tmp_path / "r.csv"
    append_csv(result, path)
    append_csv(result, path)
    assert path.read_text().count("median_ms") == 1
