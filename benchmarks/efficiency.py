"""Inference latency of every VMF and X3D rung, eager PyTorch and ONNX Runtime (fp32, int8), in
one process, candidates interleaved round by round.

    python benchmarks/efficiency.py [--threads 2] [--rounds 12] [--runtimes eager onnxruntime int8]

Each model at its model card's input, batch 1, one view, fp32 unless int8: eager PyTorch in
inference mode (BatchNorms folded, as deployed), ONNX Runtime on the exported file (all graph
optimisations, `--threads` intra-op threads, fixed batch), and its static int8 QDQ copy
(calibrated on random clips: calibration changes accuracy, not speed; the demo model's accuracy
is measured by benchmarks/int8_demo.py). Every round times each candidate once, in turn, after
warm-up, so that a disturbance of the machine hits all of them alike; the table gives medians
and minima, GMACs per view, the share of the machine's fp32 peak (a large matrix product
measured in the same run, in multiply-adds per second) and the ratios the project tracks.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

import effvid
from effvid.deploy.benchmark import fingerprint, interleaved_times
from effvid.deploy.onnx_export import export_onnx
from effvid.deploy.quantize import quantize_int8
from effvid.inference.onnx_runtime import OnnxRunner
from effvid.models.fusion import fold_batchnorm

MODELS = ["vmf_xxs", "vmf_xs", "vmf_s", "vmf_m", "vmf_l", "x3d_xs", "x3d_s", "x3d_m"]
RATIOS = [("vmf_xs", "x3d_xs", 0.8), ("vmf_xxs", "x3d_xs", 0.6), ("vmf_s", "x3d_s", 0.6)]


def peak_macs_per_second(threads: int, size: int = 2048, repeats: int = 10) -> float:
    """Multiply-adds per second of a large fp32 matrix product on this machine."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return repeats * size**3 / (time.perf_counter() - start)


def candidates(folder: Path, models: list[str], threads: int, runtimes: list[str]) -> dict:
    """(model, runtime) -> (callable, GMACs) for every model and runtime."""
    calls = {}
    for name in models:
        card = effvid.get_model_card(name)
        model = effvid.create_model(name).eval()
        clip = torch.randn(card.input_shape, generator=torch.Generator().manual_seed(0))
        macs = effvid.count_flops(model, card.input_shape).total / 1e9
        if "eager" in runtimes:
            folded = fold_batchnorm(model, clip)

            def eager(folded=folded, clip=clip):
                with torch.inference_mode():
                    folded(clip)

            calls[(name, "eager fp32")] = (eager, macs)
        if "onnxruntime" in runtimes:
            path = export_onnx(
                model, folder / f"{name}.onnx", card.input_shape, dynamic_batch=False
            )
            array = clip.numpy()
            fp32 = OnnxRunner(path, threads=threads)
            calls[(name, "ORT fp32")] = (lambda fp32=fp32, array=array: fp32(array), macs)
            if "int8" in runtimes:
                calibration = [torch.randn(card.input_shape) for _ in range(4)]
                int8 = OnnxRunner(quantize_int8(path, calibration=calibration), threads=threads)
                calls[(name, "ORT int8")] = (lambda int8=int8, array=array: int8(array), macs)
    return calls


def measure(calls: dict, rounds: int, warmup: int = 2) -> dict:
    return interleaved_times({key: call for key, (call, _) in calls.items()}, rounds, warmup=warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--runtimes", nargs="+", default=["eager", "onnxruntime", "int8"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/efficiency"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        calls = candidates(Path(folder), args.models, args.threads, args.runtimes)
        peak = peak_macs_per_second(args.threads)
        times = measure(calls, args.rounds)
        peak_after = peak_macs_per_second(args.threads)
    peak = max(peak, peak_after)
    rows = []
    for (name, runtime), (_, macs) in calls.items():
        median = statistics.median(times[(name, runtime)])
        rows.append(
            {
                "model": name,
                "runtime": runtime,
                "gmacs": round(macs, 3),
                "median_ms": round(median, 2),
                "min_ms": round(min(times[(name, runtime)]), 2),
                "peak_share": round(100 * macs * 1e9 / (median / 1000) / peak, 1),
            }
        )
    by = {(r["model"], r["runtime"]): r["median_ms"] for r in rows}
    ratios = []
    for runtime in ("eager fp32", "ORT fp32"):
        for first, second, goal in RATIOS:
            if (first, runtime) in by and (second, runtime) in by:
                value = by[(first, runtime)] / by[(second, runtime)]
                ratios.append(
                    {
                        "runtime": runtime,
                        "pair": f"{first} / {second}",
                        "ratio": round(value, 2),
                        "goal": goal,
                    }
                )
    speedups = []
    for name in args.models:
        eager, fp32, int8 = (by.get((name, rt)) for rt in ("eager fp32", "ORT fp32", "ORT int8"))
        if eager is not None and fp32 is not None:
            speedups.append(
                {
                    "model": name,
                    "ORT fp32 vs eager": round(eager / fp32, 2),
                    "ORT int8 vs ORT fp32": round(fp32 / int8, 2) if int8 else None,
                }
            )
    environment = fingerprint("cpu", args.threads)
    lines = [
        f"`python benchmarks/efficiency.py --threads {args.threads} --rounds {args.rounds}`;"
        f" {environment['machine']}, {args.threads} threads, torch {environment['torch']}, "
        f"onnxruntime {environment['onnxruntime']}, {environment['date']}; fp32 matrix-"
        f"product peak {peak / 1e9:.1f} GMAC/s.",
        "",
        "| model | runtime | GMACs/view | median ms | min ms | % of peak |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['runtime']} | {r['gmacs']:.3f} | {r['median_ms']:.1f} | "
        f"{r['min_ms']:.1f} | {r['peak_share']:.1f} |"
        for r in rows
    ]
    lines += ["", "| runtime | latency ratio | measured | goal |", "|---|---|---|---|"]
    lines += [
        f"| {r['runtime']} | {r['pair']} | {r['ratio']:.2f} | <= {r['goal']} |" for r in ratios
    ]
    lines += [
        "",
        "| model | ORT fp32 speed-up over eager | ORT int8 speed-up over ORT fp32 |",
        "|---|---|---|",
    ]
    for speedup in speedups:
        int8 = speedup["ORT int8 vs ORT fp32"]
        lines.append(
            f"| {speedup['model']} | {speedup['ORT fp32 vs eager']:.2f}x | "
            f"{'' if int8 is None else f'{int8:.2f}x'} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    result = {
        "rows": rows,
        "ratios": ratios,
        "speedups": speedups,
        "peak_macs": peak,
        "times_ms": {f"{k[0]} {k[1]}": v for k, v in times.items()},
        "environment": environment,
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
