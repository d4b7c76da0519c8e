"""GPU figures (run by benchmarks/gpu_checks.sh on a lent GPU; `--device cpu` for a dry run):
inference latency at batch 1 and throughput at batch 64, and training clips/s, for VMF-XS, VMF-S,
X3D-XS, X3D-S and DualFormer-T, in fp32 and with bf16 autocast, eager and torch.compile,
channels-last 3-D, cudnn.benchmark on.

    python benchmarks/gpu_bench.py [--device cuda] [--out gpu.json] [--models ...]
"""

import argparse
import json
import statistics
import time
from contextlib import nullcontext

import torch

import effvid
from effvid.deploy.benchmark import fingerprint, time_calls
from effvid.models.fusion import fold_batchnorm

MODELS = ["vmf_xs", "vmf_s", "x3d_xs", "x3d_s", "dualformer_t"]


def inference(name: str, device: str, batch: int, dtype: str, compiled: bool, runs: int) -> dict:
    card = effvid.get_model_card(name)
    shape = card.batch_shape(batch)
    clips = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last_3d)
    model = effvid.create_model(name).eval().to(device)
    model = fold_batchnorm(model, clips[:1])
    model = model.to(memory_format=torch.channels_last_3d)
    forward = torch.compile(model) if compiled else model
    autocast = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()

    def call():
        with torch.inference_mode(), autocast:
            forward(clips)

    start = time.perf_counter()
    for _ in range(3):
        call()
    prepare = time.perf_counter() - start
    times = time_calls(call, runs, device)
    median = statistics.median(times)
    return {
        "model": name,
        "mode": "inference",
        "batch": batch,
        "dtype": dtype,
        "compiled": compiled,
        "median_ms": round(median, 3),
        "min_ms": round(min(times), 3),
        "clips_per_s": round(batch * 1000 / median, 1),
        "warmup_s": round(prepare, 1),
    }


def training(name: str, device: str, batch: int, dtype: str, runs: int) -> dict:
    card = effvid.get_model_card(name)
    clips = torch.randn(card.batch_shape(batch), device=device)
    labels = torch.randint(0, card.num_classes, (batch,), device=device)
    model = effvid.create_model(name).to(device).to(memory_format=torch.channels_last_3d)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()

    def step():
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(clips).float(), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):
        step()
    times = time_calls(step, runs, device)
    return {
        "model": name,
        "mode": "training",
        "batch": batch,
        "dtype": dtype,
        "median_ms": round(statistics.median(times), 2),
        "clips_per_s": round(batch * 1000 / statistics.median(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--out", default="gpu_bench.json")
    args = parser.parse_args()
    if args.device == "cuda":
        torch.backends.cudnn.benchmark = True
    rows = []
    for name in args.models:
        for batch in (1, 64):
            for dtype in ("fp32", "bf16"):
                for compiled in (False, True):
                    rows.append(inference(name, args.device, batch, dtype, compiled, args.runs))
                    print(json.dumps(rows[-1]), flush=True)
        for dtype in ("fp32", "bf16"):
            rows.append(training(name, args.device, 16, dtype, args.runs))
            print(json.dumps(rows[-1]), flush=True)
    environment = fingerprint(args.device, torch.get_num_threads())
    with open(args.out, "w") as handle:
        json.dump({"rows": rows, "environment": environment}, handle, indent=1)


if __name__ == "__main__":
    main()
