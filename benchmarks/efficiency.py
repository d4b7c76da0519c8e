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
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from executorch_lowering import lower  # benchmarks/: the lowering it measures

import effvid
from effvid.deploy.benchmark import fingerprint, interleaved_times
from effvid.deploy.deployable import deployable
from effvid.deploy.executorch_export import quantize_for_xnnpack
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
) -> tuple[dict, dict]:
    """(model, runtime) -> (callable, GMACs) for every model, form and runtime, and
    (model, runtime) -> what the runtime left to slow kernels (`fallbacks`)."""
    calls, fallbacks = {}, {}
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
                    fallback = _openvino_fallbacks(runner) if "openvino" in runtime else None
                elif runtime in PROGRAMS and form == "deployable":
                    pte = folder / f"{name}_{runtime}.pte"
                    runner, fallback = _program(runtime, network, clip, pte)
                else:
                    continue
                engine = ENGINES.get(runtime) or PROGRAMS[runtime]
                call = lambda runner=runner, array=array: runner(array)  # noqa: E731
                calls[(name, f"{engine}{label}")] = (call, macs)
                fallbacks[(name, f"{engine}{label}")] = fallback
    return calls, fallbacks


def _openvino_fallbacks(runner: OpenVinoRunner) -> str:
    """The nodes OpenVINO runs on its generic reference kernels (primitive type `ref*`), by
    layer type, from the compiled model's runtime graph."""
    slow = collections.Counter()
    for op in runner.compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if info["primitiveType"].astype(str).startswith("ref"):
            slow[info["layerType"].astype(str)] += 1
    return ", ".join(f"{kind} {count}" for kind, count in slow.most_common()) or "none"


def _calibration(shape) -> list[torch.Tensor]:
    return [torch.randn(shape) for _ in range(4)]


def _program(runtime: str, network, clip: torch.Tensor, path: Path) -> tuple:
    """An ExecuTorch program of a deployable network, fp32 or int8 (lowered as `effvid export`
    lowers it), and what XNNPACK left outside its delegate."""
    network = network.eval()
    if runtime.endswith("int8"):  # a quantised graph, which has no eval()
        network = quantize_for_xnnpack(network, (clip,), _calibration(clip.shape))
    lowering = lower(network, (clip,), path)
    outside = ", ".join(f"{op} {n}" for op, n in lowering["undelegated"].items()) or "nothing"
    return ExecuTorchRunner(
        path
    ), f"{lowering['delegate_calls']} delegate call(s); outside: {outside}"


def _runner(runtime: str, path: Path, card, threads: int):
    """The runner of an exported file for one of ENGINES."""
    if runtime == "onnxruntime":
        return OnnxRunner(path, threads=threads)
    if runtime == "int8":
        return OnnxRunner(
            quantize_int8(path, calibration=_calibration(card.input_shape)), threads=threads
        )
    if runtime == "openvino-int8":
        ir = onnx_to_openvino(path, path.with_suffix(".xml"), {})
        quantized = quantize_openvino(
            ir, path.with_suffix(".int8.xml"), _calibration(card.input_shape)
        )
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
        calls, fallbacks = candidates(
            Path(folder), args.models, args.threads, args.runtimes, args.forms
        )
        peak = peak_macs_per_second(args.threads)
        times = measure(calls, args.rounds)
        peak_after = peak_macs_per_second(args.threads)
    peak = max(peak, peak_after)
    rows = []
    for (name, runtime), (_, macs) in calls.items():
        card = effvid.get_model_card(name)
        views = card.test_clips * card.test_crops
        median = statistics.median(times[(name, runtime)])
        rows.append(
            {
                "model": name,
                "runtime": runtime,
                "gmacs": round(macs, 3),
                "median_ms": round(median, 2),
                "min_ms": round(min(times[(name, runtime)]), 2),
                "peak_share": round(100 * macs * 1e9 / (median / 1000) / peak, 1),
                "views": views,
                "video_ms": round(median * views, 1),
                "fallbacks": fallbacks.get((name, runtime)),
            }
        )
    ratios = goal_ratios(rows)
    environment = fingerprint("cpu", args.threads)
    text = "\n".join(report(args, rows, ratios, environment, peak)) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    result = {
        "rows": rows,
        "ratios": ratios,
        "peak_macs": peak,
        "times_ms": {f"{k[0]} {k[1]}": v for k, v in times.items()},
        "environment": environment,
    }
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


def goal_ratios(rows: list[dict]) -> list[dict]:
    """The tracked latency ratios per runtime and precision, each model in its fastest form on
    that runtime (plain or deployable), per view and per video (the models' test views)."""
    best: dict[tuple[str, str], dict] = {}
    for row in rows:
        engine = row["runtime"].removesuffix(" (deployable)")
        key = (row["model"], engine)
        if key not in best or row["median_ms"] < best[key]["median_ms"]:
            best[key] = row
    ratios = []
    for engine in dict.fromkeys(engine for _, engine in best):
        for first, second, goal in RATIOS:
            if (first, engine) in best and (second, engine) in best:
                a, b = best[(first, engine)], best[(second, engine)]
                ratios.append(
                    {
                        "runtime": engine,
                        "pair": f"{first} / {second}",
                        "forms": f"{_form(a)} / {_form(b)}",
                        "per_view": round(a["median_ms"] / b["median_ms"], 2),
                        "per_video": round(a["video_ms"] / b["video_ms"], 3),
                        "goal": goal,
                    }
                )
    return ratios


def _form(row: dict) -> str:
    return "deployable" if row["runtime"].endswith("(deployable)") else "plain"


def report(args, rows: list[dict], ratios: list[dict], environment: dict, peak: float) -> list:
    """The Markdown report: the command and machine, every row, the ratios against the goals."""
    lines = [
        f"`python benchmarks/efficiency.py --threads {args.threads} --rounds {args.rounds} "
        f"--models {' '.join(args.models)} --runtimes {' '.join(args.runtimes)} "
        f"--forms {' '.join(args.forms)}`;"
        f" {environment['machine']}, {args.threads} threads, torch {environment['torch']}, "
        f"onnxruntime {environment['onnxruntime']}, openvino {environment['openvino']}, "
        f"executorch {environment.get('executorch')}, {environment['date']}; fp32 matrix-"
        f"product peak {peak / 1e9:.1f} GMAC/s.",
        "",
        "| model | runtime | GMACs/view | median ms/view | min ms | % of peak | views | ms/video "
        "| left to slow kernels |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['model']} | {r['runtime']} | {r['gmacs']:.3f} | {r['median_ms']:.1f} | "
        f"{r['min_ms']:.1f} | {r['peak_share']:.1f} | {r['views']} | {r['video_ms']:.0f} | "
        f"{r['fallbacks'] or ''} |"
        for r in rows
    ]
    lines += [
        "",
        "Ratios, each model in its fastest form on the runtime (per view: the goal; per video: "
        "at each model's test views):",
        "",
        "| runtime | pair | forms | per view | goal | met | per video |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['runtime']} | {r['pair']} | {r['forms']} | {r['per_view']:.2f} | <= {r['goal']} | "
        f"{'yes' if r['per_view'] <= r['goal'] else 'no'} | {r['per_video']:.3f} |"
        for r in ratios
    ]
    return lines


if __name__ == "__main__":
    main()
