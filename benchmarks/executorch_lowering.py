"""What ExecuTorch's XNNPACK delegate takes of each model, as it is and in its deployable form
(`effvid.deploy.deployable`: BatchNorms folded, 3-D convolutions as 2-D ones), whether the
program runs, how close it is to eager PyTorch, and how fast, in one process.

    python benchmarks/executorch_lowering.py [--models x3d_xs vmf_xxs vmf_xs] [--threads 1]
        [--rounds 10] [--out benchmarks/results/executorch]

Each model at its model card's input, batch 1, fp32, random weights: `torch.export`, then
`to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`. Reported per model and
form: the delegate calls, every operator left outside the delegate with its count (these run
on ExecuTorch's portable kernels), whether `execute()` succeeds (the error if not), max |ET -
eager| on the logits, and the median latency of the program against the eager model (BatchNorms
folded, as deployed), interleaved round by round. Needs `pip install executorch`.
"""

import argparse
import collections
import json
import statistics
import tempfile
from importlib.metadata import version
from pathlib import Path

import torch

import effvid
from effvid.deploy.benchmark import fingerprint, interleaved_times
from effvid.deploy.deployable import deployable
from effvid.models.fusion import fold_batchnorm

MODELS = ["x3d_xs", "vmf_xxs", "vmf_xs"]


def lower(model: torch.nn.Module, clip: torch.Tensor, path: Path) -> dict:
    """Export and lower `model`; the delegate calls and the operators left outside."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(model, (clip,))
    edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    delegates, outside = 0, collections.Counter()
    for node in edge.exported_program().graph_module.graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "executorch_call_delegate" in name:
            delegates += 1
        elif name != "getitem":
            outside[name] += 1
    path.write_bytes(edge.to_executorch().buffer)
    return {"delegate_calls": delegates, "undelegated": dict(outside.most_common())}


def measure(name: str, form: str, folder: Path, rounds: int) -> dict:
    from executorch.runtime import Runtime

    card = effvid.get_model_card(name)
    model = effvid.create_model(name).eval()
    clip = torch.randn(card.input_shape, generator=torch.Generator().manual_seed(0))
    eager = fold_batchnorm(model, clip)
    network = model if form == "plain" else deployable(model, clip)
    path = folder / f"{name}_{form}.pte"
    row = {"model": name, "form": form, **lower(network, clip, path)}
    method = Runtime.get().load_program(str(path)).load_method("forward")
    try:
        logits = method.execute([clip])[0]
    except Exception as error:  # the runtime's own error types
        row["execute"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
        return row
    with torch.inference_mode():
        expected = eager(clip)
        row["execute"] = "ok"
        row["max_abs_difference"] = float((logits - expected).abs().max())

        def run_eager():
            eager(clip)

        times = interleaved_times(
            {"executorch": lambda: method.execute([clip]), "eager": run_eager}, rounds
        )
    row["executorch_ms"] = round(statistics.median(times["executorch"]), 2)
    row["eager_ms"] = round(statistics.median(times["eager"]), 2)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/executorch"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            for form in ("plain", "deployable"):
                rows.append(measure(name, form, Path(folder), args.rounds))
                print(json.dumps(rows[-1]), flush=True)
    environment = fingerprint("cpu", args.threads) | {"executorch": version("executorch")}
    lines = [
        f"`python benchmarks/executorch_lowering.py --models {' '.join(args.models)} "
        f"--threads {args.threads} --rounds {args.rounds}`; {environment['machine']}, "
        f"{args.threads} thread(s), torch {environment['torch']}, executorch "
        f"{environment['executorch']}, {environment['date']}.",
        "",
        "| model | form | delegate calls | left outside XNNPACK | runs | max abs diff | "
        "ExecuTorch ms | eager ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        outside = ", ".join(f"{op} {n}" for op, n in row["undelegated"].items()) or "nothing"
        difference = row.get("max_abs_difference")
        lines.append(
            f"| {row['model']} | {row['form']} | {row['delegate_calls']} | {outside} | "
            f"{row['execute']} | {'' if difference is None else f'{difference:.1e}'} | "
            f"{row.get('executorch_ms', '')} | {row.get('eager_ms', '')} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".md").write_text(text)
    result = {"rows": rows, "environment": environment}
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
