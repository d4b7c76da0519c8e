"""What ExecuTorch's XNNPACK delegate takes of each model's deployable forms, whether the
program runs, how close it is to eager PyTorch, and how fast, in one process.

    python benchmarks/executorch_lowering.py [--models x3d_xs vmf_xxs vmf_xs vmf_s x3d_s]
        [--forms deployable causal stream] [--threads 2 1] [--rounds 10]
        [--out benchmarks/results/executorch]

Each model at its model card's input, batch 1, fp32, random weights: `torch.export`, then
`to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`. The forms:

- plain: the model as it is;
- deployable: `effvid.deploy.deployable` (BatchNorms folded, 3-D convolutions as 2-D ones, a
  VMF in the frames layout), the clip model;
- causal: the same for the causal variant of a VMF (`causal=True`), as a clip model;
- stream: a causal VMF's streaming step (`effvid.deploy.deployable_stream`), one frame and the
  states in, the frame's logits and the next states out.

Reported per model and form: the delegate calls, every operator left outside the delegate with
its count (these run on ExecuTorch's portable kernels), whether `execute()` succeeds (the error
if not), max |ET - eager| on the logits (for the step: over an 8-frame stream, the states fed
back), and the median latency of the program against the eager model (BatchNorms folded, as
deployed; for the step, one `stream_step`), interleaved round by round, with each thread count
(ExecuTorch's threadpool and torch's set alike). Needs `pip install executorch`.
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
from effvid.deploy.deployable_stream import deployable_stream_step
from effvid.models.fusion import fold_batchnorm

MODELS = ["x3d_xs", "vmf_xxs", "vmf_xs", "vmf_s", "x3d_s"]
FORMS = ["deployable", "stream", "causal"]
STREAM_FRAMES = 8


def lower(model: torch.nn.Module, inputs: tuple, path: Path) -> dict:
    """Export and lower `model`; the delegate calls and the operators left outside."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = torch.export.export(model, inputs)
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


class Candidate:
    """One form of one model: the network to lower, its inputs, and the eager model to check
    and time it against."""

    def __init__(self, name: str, form: str) -> None:
        card = effvid.get_model_card(name)
        generator = torch.Generator().manual_seed(0)
        self.clip = torch.randn(card.input_shape, generator=generator)
        args = {"causal": True} if form in ("causal", "stream") else {}
        model = effvid.create_model(name, **args).eval()
        self.eager = fold_batchnorm(model, self.clip)
        self.form = form
        if form == "plain":
            self.network, self.inputs = model, (self.clip,)
        elif form == "stream":
            self.network = deployable_stream_step(model, chunk=1, frame_size=card.input_size)
            self.inputs = self.network.example_inputs(batch=1)
            self.stream = torch.randn(
                1, 3, STREAM_FRAMES, *self.clip.shape[-2:], generator=generator
            )
        else:
            self.network, self.inputs = deployable(model, self.clip), (self.clip,)

    def difference(self, method) -> float:
        """max |ET - eager| on the logits (the step: over a stream, states fed back)."""
        if self.form != "stream":
            return float((method.execute([self.clip])[0] - self.eager(self.clip)).abs().max())
        states, eager_state, worst = list(self.inputs[1:]), self.eager.init_stream(1), 0.0
        for index in range(STREAM_FRAMES):
            frame = self.stream[:, :, index : index + 1].contiguous()
            logits, *states = method.execute([frame, *states])
            expected, eager_state = self.eager.stream_step(frame, eager_state)
            worst = max(worst, float((logits - expected).abs().max()))
        return worst

    def calls(self, method) -> dict:
        """The ExecuTorch call and the eager call to time."""
        inputs = list(self.inputs)
        if self.form != "stream":
            return {
                "executorch": lambda: method.execute(inputs),
                "eager": lambda: self.eager(self.clip),
            }
        state = self.eager.init_stream(1)
        frame = self.inputs[0]
        self.eager.stream_step(frame, state)  # a stream under way: every state present
        return {
            "executorch": lambda: method.execute(inputs),
            "eager": lambda: self.eager.stream_step(frame, state),
        }


def set_threads(threads: int) -> None:
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    torch.set_num_threads(threads)
    _unsafe_reset_threadpool(threads)


def profile(path: Path, inputs: tuple, rounds: int) -> dict[str, float]:
    """Milliseconds per call spent in each kind of XNNPACK operator (its ETDump events, named
    like "Convolution (NHWC, F32) IGEMM #3", summed over the numbered instances), with the
    delegate call's total and the time outside it (ExecuTorch's own work)."""
    from executorch.devtools import Inspector
    from executorch.runtime import Runtime

    dump, debug = path.with_suffix(".etdp"), path.with_suffix(".bin")
    program = Runtime.get().load_program(str(path), enable_etdump=True)  # timings only
    method = program.load_method("forward")
    for _ in range(rounds + 1):  # the first call warms up; medians are taken below
        method.execute(list(inputs))
    program.write_etdump_result_to_file(str(dump), str(debug))
    kinds: collections.Counter = collections.Counter()
    for block in Inspector(etdump_path=str(dump)).event_blocks:
        if block.name != "Execute":
            continue
        for event in block.events:
            if event.perf_data is not None:
                kinds[event.name.split(" #")[0]] += event.perf_data.p50
    return {kind: round(ms, 3) for kind, ms in kinds.most_common()}


def measure(
    name: str, form: str, folder: Path, rounds: int, threads: list[int], with_profile: bool
) -> dict:
    from executorch.runtime import Runtime

    candidate = Candidate(name, form)
    path = folder / f"{name}_{form}.pte"
    row = {"model": name, "form": form, **lower(candidate.network, candidate.inputs, path)}
    with torch.inference_mode():
        row["latency_ms"] = {}
        for count in threads:
            # a program is loaded after its threadpool is set (a reset invalidates loaded ones)
            set_threads(count)
            method = Runtime.get().load_program(str(path)).load_method("forward")
            if "execute" not in row:
                try:
                    row["max_abs_difference"] = candidate.difference(method)
                except Exception as error:  # the runtime's own error types
                    row["execute"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
                    del row["latency_ms"]
                    return row
                row["execute"] = "ok"
            times = interleaved_times(candidate.calls(method), rounds)
            row["latency_ms"][str(count)] = {
                key: round(statistics.median(values), 2) for key, values in times.items()
            }
        if with_profile:  # at the last thread count
            row["profile_ms"] = profile(path, candidate.inputs, rounds)
    return row


def table(rows: list[dict], threads: list[int], command: str, environment: dict) -> str:
    timing = [f"{kind} ms ({count}t)" for count in threads for kind in ("ExecuTorch", "eager")]
    lines = [
        f"`{command}`; {environment['machine']}, torch {environment['torch']}, executorch "
        f"{environment['executorch']}, {environment['date']}. Batch 1, fp32, the model card's "
        "input (the step: one frame); medians of interleaved rounds, ExecuTorch's threadpool "
        "and torch set to the same thread count.",
        "",
        "| model | form | delegate calls | left outside XNNPACK | runs | max abs diff | "
        + " | ".join(timing)
        + " |",
        "|---" * (6 + len(timing)) + "|",
    ]
    for row in rows:
        outside = ", ".join(f"{op} {n}" for op, n in row["undelegated"].items()) or "nothing"
        difference = row.get("max_abs_difference")
        latency = row.get("latency_ms", {})
        cells = [
            str(latency.get(str(count), {}).get(key, ""))
            for count in threads
            for key in ("executorch", "eager")
        ]
        lines.append(
            f"| {row['model']} | {row['form']} | {row['delegate_calls']} | {outside} | "
            f"{row['execute']} | {'' if difference is None else f'{difference:.1e}'} | "
            + " | ".join(cells)
            + " |"
        )
    profiled = [row for row in rows if "profile_ms" in row]
    if profiled:
        lines += [
            "",
            f"Where the time goes ({threads[-1]} thread(s), ETDump, median ms per call in each "
            "kind of XNNPACK operator; DELEGATE_CALL is the delegate's total, Method::execute "
            "the program's):",
            "",
        ]
        for row in profiled:
            top = list(row["profile_ms"].items())[:12]
            kinds = ", ".join(f"{kind} {ms:.2f}" for kind, ms in top)
            lines.append(f"- {row['model']} {row['form']}: {kinds}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--forms", nargs="+", default=FORMS, choices=["plain", *FORMS])
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--profile", action="store_true", help="time each kind of XNNPACK operator (ETDump)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/executorch"))
    args = parser.parse_args()
    command = (
        f"python benchmarks/executorch_lowering.py --models {' '.join(args.models)} --forms "
        f"{' '.join(args.forms)} --threads {' '.join(map(str, args.threads))} "
        f"--rounds {args.rounds}{' --profile' * args.profile}"
    )
    environment = fingerprint("cpu", args.threads[0]) | {"executorch": version("executorch")}
    environment["threads"] = " ".join(map(str, args.threads))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            streams = effvid.get_model_card(name).family == "video_mobile_former"
            for form in args.forms:
                if form in ("causal", "stream") and not streams:  # VMF alone has them
                    continue
                rows.append(
                    measure(name, form, Path(folder), args.rounds, args.threads, args.profile)
                )
                print(json.dumps(rows[-1]), flush=True)
                # written after every row: a long run keeps what it measured
                text = table(rows, args.threads, command, environment)
                args.out.with_suffix(".md").write_text(text)
                result = {"rows": rows, "environment": environment, "command": command}
                args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    print(text)


if __name__ == "__main__":
    main()
