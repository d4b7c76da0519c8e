"""Inference latency of every VMF and X3D rung, eager PyTorch, ONNX Runtime (fp32, int8),
OpenVINO (fp32, bf16, int8) and ExecuTorch with XNNPACK (fp32, int8), each model as it is and
in its deployable form, in one process, candidates interleaved round by round.

    python benchmarks/efficiency.py [--threads 2] [--rounds 12]
        [--runtimes eager onnxruntime int8 openvino openvino-bf16 openvino-int8 executorch
         executorch-int8] [--forms plain deployable]

Each model at its model card's input, batch 1, one view, fp32 unless int8: eager PyTorch in
inference mode (BatchNorms folded, as deployed), ONNX Runtime on the exported file (all graph
optimisations, `--threads` intra-op threads, fixed batch), and its static int8 QDQ copy
(calibrated on random clips: calibration changes accuracy, not speed; the demo model's accuracy
is measured by benchmarks/int8_demo.py), OpenVINO on the same file (fp32 asked for explicitly;
bf16 where the CPU has it; int8 by NNCF, calibrated on random clips as well), and ExecuTorch on a
program of the deployable form (only: the plain form does not run there; int8 by XNNPACK's
quantiser). The deployable form (`effvid.deploy.deployable`: 3-D convolutions as
2-D ones) is exported and run the same way, labelled "(deployable)". Every round times each
candidate once, in turn, after warm-up, so that a disturbance of the machine hits all of them
alike; the table gives medians and minima, GMACs per view, the share of the machine's fp32 peak
(a large matrix product measured in the same run, in multiply-adds per second) and the ratios
the project tracks.
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
from effvid.deploy.deployable import deployable
from effvid.deploy.executorch_export import write_executorch
from effvid.deploy.onnx_export import export_onnx
from effvid.deploy.openvino_export import onnx_to_openvino, quantize_openvino
from effvid.deploy.quantize import quantize_int8
from effvid.inference.executorch_runtime import ExecuTorchRunner
from effvid.inference.onnx_runtime import OnnxRunner
from effvid.inference.openvino_runtime import OpenVinoRunner
from effvid.models.fusion import fold_batchnorm

MODELS = ["vmf_xxs", "vmf_xs", "vmf_s", "vmf_m", "vmf_l", "x3d_xs", "x3d_s", "x3d_m"]
ENGINES = {  # runtimes that run the exported file, and their labels
    "onnxruntime": "ORT fp32",
    "int8": "ORT int8",
    "openvino": "OpenVINO fp32",
    "openvino-bf16": "OpenVINO bf16",
    "openvino-int8": "OpenVINO int8",
}
PROGRAMS = {"executorch": "ExecuTorch fp32", "executorch-int8": "ExecuTorch int8"}
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


def candidates(
    folder: Path, models: list[str], threads: int, runtimes: list[str], forms: list[str]
) -> dict:
    """(model, runtime) -> (callable, GMACs) for every model, form and runtime."""
    calls = {}
    for name in models:
        card = effvid.get_model_card(name)
        model = effvid.create_model(name).eval()
        clip = torch.randn(card.input_shape, generator=torch.Generator().manual_seed(0))
        macs = effvid.count_flops(model, card.input_shape).total / 1e9
        array = clip.numpy()
        for form in forms:
            network = fold_batchnorm(model, clip) if form == "plain" else deployable(model, clip)
            label = "" if form == "plain" else " (deployable)"
            if "eager" in runtimes:

                def eager(network=network, clip=clip):
                    with torch.inference_mode():
                        network(clip)

                calls[(name, f"eager fp32{label}")] = (eager, macs)
            path = export_onnx(
                network, folder / f"{name}_{form}.onnx", card.input_shape, dynamic_batch=False
            )
            for runtime in runtimes:
                if runtime in ENGINES:
                    runner = _runner(runtime, path, card, threads)
                elif runtime in PROGRAMS and form == "deployable":
                    runner = _program(runtime, network, clip, folder / f"{name}_{runtime}.pte")
                else:
                    continue
                engine = ENGINES.get(runtime) or PROGRAMS[runtime]
                call = lambda runner=runner, array=array: runner(array)  # noqa: E731
                calls[(name, f"{engine}{label}")] = (call, macs)
    return calls


def _calibration(card) -> list[torch.Tensor]:
    return [torch.randn(card.input_shape) for _ in range(4)]


def _program(runtime: str, network, clip: torch.Tensor, path: Path) -> ExecuTorchRunner:
    """An ExecuTorch program of a deployable network, fp32 or int8."""
    shape = tuple(clip.shape)
    calibration = [torch.randn(shape) for _ in range(4)] if runtime.endswith("int8") else []
    return ExecuTorchRunner(write_executorch(network, path, (clip,), {}, calibration=calibration))


def _runner(runtime: str, path: Path, card, threads: int):
    """The runner of an exported file for one of ENGINES."""
    if runtime == "onnxruntime":
        return OnnxRunner(path, threads=threads)
    if runtime == "int8":
        return OnnxRunner(quantize_int8(path, calibration=_calibration(card)), threads=threads)
    if runtime == "openvino-int8":
        ir = onnx_to_openvino(path, path.with_suffix(".xml"), {})
        quantized = quantize_openvino(ir, path.with_suffix(".int8.xml"), _calibration(card))
        return OpenVinoRunner(quantized, threads=threads)
    precision = "bf16" if runtime == "openvino-bf16" else "fp32"
    return OpenVinoRunner(path, threads=threads, precision=precision)


def measure(calls: dict, rounds: int, warmup: int = 2) -> dict:
    return interleaved_times({key: call for key, (call, _) in calls.items()}, rounds, warmup=warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument(
        "--runtimes",
        nargs="+",
        default=["eager", "onnxruntime", "int8"],
        choices=["eager", *ENGINES, *PROGRAMS],
    )
    parser.add_argument("--forms", nargs="+", default=["plain"], choices=["plain", "deployable"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/efficiency"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as folder:
        calls = candidates(Path(folder), args.models, args.threads, args.runtimes, args.forms)
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
    for runtime in sorted({runtime for _, runtime in calls}):
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
        f"`python benchmarks/efficiency.py --threads {args.threads} --rounds {args.rounds} "
        f"--models {' '.join(args.models)} --runtimes {' '.join(args.runtimes)} "
        f"--forms {' '.join(args.forms)}`;"
        f" {environment['machine']}, {args.threads} threads, torch {environment['torch']}, "
        f"onnxruntime {environment['onnxruntime']}, openvino {environment['openvino']}, "
        f"{environment['date']}; fp32 matrix-"
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
