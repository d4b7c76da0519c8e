"""torch.compile on the CPU against eager PyTorch, for VMF and X3D: what it costs, where its time
goes, and whether inductor's weight freezing changes the verdict.

    python benchmarks/compile_cpu.py [--models vmf_xxs vmf_xs x3d_xs] [--threads 2] [--rounds 10]

Each model at its model card's input, batch 1, fp32, BatchNorms folded, in inference mode, as
`effvid bench` times it. Candidates: eager; `torch.compile` with inductor's defaults (the
`effvid bench --runtime compile` path); the same with `freezing` (inductor takes the
weights as constants: it folds them and pre-packs convolution and linear weights into oneDNN's
layout, the setting PyTorch documents for CPU inference). For each compiled candidate: compile
seconds (first call), graph breaks (`torch._dynamo.explain`), and the operators taking the most
time in a profiled call. Timed calls are interleaved round by round, so that a disturbance of
the machine hits every candidate alike; ratios are to eager. Writes
benchmarks/results/compile_cpu.{md,json}.
"""

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch
import torch._dynamo
from torch.profiler import ProfilerActivity, profile

import effvid
from effvid.deploy.benchmark import fingerprint, interleaved_times
from effvid.models.fusion import fold_batchnorm

REPORT = Path("benchmarks/results/compile_cpu")
VARIANTS = {"compile": {}, "compile, freezing": {"freezing": True}}


def compiled(model: torch.nn.Module, clip: torch.Tensor, settings: dict) -> tuple:
    """(the compiled call, compile seconds, graph breaks) of a private copy of `model`."""
    model = copy.deepcopy(model)
    forward = torch.compile(model, options=settings)  # own settings, so its own cache entry
    with torch.inference_mode():
        start = time.perf_counter()
        forward(clip)
        seconds = time.perf_counter() - start
    explained = torch._dynamo.explain(model)(clip)
    return forward, seconds, explained.graph_break_count


def top_operators(call, rows: int = 6) -> list[tuple[str, float]]:
    """(operator, share of self CPU time %) of the costliest operators of three profiled calls."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(3):
            call()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    costly = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:rows]
    return [(e.key[:60], round(100 * e.self_cpu_time_total / total, 1)) for e in costly]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vmf_xxs", "vmf_xs", "x3d_xs"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    calls, facts = {}, {}
    for name in args.models:
        card = effvid.get_model_card(name)
        clip = torch.randn(card.input_shape, generator=torch.Generator().manual_seed(0))
        model = fold_batchnorm(effvid.create_model(name).eval(), clip)
        with torch.inference_mode():
            reference = model(clip)
        calls[(name, "eager")] = lambda model=model, clip=clip: model(clip)
        for variant, settings in VARIANTS.items():
            forward, seconds, breaks = compiled(model, clip, settings)
            with torch.inference_mode():
                error = (forward(clip) - reference).abs().max().item()
            calls[(name, variant)] = lambda forward=forward, clip=clip: forward(clip)
            facts[(name, variant)] = {
                "compile_s": round(seconds, 1),
                "graph_breaks": breaks,
                "max_abs_difference": error,
            }
            print(f"{name} {variant}: compiled in {seconds:.1f} s, {breaks} graph breaks")
    with torch.inference_mode():
        times = interleaved_times(calls, args.rounds)
        operators = {key: top_operators(call) for key, call in calls.items()}
    rows = []
    for (name, variant), values in times.items():
        eager = statistics.median(times[(name, "eager")])
        median = statistics.median(values)
        rows.append({
            "model": name,
            "variant": variant,
            "median_ms": round(median, 1),
            "min_ms": round(min(values), 1),
            "ratio_to_eager": round(median / eager, 2),
            **facts.get((name, variant), {}),
            "top_operators": operators[(name, variant)],
        })  # fmt: skip
    environment = fingerprint("cpu", args.threads)
    command = f"python benchmarks/compile_cpu.py --threads {args.threads} --rounds {args.rounds}"
    lines = [
        f"`{command}`; {environment['machine']}, {args.threads} threads, torch "
        f"{environment['torch']}, {environment['date']}",
        "",
        "| model | candidate | median ms | min ms | x eager | compile s | graph breaks | "
        "costliest operators (% of self CPU time) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        top = ", ".join(f"{op} {share}" for op, share in row["top_operators"][:4])
        lines.append(
            f"| {row['model']} | {row['variant']} | {row['median_ms']} | {row['min_ms']} | "
            f"{row['ratio_to_eager']} | {row.get('compile_s', '')} | "
            f"{row.get('graph_breaks', '')} | {top} |"
        )
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.with_suffix(".json").write_text(
        json.dumps({"command": command, "environment": environment, "rows": rows}, indent=1)
    )
    REPORT.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
